#!/usr/bin/env python
"""Build the model registry ``data/zoo/registry.csv``: one row per model identity, with side information.

Usage::

    python scripts/build_zoo.py [SHARED_DATA_DIR] [--out DATA_DIR]

Sources (see the generated ``data/zoo/PROVENANCE.md``):

- timm's published tables (``SHARED_DATA_DIR/timm_metadata``: ``results-imagenet.csv`` for ImageNet top-1/top-5,
  params and input size of every pretrained tag; ``benchmark-infer-...csv`` for GMACs per architecture;
  ``model_metadata-in1k.csv`` for the pre-training data of older tags), Apache-2.0;
- the installed timm's pretrained-weights registry (every ``arch.tag``, the default tag of each architecture,
  the download URL, the Hugging Face hub id), Apache-2.0; read only, no model is built;
- the installed torchvision's weights metadata (ImageNet acc@1/acc@5, parameters, GFLOPs), BSD-3-Clause;
- ``data/models.csv`` (the models of the shipped histories, built by ``scripts/build_data.py``).

The same weights under several names share one row: a torchvision weight whose download URL is the one a
timm tag loads is that timm tag; a history model whose ``timm_model`` is set is that tag. Deterministic:
running it twice gives the same bytes.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("build_zoo")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))

COLUMNS = ["model_id", "kind", "arch", "default_for", "aliases", "histories", "top1", "top5", "params_m", "gmacs",
           "img_size", "pretraining", "pretrain_detail", "family", "side_source"]
HISTORY_ORDER = ["sfda", "logme", "parc", "model_spider", "shift_vtab", "transfergraph"]

# pre-training kind of a timm tag, by the first rule whose pattern matches (the tag's data, not its head)
TAG_KINDS = [
    ("image_text", r"clip|laion|openai|datacomp|dfn|metaclip|webli|siglip|cc12m|merged2b|yfcc15m|mclip|robbyant"),
    ("vision_language", r"qwen|gemma|pali|deepseek|florence|radio|ogvl|eupe"),
    ("weakly_supervised", r"wsl|swsl|ssl_yfcc|swag|ig1b|ig3b|ns_jft|ssld|bamboo|jft"),
    ("selfsup", r"dino|(^|_)mae|fcmae|mim_|ijepa|mocov3|lvd|seer|sa1b|sam_|beit|(^|_)pt$|apple_pt|indomain_pt"),
    ("in21k_supervised", r"in21k|in22k|in12k|inw21k|m30m|m38m"),
    ("in1k_supervised", r"in1k"),
]
# models.csv pre-training labels -> the same kinds
HISTORY_KINDS = {"in1k_supervised": "in1k_supervised", "in1k_selfsup": "selfsup", "in21k_selfsup": "selfsup",
                 "semi_weakly_supervised": "weakly_supervised", "parc_source": "finetuned",
                 "source_finetuned": "finetuned", "source_supervised": "finetuned", "hf_community": "finetuned",
                 "detection_backbone": "detection", "random_init_test": "random"}
FAMILY_SYNONYMS = {"convnextv": "convnext", "efficientnetv": "efficientnet", "mobilenetv": "mobilenet",
                   "resnetv": "resnet", "regnetx": "regnet", "regnety": "regnet", "regnetz": "regnet",
                   "wide": "resnet", "resnext": "resnet", "seresnet": "resnet", "seresnext": "resnet",
                   "deit": "deit", "cait": "cait", "swinv": "swin", "mnasnet": "mnasnet", "densenet": "densenet"}


def tag_kind(tag: str) -> str:
    for kind, pattern in TAG_KINDS:
        if re.search(pattern, tag):
            return kind
    return "unknown"


def family_of(arch: str) -> str:
    """Coarse family from a timm architecture name (``tf_efficientnet_lite0`` -> ``efficientnet``)."""
    name = re.sub(r"^(tf|tv|gluon|ig|ssl|swsl|legacy|timm|hf|fb)_", "", arch or "")
    m = re.match(r"[a-z]+", name)
    if not m:
        return ""
    fam = m.group(0)
    for prefix, canon in FAMILY_SYNONYMS.items():
        if fam.startswith(prefix):
            return canon
    return fam


def _fmt(x, nd=3):
    """A number rounded for the CSV ('' when unknown); the published tables write thousands with commas."""
    if isinstance(x, str):
        x = float(x.replace(",", "")) if x.strip() else None
    return "" if x is None or not np.isfinite(float(x)) else round(float(x), nd)


def _native_row(group: pd.DataFrame | None, size: int) -> pd.Series | None:
    """The results row at the tag's native input size (timm evaluates some tags at several sizes)."""
    if group is None:
        return None
    native = group[group["img_size"] == size]
    return (native if len(native) else group.sort_values("img_size", kind="stable")).iloc[0]


def timm_rows(meta: Path) -> pd.DataFrame:
    """Every pretrained timm tag the installed timm knows, with the published side information."""
    from fennec._torch_compat import ensure_torchvision

    ensure_torchvision()
    import timm
    from timm.models import get_pretrained_cfg

    results = {m: g for m, g in pd.read_csv(meta / "results-imagenet.csv").groupby("model", sort=False)}
    bench = pd.read_csv(meta / "benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv").drop_duplicates("model")
    bench = bench.set_index("model")
    old = pd.read_csv(meta / "model_metadata-in1k.csv").set_index("model")["pretrain"]
    rows = []
    for name in sorted(timm.list_pretrained()):
        arch, tag = name.split(".", 1)
        cfg = get_pretrained_cfg(name)
        default = get_pretrained_cfg(arch)
        r = _native_row(results.get(name), int(cfg.input_size[-1]))
        b = bench.loc[arch] if arch in bench.index else None
        params = r["param_count"] if r is not None else (b["param_count"] if b is not None else np.nan)
        size = int(r["img_size"]) if r is not None else int(cfg.input_size[-1])
        kind = tag_kind(tag)
        if kind == "unknown" and arch in old.index:
            kind = tag_kind(str(old[arch]).replace("-", "_"))
        rows.append({
            "model_id": name, "kind": "timm", "arch": arch,
            "default_for": arch if default is not None and default.tag == tag else "",
            "aliases": f"hf-hub:{cfg.hf_hub_id}" if cfg.hf_hub_id and cfg.hf_hub_id != f"timm/{name}" else "",
            "histories": "", "top1": _fmt(r["top1"] if r is not None else None),
            "top5": _fmt(r["top5"] if r is not None else None), "params_m": _fmt(params, 2),
            "gmacs": _fmt(b["infer_gmacs"] * (size / b["infer_img_size"]) ** 2 if b is not None else None, 2),
            "img_size": size,
            "pretraining": kind, "pretrain_detail": tag, "family": family_of(arch),
            "side_source": "timm results-imagenet" if r is not None else "timm benchmark (arch)",
            "_url": cfg.url or ""})
    return pd.DataFrame(rows)


# torchvision builders whose architecture timm registers under another name
TV_ARCH = {"mobilenet_v2": "mobilenetv2_100", "mnasnet1_0": "mnasnet_100", "mnasnet0_5": "mnasnet_050",
           "mobilenet_v3_large": "mobilenetv3_large_100", "mobilenet_v3_small": "mobilenetv3_small_100",
           "vit_b_16": "vit_base_patch16_224", "vit_b_32": "vit_base_patch32_224", "vit_l_16": "vit_large_patch16_224",
           "vit_l_32": "vit_large_patch32_224", "vit_h_14": "vit_huge_patch14_224",
           "swin_t": "swin_tiny_patch4_window7_224", "swin_s": "swin_small_patch4_window7_224",
           "swin_b": "swin_base_patch4_window7_224", "efficientnet_v2_s": "efficientnetv2_s",
           "efficientnet_v2_m": "efficientnetv2_m", "efficientnet_v2_l": "efficientnetv2_l"}


def tv_arch(builder: str) -> str:
    """The timm architecture of a torchvision builder ('' when timm has no such architecture)."""
    import timm

    return TV_ARCH.get(builder, builder if timm.is_model(builder) else "")


def torchvision_rows(timm_frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """torchvision classification weights: new rows for weights timm does not have, aliases for those it has."""
    import torchvision.models as tvm

    by_url = {u: m for u, m in zip(timm_frame["_url"], timm_frame["model_id"], strict=True) if u}
    rows, aliases = [], {}
    for builder in sorted(tvm.list_models(module=tvm)):
        enum = tvm.get_model_weights(builder)
        for w in enum:
            names = [f"torchvision/{builder}.{w.name}"] + ([f"torchvision/{builder}"] if w is enum.DEFAULT else [])
            if w.url in by_url:
                aliases.setdefault(by_url[w.url], []).extend(names)
                continue
            metrics = w.meta.get("_metrics", {}).get("ImageNet-1K", {})
            crop = getattr(w.transforms, "keywords", {}).get("crop_size", 224)
            rows.append({
                "model_id": names[0], "kind": "torchvision", "arch": tv_arch(builder), "default_for": "",
                "aliases": ";".join(names[1:]), "histories": "", "top1": _fmt(metrics.get("acc@1")),
                "top5": _fmt(metrics.get("acc@5")), "params_m": _fmt(w.meta["num_params"] / 1e6, 2),
                "gmacs": _fmt(w.meta.get("_ops"), 2), "img_size": int(crop),
                "pretraining": "weakly_supervised" if "SWAG" in w.name else "in1k_supervised",
                "pretrain_detail": f"torchvision {w.name}", "family": family_of(builder),
                "side_source": "torchvision weights metadata", "_url": w.url})
    return pd.DataFrame(rows), aliases


def history_kind(row: pd.Series) -> str:
    label = row["pretraining"]
    if label == "hf_official":
        return {"imagenet21k": "in21k_supervised", "imagenet1k": "in1k_supervised"}.get(row["source_dataset"],
                                                                                         "unknown")
    return HISTORY_KINDS.get(label, "unknown")


# torchvision weights that histories name by the torchvision builder alone (data/models.csv descriptions)
TORCHVISION_HISTORY = {"googlenet": "torchvision/googlenet.IMAGENET1K_V1",
                       "mnasnet1_0": "torchvision/mnasnet1_0.IMAGENET1K_V1",
                       "mobilenet_v2": "torchvision/mobilenet_v2.IMAGENET1K_V1"}


def canonical_history_id(row: pd.Series) -> str:
    if row["timm_model"]:
        return row["timm_model"]
    if row["model_id"] in TORCHVISION_HISTORY:
        return TORCHVISION_HISTORY[row["model_id"]]
    if "/" in row["model_id"]:
        return f"hf-hub:{row['model_id']}"
    return row["model_id"]


def history_rows(models: pd.DataFrame, known: set[str]) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Rows for history models that are not timm / torchvision weights, and what to add to those that are."""
    new, extra = [], {}
    for _, row in models.iterrows():
        cid = canonical_history_id(row)
        hist = [h for h in HISTORY_ORDER if h in row["histories"].split(";")]
        aliases = ([row["model_id"]] if row["model_id"] != cid else []) + [f"{h}/{row['model_id']}" for h in hist]
        info = {"aliases": aliases, "histories": [f"{h}:{row['model_id']}" for h in hist], "arch": row["timm_arch"]}
        if cid in known:
            slot = extra.setdefault(cid, {"aliases": [], "histories": [], "arch": row["timm_arch"]})
            slot["aliases"] += info["aliases"]
            slot["histories"] += info["histories"]
            continue
        new.append({
            "model_id": cid, "kind": "hf-hub" if cid.startswith("hf-hub:") else "local", "arch": row["timm_arch"],
            "default_for": "", "aliases": ";".join(aliases), "histories": ";".join(info["histories"]),
            "top1": _fmt(row["imagenet_top1"]), "top5": "", "params_m": _fmt(row["params_m"], 2),
            "gmacs": _fmt(row["gmacs"], 2), "img_size": "", "pretraining": history_kind(row),
            "pretrain_detail": row["pretraining"] + (f" ({row['source_dataset']})" if row["source_dataset"] else ""),
            "family": row["family"] or family_of(row["timm_arch"]), "side_source": "data/models.csv"})
    return pd.DataFrame(new), extra


def merge(frame: pd.DataFrame, extra: dict[str, dict], tv_aliases: dict[str, list[str]]) -> pd.DataFrame:
    frame = frame.copy()
    for i, mid in enumerate(frame["model_id"]):
        add = tv_aliases.get(mid, []) + extra.get(mid, {}).get("aliases", [])
        if add:
            old = [a for a in str(frame.at[i, "aliases"]).split(";") if a]
            frame.at[i, "aliases"] = ";".join(dict.fromkeys(old + add))
        if mid in extra:
            frame.at[i, "histories"] = ";".join(extra[mid]["histories"])
            if not frame.at[i, "arch"]:
                frame.at[i, "arch"] = extra[mid]["arch"]
    return frame


def check_aliases(frame: pd.DataFrame) -> None:
    owner: dict[str, str] = {}
    ids = set(frame["model_id"])
    for mid, aliases in zip(frame["model_id"], frame["aliases"], strict=True):
        for a in filter(None, str(aliases).split(";")):
            if a in ids and a != mid:
                raise SystemExit(f"alias {a!r} of {mid} is another model's id")
            if owner.setdefault(a, mid) != mid:
                raise SystemExit(f"alias {a!r} names two models: {owner[a]} and {mid}")


def build(shared: Path, out: Path) -> pd.DataFrame:
    models = pd.read_csv(out / "models.csv", dtype=str, keep_default_na=False)
    timm_frame = timm_rows(shared / "timm_metadata")
    tv_frame, tv_aliases = torchvision_rows(timm_frame)
    base = pd.concat([timm_frame, tv_frame], ignore_index=True).drop(columns="_url")
    hist_frame, extra = history_rows(models, set(base["model_id"]))
    frame = merge(pd.concat([base, hist_frame], ignore_index=True), extra, tv_aliases)
    packaged = {f"efficientnet-lite{v}": f"tf_efficientnet_lite{v}.in1k" for v in range(3)}
    for name, mid in packaged.items():
        i = frame.index[frame["model_id"] == mid][0]
        frame.at[i, "aliases"] = ";".join(filter(None, [frame.at[i, "aliases"], name]))
    check_aliases(frame)
    frame = frame[COLUMNS].sort_values("model_id", kind="stable").reset_index(drop=True)
    (out / "zoo").mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "zoo" / "registry.csv", index=False, lineterminator="\n")
    return frame


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("shared", nargs="?", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--out", type=Path, default=REPO / "data")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    frame = build(args.shared, args.out)
    counts = frame["kind"].value_counts().to_dict()
    log.info("wrote %s: %d models %s", args.out / "zoo" / "registry.csv", len(frame), counts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
