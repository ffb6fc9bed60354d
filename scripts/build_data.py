#!/usr/bin/env python
"""Regenerate Fennec's shipped data (``data/``) from the collected published tables.

Usage::

    python scripts/build_data.py [SHARED_DATA_DIR] [--out DATA_DIR]

``SHARED_DATA_DIR`` defaults to ``../shared/data`` relative to the repository root (the folder
with one sub-folder per upstream source, each with its own PROVENANCE.md). ``--out`` defaults to
``data/`` in the repository. The script is deterministic: running it twice gives byte-identical
files. Every transformation it applies is described in the generated ``data/PROVENANCE.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("build_data")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared" / "data"

HISTORY_ORDER = ["sfda", "logme", "parc", "model_spider", "shift_vtab", "transfergraph"]
DEFAULT_HISTORY = "sfda"
HISTORY_COLUMNS = ["model_id", "task_id", "score", "metric", "source", "campaign"]
MODEL_COLUMNS = [
    "model_id", "timm_arch", "timm_model", "pretraining", "source_dataset", "family",
    "params_m", "gmacs", "imagenet_top1", "histories", "description",
]
TASK_COLUMNS = ["task_id", "display_name", "n_classes", "domain", "multi_label", "histories"]
SCORE_DECIMALS = 4

# Multi-label / non-top-1 targets (canonical ids).
MAP_TASKS = {"voc2007"}

# ---------------------------------------------------------------------------------------------
# Task metadata (canonical ids = keys of classnames.json)
# ---------------------------------------------------------------------------------------------
TASK_INFO = {
    # task_id: (display_name, domain)
    "aid": ("AID (aerial scenes)", "remote_sensing"),
    "aircraft": ("FGVC-Aircraft", "fine_grained"),
    "caltech101": ("Caltech-101", "natural"),
    "cars": ("Stanford Cars", "fine_grained"),
    "cifar10": ("CIFAR-10", "natural"),
    "cifar100": ("CIFAR-100", "natural"),
    "clevr": ("CLEVR count (VTAB)", "structured"),
    "clevr_distance": ("CLEVR closest-object distance (VTAB)", "structured"),
    "cub200": ("CUB-200-2011", "fine_grained"),
    "diabetic_retinopathy": ("Diabetic Retinopathy", "medical"),
    "dmlab": ("DMLab (VTAB)", "structured"),
    "dsprites_location": ("dSprites x-position (VTAB)", "structured"),
    "dsprites_orientation": ("dSprites orientation (VTAB)", "structured"),
    "dtd": ("Describable Textures (DTD)", "texture"),
    "eurosat": ("EuroSAT", "remote_sensing"),
    "flowers": ("Oxford Flowers-102", "fine_grained"),
    "food": ("Food-101", "fine_grained"),
    "kitti": ("KITTI closest-vehicle distance (VTAB)", "structured"),
    "nabirds": ("NABirds", "fine_grained"),
    "pcam": ("PatchCamelyon", "medical"),
    "pets": ("Oxford-IIIT Pets", "fine_grained"),
    "resisc45": ("RESISC45", "remote_sensing"),
    "smallnorb_azimuth": ("smallNORB azimuth (VTAB)", "structured"),
    "smallnorb_elevation": ("smallNORB elevation (VTAB)", "structured"),
    "stanford_dogs": ("Stanford Dogs", "fine_grained"),
    "stl10": ("STL-10", "natural"),
    "sun397": ("SUN397", "scene"),
    "svhn": ("SVHN", "digits"),
    "vlcs": ("VLCS", "natural"),
    "voc2007": ("PASCAL VOC 2007 (classification)", "natural"),
}

# ---------------------------------------------------------------------------------------------
# Model metadata rules
# ---------------------------------------------------------------------------------------------
# timm pretrained tags that are *exactly* the weights a history's model id names. Conservative:
# only where the history's weights and timm's tag are the same published checkpoint.
TIMM_MODEL_EXACT = {
    # torchvision ImageNet-1k v1 weights (SFDA group1 / LogME); timm's `.tv_in1k` = torchvision v1.
    "resnet34": "resnet34.tv_in1k",
    "resnet50": "resnet50.tv_in1k",
    "resnet101": "resnet101.tv_in1k",
    "resnet152": "resnet152.tv_in1k",
    "densenet121": "densenet121.tv_in1k",
    "densenet169": "densenet169.tv_in1k",
    "densenet201": "densenet201.tv_in1k",
    "inception_v3": "inception_v3.tv_in1k",
    # SFDA/EMMS ViT group: official releases, which timm re-hosts.
    "deit_tiny": "deit_tiny_patch16_224.fb_in1k",
    "deit_small": "deit_small_patch16_224.fb_in1k",
    "deit_base": "deit_base_patch16_224.fb_in1k",
    "dino_small": "vit_small_patch16_224.dino",
    "dino_base": "vit_base_patch16_224.dino",
    "swin_t": "swin_tiny_patch4_window7_224.ms_in1k",
    "swin_s": "swin_small_patch4_window7_224.ms_in1k",
    "pvtv2_b2": "pvt_v2_b2.in1k",
    "pvtv2_b3": "pvt_v2_b3.in1k",
    # HF hub checkpoints converted by HF from timm's own weights (model cards / conversion scripts:
    # google/vit-* "converted from the timm repository"; DeiT and Swin via convert_*_timm_* scripts).
    # google/vit-base-patch16-224 is the ORIGINAL ViT in21k->in1k release = timm `orig_in21k_ft_in1k`,
    # not `augreg2_in21k_ft_in1k` (a later, different fine-tune).
    "google/vit-base-patch16-224": "vit_base_patch16_224.orig_in21k_ft_in1k",
    "google/vit-base-patch16-384": "vit_base_patch16_384.orig_in21k_ft_in1k",
    "google/vit-large-patch32-384": "vit_large_patch32_384.orig_in21k_ft_in1k",
    "facebook/deit-tiny-patch16-224": "deit_tiny_patch16_224.fb_in1k",
    "facebook/deit-small-patch16-224": "deit_small_patch16_224.fb_in1k",
    "facebook/deit-base-patch16-224": "deit_base_patch16_224.fb_in1k",
    "facebook/deit-base-patch16-384": "deit_base_patch16_384.fb_in1k",
    "facebook/deit-tiny-distilled-patch16-224": "deit_tiny_distilled_patch16_224.fb_in1k",
    "facebook/deit-small-distilled-patch16-224": "deit_small_distilled_patch16_224.fb_in1k",
    "facebook/deit-base-distilled-patch16-224": "deit_base_distilled_patch16_224.fb_in1k",
    "facebook/deit-base-distilled-patch16-384": "deit_base_distilled_patch16_384.fb_in1k",
    "microsoft/swin-tiny-patch4-window7-224": "swin_tiny_patch4_window7_224.ms_in1k",
    "microsoft/swin-small-patch4-window7-224": "swin_small_patch4_window7_224.ms_in1k",
}
# timm tags above that are not in results-imagenet.csv (no ImageNet classifier head), with the
# source that names them.
TIMM_TAGS_NOT_IN_RESULTS = {
    "vit_small_patch16_224.dino": "sfda_benchmark/models.csv timm_mapping_note",
    "vit_base_patch16_224.dino": "sfda_benchmark/models.csv timm_mapping_note",
}

# HF hub random-init test checkpoints (TransferGraph PROVENANCE: "random test models").
HF_RANDOM_TEST_MODELS = {
    "nateraw/test_model_a", "lysandre/tiny-vit-random", "hf-internal-testing/tiny-random-vit",
}
HF_OFFICIAL_ORGS = {
    "google", "facebook", "microsoft", "nvidia", "Visual-Attention-Network", "deepmind", "timm",
}

# Family by name pattern (first match wins), used for ids without a better signal.
FAMILY_PATTERNS = [
    (r"deit", "deit"), (r"convit", "convit"), (r"mit-b\d", "segformer"), (r"perceiver", "perceiver"),
    (r"data2vec", "data2vec"), (r"(^|/)dit-", "beit"), (r"beit", "beit"), (r"swin", "swin"),
    (r"convnext", "convnext"), (r"(^|/)van-", "van"), (r"pvt", "pvt"), (r"vit|dino|mocov3", "vit"),
    (r"resnet", "resnet"), (r"densenet", "densenet"), (r"mnasnet", "mnasnet"),
    (r"mobilenet", "mobilenet"), (r"inception|googlenet", "inception"), (r"alexnet", "alexnet"),
]
HF_MODEL_TYPE_FAMILY = {"data2vec-vision": "data2vec"}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
class Canon:
    """Task-id canonicaliser: lower-case, then classnames/aliases.json, else keep."""

    def __init__(self, shared: Path):
        self.aliases = json.loads((shared / "classnames" / "aliases.json").read_text())
        self.classnames = json.loads((shared / "classnames" / "classnames.json").read_text())

    def __call__(self, name: str) -> str:
        key = str(name).strip().lower()
        return self.aliases.get(key, key)


def wide_to_long(wide: pd.DataFrame, id_col: str, *, source: str, campaign, scale: float,
                 canon: Canon, drop_cols=()) -> pd.DataFrame:
    """Melt a model x target matrix into canonical long rows; empty cells are dropped."""
    w = wide.drop(columns=list(drop_cols))
    long = w.melt(id_vars=[id_col], var_name="source_task", value_name="score")
    long = long.rename(columns={id_col: "model_id"})
    long = long[long["score"].notna()].copy()
    long["score"] = long["score"].astype(float) * scale
    long["task_id"] = long["source_task"].map(canon)
    long["metric"] = np.where(long["task_id"].isin(MAP_TASKS), "map", "top1")
    long["source"] = source
    if callable(campaign):
        long["campaign"] = long["model_id"].map(campaign)
    else:
        long["campaign"] = campaign
    return long


def finalize_history(long: pd.DataFrame, name: str) -> pd.DataFrame:
    df = long[HISTORY_COLUMNS].copy()
    df["model_id"] = df["model_id"].astype(str)
    df["score"] = df["score"].astype(float).round(SCORE_DECIMALS)
    dup = df.duplicated(["model_id", "task_id"])
    if dup.any():
        raise ValueError(f"{name}: duplicate (model_id, task_id): {df[dup].head()}")
    if not np.isfinite(df["score"]).all():
        raise ValueError(f"{name}: non-finite scores")
    bad = df[(df["score"] < 0) | (df["score"] > 100)]
    if len(bad):
        raise ValueError(f"{name}: scores outside [0, 100]: {bad.head()}")
    if df["campaign"].isna().any():
        raise ValueError(f"{name}: missing campaign")
    return df.sort_values(["task_id", "model_id"], kind="mergesort").reset_index(drop=True)


def write_csv(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, lineterminator="\n")


def parse_params(text) -> float:
    """'25.56' -> 25.56; '~61.1 (torchvision alexnet)' -> 61.1; note '... ~6.6M params)' -> 6.6."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return np.nan
    m = re.search(r"~?\s*(\d+(?:\.\d+)?)\s*M? params", str(text)) or re.match(
        r"\s*~?\s*(\d+(?:\.\d+)?)", str(text))
    return float(m.group(1)) if m else np.nan


def family_from_name(name: str) -> str:
    low = name.lower()
    for pat, fam in FAMILY_PATTERNS:
        if re.search(pat, low):
            return fam
    return ""


def canon_source_dataset(name, canon: Canon) -> str:
    if name is None or (isinstance(name, float) and np.isnan(name)) or str(name) == "":
        return ""
    key = str(name).strip().lower()
    if key in {"imagenet-21k", "imagenet21k", "imagenet22k", "imagenet-22k"}:
        return "imagenet21k"
    return canon(key)


# ---------------------------------------------------------------------------------------------
# Histories
# ---------------------------------------------------------------------------------------------
def build_sfda(shared: Path, canon: Canon, models: dict) -> pd.DataFrame:
    d = shared / "sfda_benchmark"
    parts = []
    for fname, campaign in [
        ("group1_supervised_cnn_finetune.csv", "group1_supervised_cnn"),
        ("group2_selfsup_r50_finetune.csv", "group2_selfsup_r50"),
        ("group_vit_finetune_EMMS.csv", "vit"),
    ]:
        wide = pd.read_csv(d / fname)
        parts.append(wide_to_long(wide, "model", source="sfda", campaign=campaign, scale=1.0,
                                  canon=canon))
    long = pd.concat(parts, ignore_index=True)
    # Cross-check against the curator's long file (same numbers, 4 classification matrices).
    ref = pd.read_csv(d / "all_long.csv")
    ref = ref[ref["file"] != "group1_supervised_cnn_headonly_REPT.csv"]
    if len(ref) != len(long) or not np.allclose(
        np.sort(ref["accuracy_pct"].to_numpy()), np.sort(long["score"].to_numpy())
    ):
        raise ValueError("sfda: matrices disagree with all_long.csv")
    meta = pd.read_csv(d / "models.csv")
    for r in meta.itertuples(index=False):
        selfsup = "self-supervised" in r.pretraining
        models.setdefault(r.model, {}).update(
            timm_arch=r.timm_arch if isinstance(r.timm_arch, str) else "",
            pretraining="in1k_selfsup" if selfsup else "in1k_supervised",
            source_dataset="imagenet1k",
            params_src=r.param_count_M_from_timm
            if not pd.isna(r.param_count_M_from_timm) else parse_params(r.timm_mapping_note),
            description=f"{r.description}; {r.pretraining}",
        )
    return finalize_history(long, "sfda")


def build_logme(shared: Path, canon: Canon, models: dict) -> pd.DataFrame:
    d = shared / "logme_tllib"
    wide = pd.read_csv(d / "matrix_finetune.csv")
    long = wide_to_long(wide, "model", source="logme", campaign="logme_icml21", scale=1.0,
                        canon=canon)
    # Sanity: identical to the long file and to Model Spider's single-source zoo.
    ref = pd.read_csv(d / "finetune_and_scores_long.csv")
    ref["task_id"] = ref["target"].map(canon)
    chk = long.merge(ref, left_on=["model_id", "task_id"], right_on=["model", "task_id"])
    if len(chk) != len(long) or not np.allclose(chk["score"], chk["finetuned_acc"]):
        raise ValueError("logme: matrix disagrees with finetune_and_scores_long.csv")
    ss = pd.read_csv(shared / "model_spider" / "single_source_zoo_finetune.csv")
    ss = ss.melt(id_vars=[ss.columns[0]], var_name="t", value_name="v")
    ss["task_id"] = ss["t"].map(canon)
    chk = long.merge(ss, left_on=["model_id", "task_id"], right_on=[ss.columns[0], "task_id"])
    if len(chk) != len(long) or not np.allclose(chk["score"], chk["v"]):
        log.warning("logme: differs from model_spider single_source_zoo_finetune.csv")
    else:
        log.info("logme: all %d cells equal Model Spider's single-source zoo", len(chk))
    for m in wide["model"]:
        if m not in models:
            raise ValueError(f"logme model {m!r} has no sfda counterpart")
    return finalize_history(long, "logme")


def build_parc(shared: Path, canon: Canon, models: dict) -> pd.DataFrame:
    d = shared / "parc"
    wide = pd.read_csv(d / "matrix_all.csv")
    num = wide.columns[1:]
    wide[num] = wide[num].mask(wide[num] < 0)  # upstream -1 = no result (already empty here)
    meta = pd.read_csv(d / "models.csv")
    controlled = dict(zip(meta["model"], meta["in_controlled_bank"], strict=True))
    long = wide_to_long(
        wide, "model", source="parc", scale=1.0, canon=canon,
        campaign=lambda m: "controlled" if controlled[m] == 1 else "crowd_sourced",
    )
    for r in meta.itertuples(index=False):
        src = r.source_dataset
        kind = r.source_kind
        if r.in_controlled_bank == 1:
            pretraining, sds = "parc_source", canon_source_dataset(src, canon)
        elif "detectron2" in kind:
            pretraining = "detection_backbone"
            sds = next((x for x in ("voc", "cityscapes", "lvis") if x in src), "coco")
            sds = {"voc": "pascal_voc_detection"}.get(sds, sds)
        elif src.startswith("semisup_"):
            pretraining, sds = "semi_weakly_supervised", src.split("_", 1)[1]
        elif src.startswith("supervised_"):
            pretraining, sds = "source_supervised", src.split("_", 1)[1]
        else:  # VISSL self-supervised: <method>_<dataset>
            method, ds = src.rsplit("_", 1)
            sds = canon_source_dataset(ds, canon)
            pretraining = "in21k_selfsup" if sds == "imagenet21k" else "in1k_selfsup"
        models[r.model] = dict(
            timm_arch=r.timm_arch if isinstance(r.timm_arch, str) else "",
            pretraining=pretraining,
            source_dataset=sds,
            family=family_from_name(r.architecture),
            params_src=parse_params(r.param_count_M),
            description=f"PARC {r.architecture} / {src}: {kind}",
        )
    return finalize_history(long, "parc")


def build_model_spider(shared: Path, canon: Canon, models: dict) -> pd.DataFrame:
    d = shared / "model_spider"
    wide = pd.read_csv(d / "multi_source_zoo_finetune.csv")
    long = wide_to_long(wide, "model", source="model_spider", campaign="multi_source_zoo",
                        scale=1.0, canon=canon,
                        drop_cols=["architecture", "source_dataset", "in_selected_42"])
    for r in wide.itertuples(index=False):
        models[r.model] = dict(
            timm_arch=r.architecture,
            pretraining="source_finetuned",
            source_dataset=canon_source_dataset(r.source_dataset, canon),
            family=family_from_name(r.architecture),
            description=(f"Model Spider multi-source zoo: {r.architecture} (ImageNet init) "
                         f"fine-tuned on {r.source_dataset}"
                         + ("; one of the 42 models Model Spider ranks" if r.in_selected_42 else "")
                         + "; checkpoint not public"),
        )
    return finalize_history(long, "model_spider")


def build_shift_vtab(shared: Path, canon: Canon) -> pd.DataFrame:
    d = shared / "shift_vtab"
    wide = pd.read_csv(d / "vtab1k_image_matrix_lr0.01_mean.csv")
    long = wide_to_long(wide, "model_identifier", source="shift_vtab",
                        campaign="vtab1k_lr0.01", scale=100.0, canon=canon)
    return finalize_history(long, "shift_vtab")


def build_transfergraph(shared: Path, canon: Canon) -> tuple[pd.DataFrame, dict]:
    d = shared / "transfergraph" / "image"
    rec = pd.read_csv(d / "records.csv")
    if rec.duplicated(["model", "finetuned_dataset"]).any():
        raise ValueError("transfergraph: duplicate runs in records.csv")
    wide = rec.pivot(index="model", columns="finetuned_dataset", values="eval_accuracy")
    ref = pd.read_csv(d / "matrix_eval_accuracy.csv", index_col=0)
    diff = (wide.reindex_like(ref).round(5) - ref).abs().max().max()
    if diff > 1e-5:
        raise ValueError(f"transfergraph: records.csv pivot != matrix_eval_accuracy.csv ({diff})")
    stats = {"models_in": wide.shape[0], "targets_in": wide.shape[1],
             "cells_in": int(wide.notna().sum().sum())}
    food = wide["food101"]
    stats["food101_cells"] = int(food.notna().sum())
    stats["food101_lt5"] = int((food < 0.05).sum())
    wide = wide.drop(columns=["food101"])
    dropped = sorted(set(wide.index) & HF_RANDOM_TEST_MODELS)
    stats["random_rows"] = dropped
    stats["random_cells"] = int(wide.loc[dropped].notna().sum().sum())
    wide = wide.drop(index=dropped)
    low = wide.stack()
    stats["kept_lt5"] = {f"{m} / {t}": round(float(v) * 100, 2)
                         for (m, t), v in low[low < 0.05].items()}
    long = wide_to_long(wide.reset_index(), "model", source="transfergraph",
                        campaign="image_ft_lr0.01_30ep", scale=100.0, canon=canon)
    return finalize_history(long, "transfergraph"), stats


# ---------------------------------------------------------------------------------------------
# models.csv / tasks.csv
# ---------------------------------------------------------------------------------------------
class Timm:
    def __init__(self, shared: Path):
        d = shared / "timm_metadata"
        self.registered = set((d / "timm_registered_model_names.txt").read_text().split())
        self.results = pd.read_csv(d / "results-imagenet.csv")
        self.results["arch"] = self.results["model"].str.split(".").str[0]
        self.bench = pd.read_csv(d / "benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv")

    @staticmethod
    def native_size(arch: str) -> int:
        m = re.search(r"_(\d{3})$", arch)
        if m:
            return int(m.group(1))
        return 299 if arch.startswith("inception") else 224

    def top1(self, tag: str, size: int):
        rows = self.results[self.results["model"] == tag]
        if rows.empty:
            return np.nan
        hit = rows[rows["img_size"] == size]
        row = hit.iloc[0] if len(hit) else rows.sort_values("img_size").iloc[0]
        return float(row["top1"])

    def params(self, arch: str):
        rows = self.bench[self.bench["model"] == arch]
        if len(rows):
            return float(rows["param_count"].iloc[0])
        rows = self.results[self.results["arch"] == arch]
        return float(rows["param_count"].iloc[0]) if len(rows) else np.nan

    def gmacs(self, arch: str, size: int):
        rows = self.bench[(self.bench["model"] == arch) & (self.bench["infer_img_size"] == size)]
        return float(rows["infer_gmacs"].iloc[0]) if len(rows) else np.nan


def hf_models(shared: Path, ids: set, canon: Canon, timm: Timm) -> dict:
    """Metadata for HF hub ids (shift_vtab / transfergraph)."""
    cfg = pd.read_csv(shared / "transfergraph" / "image" / "model_config_dataset.csv")
    cfg = cfg.set_index("model")
    tg_guess = pd.read_csv(shared / "transfergraph" / "image" / "models_timm_guess.csv")
    tg_guess = tg_guess.set_index("model")["timm_arch_guess"].dropna().to_dict()
    sv_guess = pd.read_csv(shared / "shift_vtab" / "models_timm_guess.csv")
    sv_guess = sv_guess.set_index("model")["timm_arch_guess"].dropna().to_dict()
    out = {}
    for mid in sorted(ids):
        a, b = tg_guess.get(mid, ""), sv_guess.get(mid, "")
        if a and b and a != b:
            log.warning("timm arch guesses disagree for %s: transfergraph %s, shift %s", mid, a, b)
        arch = a or b
        # A hub repo named after a registered timm architecture (nates-test-org/convit_base) is
        # that architecture; the name-pattern guess (vit_base_patch16_224) is wrong there.
        tail = mid.split("/")[-1]
        if tail in timm.registered and tail != arch:
            log.info("timm arch guess %s -> %s for %s (repo name)", arch or "-", tail, mid)
            arch = tail
        # Guesses are family/size level; fix the input resolution where the HF id states it.
        if arch and "384" in mid and arch.endswith("_224"):
            fixed = arch[:-4] + "_384"
            if fixed in timm.registered:
                log.info("timm arch guess %s -> %s for %s (384 input)", arch, fixed, mid)
                arch = fixed
        org = mid.split("/")[0]
        info = dict(timm_arch=arch, arch_guessed=bool(arch))
        if mid in HF_RANDOM_TEST_MODELS:
            info["pretraining"] = "random_init_test"
        else:
            info["pretraining"] = "hf_official" if org in HF_OFFICIAL_ORGS else "hf_community"
        if mid in cfg.index:
            c = cfg.loc[mid]
            mt = c["model_type"] if isinstance(c["model_type"], str) else ""
            info["source_dataset"] = canon_source_dataset(c["dataset"], canon)
            info["params_src"] = (round(float(c["number_of_parameters"]) / 1e6, 2)
                                  if not pd.isna(c["number_of_parameters"]) else np.nan)
            info["input_size"] = int(c["input_shape"]) if not pd.isna(c["input_shape"]) else None
            fam = HF_MODEL_TYPE_FAMILY.get(mt, mt) if mt else ""
            if fam == "vit" and "deit" in mid.lower():
                fam = "deit"  # DeiT checkpoints are stored with model_type=vit
            info["family"] = fam or family_from_name(mid) or family_from_name(arch)
            nl = "" if pd.isna(c["#labels"]) else f", {int(c['#labels'])} labels"
            info["description"] = (f"HF hub checkpoint ({info['pretraining']}); config "
                                   f"model_type={mt or '?'}, trained/fine-tuned on "
                                   f"{c['dataset'] if isinstance(c['dataset'], str) else '?'}{nl}")
        else:
            info["source_dataset"] = ""
            info["family"] = family_from_name(mid) or family_from_name(arch)
            info["description"] = (f"HF hub checkpoint ({info['pretraining']}); not in "
                                   "TransferGraph's config table (family/arch only from the name, "
                                   "where it says)")
        if mid in HF_RANDOM_TEST_MODELS:
            info["description"] += "; random-init test model (near-chance scores)"
        out[mid] = info
    return out


def build_models(histories: dict, models: dict, shared: Path, canon: Canon) -> pd.DataFrame:
    timm = Timm(shared)
    hf_ids = set(histories["shift_vtab"]["model_id"]) | set(histories["transfergraph"]["model_id"])
    models.update(hf_models(shared, hf_ids, canon, timm))
    where = {}
    for h in HISTORY_ORDER:
        for m in histories[h]["model_id"].unique():
            where.setdefault(m, []).append(h)
    missing = sorted(set(where) - set(models))
    if missing:
        raise ValueError(f"no metadata for model ids: {missing[:10]}")
    rows = []
    for mid in sorted(where):
        info = models[mid]
        tag = TIMM_MODEL_EXACT.get(mid, "")
        arch = info.get("timm_arch", "") or ""
        if tag:
            if tag not in set(timm.results["model"]) and tag not in TIMM_TAGS_NOT_IN_RESULTS:
                raise ValueError(f"timm tag {tag} not in results-imagenet.csv")
            if arch and arch != tag.split(".")[0]:
                log.info("timm_arch %s -> %s for %s (exact timm tag)", arch, tag.split(".")[0], mid)
            arch = tag.split(".")[0]
        if arch and arch not in timm.registered:
            raise ValueError(f"{mid}: timm arch {arch!r} is not a registered timm model name")
        size = info.get("input_size") or (timm.native_size(arch) if arch else 224)
        params = info.get("params_src", np.nan)
        if pd.isna(params) and arch:
            params = timm.params(arch)
        gmacs = timm.gmacs(arch, size) if arch else np.nan
        top1 = timm.top1(tag, timm.native_size(tag.split(".")[0])) if tag else np.nan
        desc = info.get("description", "")
        if info.get("arch_guessed") and arch and not tag:
            desc += "; timm_arch is a heuristic guess (family/size level)"
        rows.append(dict(
            model_id=mid, timm_arch=arch, timm_model=tag,
            pretraining=info.get("pretraining", ""), source_dataset=info.get("source_dataset", ""),
            family=info.get("family") or family_from_name(mid) or family_from_name(arch),
            params_m=round(float(params), 2) if not pd.isna(params) else np.nan,
            gmacs=round(float(gmacs), 2) if not pd.isna(gmacs) else np.nan,
            imagenet_top1=round(top1, 3) if not pd.isna(top1) else np.nan,
            histories=";".join(where[mid]), description=desc,
        ))
    df = pd.DataFrame(rows, columns=MODEL_COLUMNS)
    for col in ("pretraining", "family"):
        empty = df.loc[df[col] == "", "model_id"].tolist()
        if empty:
            log.info("%d models with empty %s (e.g. %s)", len(empty), col, ", ".join(empty[:3]))
    return df


def build_tasks(histories: dict, canon: Canon) -> tuple[pd.DataFrame, list]:
    where = {}
    for h in HISTORY_ORDER:
        for t in sorted(histories[h]["task_id"].unique()):
            where.setdefault(t, []).append(h)
    unresolved = sorted(t for t in where if t not in canon.classnames)
    rows = []
    for t in sorted(where):
        if t not in TASK_INFO:
            raise ValueError(f"no display name / domain for task {t!r}")
        name, domain = TASK_INFO[t]
        n = len(canon.classnames[t]) if t in canon.classnames else np.nan
        rows.append(dict(task_id=t, display_name=name, n_classes=n, domain=domain,
                         multi_label=t in MAP_TASKS, histories=";".join(where[t])))
    df = pd.DataFrame(rows, columns=TASK_COLUMNS)
    df["n_classes"] = df["n_classes"].astype("Int64")
    return df, unresolved


def check_id_overlaps(histories: dict) -> dict:
    """Model ids shared between histories must be the intended same-weights ones."""
    sets = {h: set(df["model_id"]) for h, df in histories.items()}
    overlaps = {}
    for i, a in enumerate(HISTORY_ORDER):
        for b in HISTORY_ORDER[i + 1:]:
            common = sets[a] & sets[b]
            if common:
                overlaps[(a, b)] = sorted(common)
    allowed = {("sfda", "logme"), ("shift_vtab", "transfergraph")}
    for pair, ids in overlaps.items():
        if pair not in allowed:
            raise ValueError(f"unexpected model-id overlap {pair}: {ids[:10]}")
    tv = {"googlenet", "inception_v3", "resnet50", "resnet101", "resnet152", "densenet121",
          "densenet169", "densenet201", "mobilenet_v2", "mnasnet1_0"}
    if set(overlaps.get(("sfda", "logme"), [])) != tv:
        raise ValueError("sfda/logme overlap is not the 10 torchvision CNNs")
    if any("/" not in m for m in overlaps.get(("shift_vtab", "transfergraph"), [])):
        raise ValueError("shift_vtab/transfergraph overlap contains non-HF ids")
    return overlaps


# ---------------------------------------------------------------------------------------------
# Docs
# ---------------------------------------------------------------------------------------------
HISTORY_DOC = {
    "sfda": dict(metric="top1 (% ; voc2007: map)", licence="none stated (NCTI copy: MIT)",
                 desc="SFDA/NCTI/EMMS 'de facto standard' benchmark: 11 torchvision CNNs + 12 "
                      "self-supervised ResNet-50s + 13 ViTs, full fine-tuning with HP sweep"),
    "logme": dict(metric="top1 (%)", licence="MIT (thuml/Transfer-Learning-Library)",
                  desc="LogME (ICML'21) campaign: 10 torchvision CNNs x 8 targets"),
    "parc": dict(metric="top1 (% ; voc2007: map)", licence="none stated",
                 desc="PARC (NeurIPS'21) oracles: 5 archs x many source datasets / tasks"),
    "model_spider": dict(metric="top1 (%)", licence="MIT (zhangyikaii/Model-Spider)",
                         desc="Model Spider (NeurIPS'23) multi-source zoo: 3 archs x 22 source "
                              "datasets"),
    "shift_vtab": dict(metric="top1 (%, from [0,1])", licence="none stated",
                       desc="SHiFT (VLDB'23) HF image models on VTAB-1k, fixed lr 0.01"),
    "transfergraph": dict(metric="top1 (%, from [0,1])", licence="none stated",
                          desc="TransferGraph (ICDE'24) HF image models, 70% train split, lr 0.01"),
}


def shape(df: pd.DataFrame) -> tuple[int, int, int]:
    return df["model_id"].nunique(), df["task_id"].nunique(), len(df)


def write_readme(out: Path, histories: dict, models: pd.DataFrame, tasks: pd.DataFrame) -> None:
    lines = [
        "# Fennec shipped data",
        "",
        "Historical fine-tuning tables (model x task -> score) collected from published benchmarks,",
        "in one canonical long format, plus model and task metadata. Regenerate with",
        "`python scripts/build_data.py <shared-data-dir>`; see `PROVENANCE.md` for origins,",
        "licences, every transformation and the caveats.",
        "",
        "| history | models x tasks | cells | metric | default | licence (as stated upstream) | what |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in HISTORY_ORDER:
        nm, nt, nc = shape(histories[h])
        doc = HISTORY_DOC[h]
        lines.append(f"| `{h}` | {nm} x {nt} | {nc} | {doc['metric']} | "
                     f"{'**yes**' if h == DEFAULT_HISTORY else 'no'} | {doc['licence']} | "
                     f"{doc['desc']} |")
    lines += [
        "",
        "Files:",
        "",
        "- `histories/<name>.csv`: `model_id,task_id,score,metric,source,campaign`, sorted by "
        "(task_id, model_id); missing cells are absent rows. `score` is in percent (0-100).",
        f"- `models.csv`: {len(models)} model ids (unique across all histories; the same id means "
        "the same weights), with timm architecture / exact timm weights, params, GMACs.",
        f"- `tasks.csv`: {len(tasks)} canonical task ids with class counts and domain.",
        "- `classnames/`: class-name lists, id aliases and prompt templates (verbatim copies, with "
        "their own PROVENANCE.md).",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines))


PROVENANCE_TEMPLATE = """\
# data/ provenance

`histories/`, `models.csv`, `tasks.csv`, `classnames/`, `README.md` and this file are generated by
`scripts/build_data.py` from the collected copies of the published tables (the project's shared `data/`
folder, one sub-folder per upstream source with its own PROVENANCE.md; not shipped). Other sub-folders
(e.g. `archi2vec/`) are written by other scripts and documented there. No experiment was run to produce these numbers: they are the upstream authors'
fine-tuning results, re-shaped. Upstream licences are quoted as the upstream repositories state them;
where none is stated the numbers are experimental facts republished from papers -- cite the papers.

## Common transformations (all histories)

- Wide model x target matrices are melted to long rows `model_id,task_id,score,metric,source,campaign`;
  empty cells are dropped (no NaN rows). Files are sorted by (task_id, model_id).
- `score` is in **percent**: sources in [0, 1] (shift_vtab, transfergraph) are multiplied by 100; every
  score is rounded to {dec} decimals. `metric` is `top1` (top-1 accuracy) except `map` for voc2007
  (VOC2007 classification is multi-label; its number is a mAP-style metric, not comparable with top-1).
  No regression targets are shipped (Model Spider's dSprites/UTKFace are not used), so `neg_error` does
  not occur.
- Task ids: the source's target name is lower-cased and mapped through `classnames/aliases.json`
  (else kept), e.g. OxfordIIITPets / Pet / oxford_iiit_pet / oxford_pets -> `pets`,
  oxford_flowers102 -> `flowers`, CUB2011 -> `cub200`, nabird -> `nabirds`, resisc -> `resisc45`,
  svhn_cropped -> `svhn`, StanfordCars / stanfordcars -> `cars`, food101 -> `food`,
  clevr_count -> `clevr`, smallnorb_label_azimuth -> `smallnorb_azimuth`, patch_camelyon -> `pcam`,
  diabetic_retinopathy_detection -> `diabetic_retinopathy`.
  Every task id of every history is a key of `classnames/classnames.json` ({unresolved}).
- Model ids: the source's own names, chosen so that an id means the same weights everywhere it occurs:
  torchvision CNNs of SFDA group1 and LogME keep their (identical) torchvision names and are shared
  (`resnet50`, `googlenet`, `inception_v3`, `densenet121`, ...); SFDA group2 SSL ResNet-50s and ViTs as in
  the source (`byol`, `moco-v2`, `deit_small`, `swin_t`, ...); PARC `arch%source` keys; Model Spider
  `FTD_<arch>_<source>` names; HuggingFace hub ids for shift_vtab and transfergraph (the same hub id in
  both = the same hub checkpoint). The build checks that the only ids shared between histories are the
  10 torchvision CNNs (sfda & logme: {n_tv}) and HF hub ids (shift_vtab & transfergraph: {n_hf}); no
  plain name like `resnet50` occurs in parc (PARC's ImageNet ResNet-50 is `resnet50%imagenet`, trained
  by the PARC authors) or Model Spider. Different ids may still be the same published weights (e.g. sfda
  `deit_small` and HF `facebook/deit-small-patch16-224`; sfda `swav` / parc `resnet50%swav_imagenet` are
  both SwAV ResNet-50s but possibly different checkpoints): `models.csv` `timm_model` links the ones
  known to be identical.

## histories/sfda.csv -- DEFAULT history ({sfda_shape})

- Origin: `sfda_benchmark/` -- numbers hard-coded in evaluation scripts, extracted (no code run) from
  TencentARC/SFDA @ 3b7edf76bd682acb1eba4f4c5eb7ea7f3f7f6c59 `tw_group1.py` (group1; byte-identical copies
  in BUserName/NCTI @ b18d39514a3f2a7a949500b467a38b93de1428e4, mgholamikn/ETran @ d4551ed8f41f4ed6eba08b9cc1a78bae178acd19,
  OpenGVLab/Multitask-Model-Selector @ 24d100817c02eab33f6f992f291667533a921384, alizkzm/pert_robust_platform
  @ 5fb15f44125a24dd35a388ac16c159fdb99201bf), BUserName/NCTI `tw_group2.py` (group2), and
  OpenGVLab/Multitask-Model-Selector (EMMS) `evaluate_metric_cls_cpu_ViT.py` (ViTs).
  Files used: `group1_supervised_cnn_finetune.csv`, `group2_selfsup_r50_finetune.csv`,
  `group_vit_finetune_EMMS.csv` (cross-checked against `all_long.csv`).
- Licence: none stated by SFDA, ETran, EMMS, REPT; NCTI (which carries group1 and group2) is MIT.
  Cite SFDA (ECCV'22), NCTI (ICCV'23), EMMS (NeurIPS'23).
- Campaigns: `group1_supervised_cnn` (11 torchvision CNNs x 11 targets, {g1} cells),
  `group2_selfsup_r50` (12 self-supervised ResNet-50s of Ericsson et al. 2021 x 13 targets incl.
  resisc45/eurosat, {g2} cells; simclr-v1/v2 have no resisc45/eurosat -- upstream 0 = missing),
  `vit` (13 ViTs x 11 targets, {gv} cells).
- Transformations: values already in %, unchanged; melt; task canonicalisation (resisc -> resisc45).
- Not included: REPT head-only numbers (`group1_supervised_cnn_headonly_REPT.csv`, a linear-probe protocol,
  and its sun397 column looks inconsistent) and EMMS image captioning BLEU (not classification).
- Caveats: tiny, strongly rank-1 matrices (bigger ImageNet model -> better nearly everywhere); per-target
  rankings are often decided by < 1 point, so weighted tau on them is noisy. The whole transferability
  literature evaluates on exactly these numbers: a method tuned on them is evaluated on its training data;
  evaluate across campaigns (e.g. fit on CNNs, test on ViTs) as well as leave-one-task-out. group2's
  resisc45/eurosat are near ceiling (96-99 %). voc2007 is `map`.

## histories/logme.csv ({logme_shape})

- Origin: `logme_tllib/matrix_finetune.csv`, transcribed from thuml/Transfer-Learning-Library @
  c4aa59eb565650a552b809411601d0589efbbfe4 `examples/model_selection/README.md` ("Model Ranking Benchmark"
  tables). Licence: MIT. Identical (checked, all 80 cells) to zhangyikaii/Model-Spider
  `learnware/learnware_info.py` `DATA_SPECIFIC_RANK`.
- Campaign `logme_icml21`. Transformations: melt; Aircraft -> aircraft, OxfordIIITPets -> pets,
  StanfordCars -> cars, etc. Model names are already SFDA's torchvision spelling (no renames needed).
- Caveat: **the same torchvision weights as sfda group1, but a different fine-tuning campaign**; the two
  disagree noticeably (inception_v3 aircraft: 88.8 here vs 80.15 in sfda). Use the pair to measure the
  label noise of "ground-truth" rankings; do not concatenate them as if they were one campaign.

## histories/parc.csv ({parc_shape})

- Origin: `parc/matrix_all.csv`, pivot of dbolya/parc @ ddfca43a84d35328897d107d6f86e860b11801ce
  `oracles/all.csv` (Oracle = target test accuracy after fine-tuning). Licence: **none stated** (no
  LICENSE file; cite Bolya et al., NeurIPS 2021).
- Campaigns: `controlled` (the 32-model controlled bank of `oracles/controlled.csv`: alexnet, googlenet,
  resnet18, resnet50 x 8 source datasets; {pc} cells) and `crowd_sourced` (39 detectron2 / VISSL /
  semi-supervised / Places ResNet-50/101 backbones; {pcs} cells).
- Transformations: upstream `-1.0` (no result: all 7 targets of `resnet101%simclr_imagenet`, nabird of 3
  resnet101 detectron2 models) and source == target cells are absent rows; nabird -> nabirds,
  oxford_pets -> pets. `resnet101%simclr_imagenet` therefore does not occur.
- Caveats: voc2007 is a VOC-specific mAP-like metric (`map`, ~95 for every model; not comparable across
  targets). PARC's own published evaluation drops voc2007 and the swav/deepclusterv2/npid/moco/simclr models;
  this file keeps all cells. Only 5 architectures: the diversity is in the source datasets/tasks.
  The PARC checkpoints are PARC's own (not torchvision), so no timm weights are linked.

## histories/model_spider.csv ({ms_shape})

- Origin: `model_spider/multi_source_zoo_finetune.csv`, extracted from zhangyikaii/Model-Spider @
  d2a53e4d19db37a740c0807570f71dfaa06ab83d `learnware/learnware_info.py` (`DATA_FTD_SPECIFIC_RANK`...).
  Licence: MIT.
- Campaign `multi_source_zoo`: 3 ImageNet-initialised architectures (densenet201, inception_v3, resnet50)
  each fine-tuned on one of 22 source datasets, then fine-tuned on the 7 targets (all classification;
  the single-source zoo with the dSprites/UTKFace regression targets is not used -- its 8 classification
  targets equal the logme history).
- Transformations: melt; STL10 -> stl10, CUB2011 -> cub200, VLCS -> vlcs, AID -> aid, Pet -> pets.
  The upstream `in_selected_42` flag (the 42 models Model Spider itself ranks) is kept in the model
  description.
- Caveats: the source-fine-tuned checkpoints are not public; only the architecture can be instantiated.
  Some models were fine-tuned on a source equal to a target (e.g. `FTD_resnet50_AID` on aid).

## histories/shift_vtab.csv ({sv_shape})

- Origin: `shift_vtab/vtab1k_image_matrix_lr0.01_mean.csv`, derived from DS3Lab/shift @
  1db7f15d5fe4261d421f96c1b3a92492c8ca6b07 `data/ftrecords.csv` (framework HuggingFace, VTAB-1k 800/200
  split, 25 epochs, lr 0.01; test accuracy averaged over the 117 duplicated cells; re-checked against
  `ftrecords_tidy.csv`). Licence: **none stated** (no LICENSE file; cite SHiFT, VLDB 2023, and Renggli et
  al., CVPR 2022).
- Campaign `vtab1k_lr0.01`. Transformations: x100, round; clevr_count -> clevr, oxford_flowers102 -> flowers,
  oxford_iiit_pet -> pets, patch_camelyon -> pcam, svhn_cropped -> svhn,
  diabetic_retinopathy_detection -> diabetic_retinopathy. All 291 models kept, including the random-init
  test checkpoints ({sv_random}) whose near-chance rows are real measurements of this recipe.
- Caveats: fixed-lr SGD on 800 examples: many community checkpoints collapse on some tasks ({sv_low} cells
  < 5 %); smallnorb_azimuth (max ~20 %), sun397 (mean ~14 %) and diabetic_retinopathy (66-74 %) carry very
  little ranking signal. eurosat/resisc45 are evaluated on a held-out part of *train*, clevr on
  *validation* (as in VTAB). Same HF zoo as transfergraph but a different protocol: partly independent
  measurements.

## histories/transfergraph.csv ({tg_shape})

- Origin: TransferGraph/transfergraph @ 0458aff3ae6832926bed0bac515f243f99a98df0
  `resources/experiments/image_classification/records.csv` (copied verbatim to
  `transfergraph/image/records.csv`; one run per cell; `eval_accuracy` on the 0.7:1 split after 30 epochs
  at lr 0.01; pivot checked equal to `matrix_eval_accuracy.csv`). Licence: **none stated** (cite Li et al.,
  ICDE 2024).
- Campaign `image_ft_lr0.01_30ep`. Transformations: x100, round; input {tg_in};
  **food101 dropped** ({tg_food} cells, {tg_food_low} of them < 5 %: failed runs); **rows of random-init test
  models dropped**: {tg_random} ({tg_random_cells} cells, near-chance everywhere); stanfordcars -> cars,
  pets/flowers kept, smallnorb_label_azimuth -> smallnorb_azimuth, smallnorb_label_elevation ->
  smallnorb_elevation, diabetic_retinopathy_detection -> diabetic_retinopathy.
- Kept although < 5 %: {tg_kept_low} (looks like a diverged run of the fixed recipe).
- Caveats: low architectural diversity (most models are ViT-B/16 community fine-tunes); a single run per
  cell without HP search; diabetic_retinopathy (74-83 %), eurosat (~98 %), smallnorb_azimuth (~99 %) have
  very compressed ranges -> noisy rankings. Upstream `target_dataset_features.csv` lists flowers with 10
  classes and caltech101 with 101 (its split sizes 1020 / 3060 are those of Flowers-102 / TFDS caltech101);
  `tasks.csv` uses the class-name lists instead. TransferGraph's `kitti` may be a different KITTI task than
  VTAB's (not checked upstream). HF hub checkpoints may have changed between the SHiFT (2022) and
  TransferGraph (2023-24) runs.

## models.csv ({n_models} rows)

One row per model id across all histories (`histories` = semicolon-joined history names, in the order
{order}).
- `timm_arch`: registered timm architecture name (all checked against `timm_metadata/timm_registered_model_names.txt`,
  huggingface/pytorch-image-models @ aa4b5850c1543fa488abf260f18390eda46cf85d, Apache-2.0). From
  `sfda_benchmark/models.csv` / `parc/models.csv` `timm_arch`, Model Spider's architecture column, and for HF
  ids the heuristic `timm_arch_guess` of `transfergraph/image/models_timm_guess.csv` (preferred; HF config
  based) else `shift_vtab/models_timm_guess.csv`. Guesses are family/size level (noted in `description`);
  a `_224` guess is switched to the registered `_384` name when the hub id says 384, and a hub repo named
  after a registered timm architecture (nates-test-org/convit_base) gets that name. Where `timm_model` is
  set, `timm_arch` is its architecture (e.g. facebook/deit-small-patch16-224 -> deit_small_patch16_224).
  Empty where no timm architecture exists (googlenet, alexnet, PVT v1, VAN, MiT, Perceiver, data2vec, ...).
- `timm_model`: a timm pretrained tag **only when it is the same published weights** ({n_tm} models):
  torchvision v1 CNNs -> `<arch>.tv_in1k` (resnet34/50/101/152, densenet121/169/201, inception_v3);
  SFDA/EMMS ViTs: deit_* -> `.fb_in1k`, swin_t/s -> `.ms_in1k`, pvtv2_b2/b3 -> `pvt_v2_b*.in1k`,
  dino_small/base -> `vit_*_patch16_224.dino` (tag named in sfda models.csv; not in results-imagenet.csv, no
  ImageNet head); HF hub ids that HF converted from timm's weights: google/vit-base-patch16-224 ->
  `vit_base_patch16_224.orig_in21k_ft_in1k` (the original ViT release; NOT `augreg2_in21k_ft_in1k`, a later
  different fine-tune), google/vit-base-patch16-384, google/vit-large-patch32-384 (`orig_in21k_ft_in1k`),
  facebook/deit-* (`fb_in1k`), microsoft/swin-tiny/small-patch4-window7-224 (`ms_in1k`). Deliberately left
  empty (weights differ or identity not certain): torchvision mnasnet1_0 / mobilenet_v2 (timm's
  `mnasnet_100` / `mobilenetv2_100` weights are timm's own), self-supervised ResNet-50s, mocov3_small,
  PARC / Model Spider checkpoints, HF ConvNeXt / BEiT / Swin-B/L / WinKawaks ViT-S/Ti and all community fine-tunes,
  google/vit-large-patch16-224 and google/vit-base-patch32-384 (timm has no `orig` tag for them).
- `imagenet_top1`: timm `results-imagenet.csv` top-1 of the `timm_model` tag at its native resolution;
  empty when `timm_model` is empty (a different weight's top-1 is never used).
- `params_m`: HF config `number_of_parameters` (transfergraph `model_config_dataset.csv`; that checkpoint,
  its own head) when present; else the source's count (sfda `param_count_M_from_timm`, googlenet's ~6.6 from
  its note, parc `param_count_M`); else timm benchmark `param_count` of `timm_arch` (1000-class head).
- `gmacs`: timm `benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv` `infer_gmacs` of `timm_arch` at the
  model's input size (HF config input_shape, else the size in the arch name, else 299 for inception, else
  224); empty if no timm arch or no benchmark row at that size ({n_gm} models have it).
- `pretraining`: `in1k_supervised`, `in1k_selfsup`, `in21k_selfsup` (VISSL ImageNet-22k jigsaw/rotnet),
  `parc_source` (PARC controlled bank: trained by the PARC authors on `source_dataset`),
  `detection_backbone` (detectron2 COCO/LVIS/Cityscapes/VOC), `semi_weakly_supervised` (Instagram/YFCC then
  ImageNet), `source_supervised` (Places205), `source_finetuned` (Model Spider: ImageNet init then
  fine-tuned on `source_dataset`), `hf_official` (google/facebook/microsoft/nvidia/... hub orgs),
  `hf_community`, `random_init_test`. Counts: {pre_counts}.
- `source_dataset`: canonical task id where the dataset is one (imagenet -> imagenet1k, nabird -> nabirds,
  Dogs -> stanford_dogs, ...), `imagenet21k`, or the upstream label (hfpics, beans, coco, ...); for HF ids the
  transfergraph config `dataset` (the data of the checkpoint's last training stage); empty if unknown.
- `family`: coarse architecture family from the config model_type / name / arch (googlenet counts as
  `inception`); empty for community checkpoints whose config is unknown and whose name says nothing.
  Counts: {fam_counts}.

## tasks.csv ({n_tasks} rows)

- `n_classes` = length of the task's list in `classnames/classnames.json` (caltech101 = 102, the
  TFDS/VTAB list with background; SFDA-style torchvision loaders use 101).
- `domain`: `natural` (generic objects: caltech101, cifar10/100, stl10, vlcs, voc2007), `fine_grained`
  (aircraft, cars, cub200, flowers, food, nabirds, pets, stanford_dogs), `scene` (sun397), `texture` (dtd),
  `remote_sensing` (aid, eurosat, resisc45), `medical` (diabetic_retinopathy, pcam), `structured` (VTAB
  structured: clevr*, dmlab, dsprites_*, kitti, smallnorb_*), `digits` (svhn).
- `multi_label`: true only for voc2007.

## classnames/

`classnames.json`, `aliases.json`, `templates.json`, `PROVENANCE.md`: verbatim copies of the shared
`classnames/` folder
(class-name lists of 44 benchmarks from openai/CLIP @ d05afc436d78f1c48dc0dbf8e5980a9d471f35f6,
LAION-AI/CLIP_benchmark @ 48de38c1689fa6d8b4dd53e3370c669c3bb18117, thuml/Transfer-Learning-Library,
tensorflow/datasets, ... -- MIT / Apache-2.0 sources, a few with no licence stated (CUB names from
sachit-menon/classify_by_description_release, AID names from CAPTAIN-WHU/AID); prompt templates from
CLIP_benchmark (MIT)). Some VTAB structured class names (clevr, kitti, smallnorb angles, dsprites bins,
clevr_distance) were written by the collector from the task definitions. The per-dataset sources, edits
and label orders are in `classnames/PROVENANCE.md` (list position = label index of the named canonical
loader).
"""


def write_provenance(out: Path, histories: dict, models: pd.DataFrame, tasks: pd.DataFrame,
                     overlaps: dict, tg_stats: dict, unresolved: list) -> None:
    def fmt(h):
        nm, nt, nc = shape(histories[h])
        return f"{nm} models x {nt} tasks, {nc} cells"

    def camp(h, c):
        return int((histories[h]["campaign"] == c).sum())

    sv = histories["shift_vtab"]
    text = PROVENANCE_TEMPLATE.format(
        dec=SCORE_DECIMALS,
        unresolved="checked; unresolved: " + (", ".join(unresolved) if unresolved else "none"),
        n_tv=len(overlaps.get(("sfda", "logme"), [])),
        n_hf=len(overlaps.get(("shift_vtab", "transfergraph"), [])),
        sfda_shape=fmt("sfda"), logme_shape=fmt("logme"), parc_shape=fmt("parc"),
        ms_shape=fmt("model_spider"), sv_shape=fmt("shift_vtab"), tg_shape=fmt("transfergraph"),
        g1=camp("sfda", "group1_supervised_cnn"), g2=camp("sfda", "group2_selfsup_r50"),
        gv=camp("sfda", "vit"), pc=camp("parc", "controlled"), pcs=camp("parc", "crowd_sourced"),
        sv_random=", ".join(f"`{m}`" for m in sorted(HF_RANDOM_TEST_MODELS & set(sv["model_id"]))),
        sv_low=int((sv["score"] < 5).sum()),
        tg_in=f"{tg_stats['models_in']} models x {tg_stats['targets_in']} targets, "
              f"{tg_stats['cells_in']} cells",
        tg_food=tg_stats["food101_cells"], tg_food_low=tg_stats["food101_lt5"],
        tg_random=", ".join(f"`{m}`" for m in tg_stats["random_rows"]),
        tg_random_cells=tg_stats["random_cells"],
        tg_kept_low=", ".join(f"`{k}` = {v}" for k, v in tg_stats["kept_lt5"].items()) or "none",
        n_models=len(models), order=", ".join(HISTORY_ORDER),
        n_tm=int((models["timm_model"] != "").sum()), n_gm=int(models["gmacs"].notna().sum()),
        pre_counts=", ".join(f"{k} {v}" for k, v in
                             models["pretraining"].value_counts().sort_index().items()),
        fam_counts=", ".join(f"{k or '(empty)'} {v}" for k, v in
                             models["family"].value_counts().sort_index().items()),
        n_tasks=len(tasks),
    )
    (out / "PROVENANCE.md").write_text(text)


# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shared", nargs="?", default=str(DEFAULT_SHARED),
                    help="shared data folder (default: ../shared/data from the repo root)")
    ap.add_argument("--out", default=str(REPO / "data"), help="output folder (default: data/)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    shared, out = Path(args.shared).resolve(), Path(args.out).resolve()
    if not (shared / "sfda_benchmark").is_dir():
        ap.error(f"{shared} does not look like the shared data folder")
    log.info("reading %s, writing %s", shared, out)

    canon = Canon(shared)
    models: dict = {}
    histories = {
        "sfda": build_sfda(shared, canon, models),
        "logme": build_logme(shared, canon, models),
        "parc": build_parc(shared, canon, models),
        "model_spider": build_model_spider(shared, canon, models),
        "shift_vtab": build_shift_vtab(shared, canon),
    }
    histories["transfergraph"], tg_stats = build_transfergraph(shared, canon)
    overlaps = check_id_overlaps(histories)
    models_df = build_models(histories, models, shared, canon)
    tasks_df, unresolved = build_tasks(histories, canon)
    if unresolved:
        log.warning("task ids not in classnames.json: %s", unresolved)

    hist_dir = out / "histories"
    if hist_dir.is_dir():
        for stale in hist_dir.glob("*.csv"):
            if stale.stem not in histories:
                stale.unlink()
    for name, df in histories.items():
        write_csv(df, hist_dir / f"{name}.csv")
    write_csv(models_df, out / "models.csv")
    write_csv(tasks_df, out / "tasks.csv")
    (out / "classnames").mkdir(parents=True, exist_ok=True)
    for f in ("classnames.json", "aliases.json", "templates.json", "PROVENANCE.md"):
        shutil.copyfile(shared / "classnames" / f, out / "classnames" / f)
    write_readme(out, histories, models_df, tasks_df)
    write_provenance(out, histories, models_df, tasks_df, overlaps, tg_stats, unresolved)

    print("history        models  tasks  cells")
    for h in HISTORY_ORDER:
        nm, nt, nc = shape(histories[h])
        print(f"{h:<14} {nm:>6} {nt:>6} {nc:>6}")
    print(f"models.csv: {len(models_df)} rows; tasks.csv: {len(tasks_df)} rows; "
          f"unresolved task ids: {unresolved or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
