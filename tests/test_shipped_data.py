"""Facts about the shipped data in ``data/`` (built by ``scripts/build_data.py``).

Reads only ``data/``; the numbers below were measured when the data were built and copied from the
upstream tables (see ``data/PROVENANCE.md``).
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
HISTORY_COLUMNS = ["model_id", "task_id", "score", "metric", "source", "campaign"]
MODEL_COLUMNS = [
    "model_id", "timm_arch", "timm_model", "pretraining", "source_dataset", "family",
    "params_m", "gmacs", "imagenet_top1", "histories", "description",
]
TASK_COLUMNS = ["task_id", "display_name", "n_classes", "domain", "multi_label", "histories"]
HISTORY_ORDER = ["sfda", "logme", "parc", "model_spider", "shift_vtab", "transfergraph"]

# name: (n models, n tasks, n cells)
SHAPES = {
    "sfda": (36, 13, 416),
    "logme": (10, 8, 80),
    "parc": (70, 7, 459),
    "model_spider": (66, 7, 462),
    "shift_vtab": (291, 19, 5000),
    "transfergraph": (178, 12, 2118),
}
CAMPAIGN_CELLS = {
    "sfda": {"group1_supervised_cnn": 121, "group2_selfsup_r50": 152, "vit": 143},
    "logme": {"logme_icml21": 80},
    "parc": {"controlled": 196, "crowd_sourced": 263},
    "model_spider": {"multi_source_zoo": 462},
    "shift_vtab": {"vtab1k_lr0.01": 5000},
    "transfergraph": {"image_ft_lr0.01_30ep": 2118},
}
TORCHVISION_SHARED = {
    "googlenet", "inception_v3", "resnet50", "resnet101", "resnet152", "densenet121",
    "densenet169", "densenet201", "mobilenet_v2", "mnasnet1_0",
}
DOMAINS = {"natural", "fine_grained", "scene", "texture", "remote_sensing", "medical", "structured",
           "digits"}


@cache
def history(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / "histories" / f"{name}.csv", dtype={"model_id": str, "task_id": str},
                       keep_default_na=False)


@lru_cache(maxsize=1)
def models() -> pd.DataFrame:
    return pd.read_csv(DATA / "models.csv", dtype=str, keep_default_na=False)


@lru_cache(maxsize=1)
def tasks() -> pd.DataFrame:
    return pd.read_csv(DATA / "tasks.csv", dtype=str, keep_default_na=False)


def cell(name: str, model_id: str, task_id: str) -> float:
    h = history(name)
    row = h[(h["model_id"] == model_id) & (h["task_id"] == task_id)]
    assert len(row) == 1, (name, model_id, task_id)
    return float(row["score"].iloc[0])


def test_shipped_files_exist():
    assert sorted(p.stem for p in (DATA / "histories").glob("*.csv")) == sorted(HISTORY_ORDER)
    for f in ("models.csv", "tasks.csv", "PROVENANCE.md", "README.md", "classnames/classnames.json",
              "classnames/aliases.json", "classnames/templates.json"):
        assert (DATA / f).is_file(), f


@pytest.mark.parametrize("name", HISTORY_ORDER)
def test_history_shape_and_schema(name):
    h = history(name)
    assert list(h.columns) == HISTORY_COLUMNS
    assert (h["model_id"].nunique(), h["task_id"].nunique(), len(h)) == SHAPES[name]
    assert not h.duplicated(["model_id", "task_id"]).any()
    assert (h["source"] == name).all()
    assert h["campaign"].value_counts().to_dict() == CAMPAIGN_CELLS[name]
    # sorted by (task_id, model_id), no empty ids
    key = list(zip(h["task_id"], h["model_id"], strict=True))
    assert key == sorted(key)
    assert (h["model_id"].str.strip() != "").all() and (h["task_id"].str.strip() != "").all()


@pytest.mark.parametrize("name", HISTORY_ORDER)
def test_scores_are_percent(name):
    h = history(name)
    score = h["score"].astype(float)
    assert np.isfinite(score).all()
    assert set(h["metric"]) <= {"top1", "map"}
    assert ((score >= 0) & (score <= 100)).all()
    # voc2007 is the only mAP-like task, and it is always labelled so
    assert set(h.loc[h["metric"] == "map", "task_id"]) <= {"voc2007"}
    assert (h.loc[h["task_id"] == "voc2007", "metric"] == "map").all()
    # percent, not fractions: every history has cells well above 1
    assert score.median() > 10


def test_ids_resolve_to_tables():
    m, t = models(), tasks()
    assert list(m.columns) == MODEL_COLUMNS and list(t.columns) == TASK_COLUMNS
    assert m["model_id"].is_unique and t["task_id"].is_unique
    all_models, all_tasks = set(), set()
    for name in HISTORY_ORDER:
        all_models |= set(history(name)["model_id"])
        all_tasks |= set(history(name)["task_id"])
    assert set(m["model_id"]) == all_models
    assert set(t["task_id"]) == all_tasks
    assert len(m) == 464 and len(t) == 30


def test_histories_columns_consistent():
    where_m, where_t = {}, {}
    for name in HISTORY_ORDER:
        for x in sorted(set(history(name)["model_id"])):
            where_m.setdefault(x, []).append(name)
        for x in sorted(set(history(name)["task_id"])):
            where_t.setdefault(x, []).append(name)
    m, t = models(), tasks()
    assert dict(zip(m["model_id"], m["histories"], strict=True)) == {k: ";".join(v) for k, v in where_m.items()}
    assert dict(zip(t["task_id"], t["histories"], strict=True)) == {k: ";".join(v) for k, v in where_t.items()}


def test_model_ids_shared_only_where_same_weights():
    sets = {n: set(history(n)["model_id"]) for n in HISTORY_ORDER}
    assert sets["sfda"] & sets["logme"] == TORCHVISION_SHARED
    assert sets["logme"] <= sets["sfda"]
    shared_hf = sets["shift_vtab"] & sets["transfergraph"]
    assert len(shared_hf) == 177 and all("/" in x for x in shared_hf)
    for i, a in enumerate(HISTORY_ORDER):
        for b in HISTORY_ORDER[i + 1:]:
            if {a, b} not in ({"sfda", "logme"}, {"shift_vtab", "transfergraph"}):
                assert not sets[a] & sets[b], (a, b)
    # no plain torchvision name hides in parc / model_spider
    assert all("%" in x for x in sets["parc"])
    assert all(x.startswith("FTD_") for x in sets["model_spider"])


def test_spot_values_from_upstream():
    assert cell("sfda", "resnet34", "aircraft") == 84.06
    assert cell("sfda", "inception_v3", "aircraft") == 80.15  # SFDA campaign
    assert cell("logme", "inception_v3", "aircraft") == 88.8  # LogME campaign, same weights
    assert cell("logme", "resnet50", "pets") == 92.5  # OxfordIIITPets -> pets
    assert cell("sfda", "byol", "resisc45") == 97.06  # resisc -> resisc45
    assert cell("sfda", "deit_tiny", "voc2007") == 83.1
    assert cell("parc", "alexnet%caltech101", "cifar10") == 92.87
    assert cell("parc", "alexnet%imagenet", "nabirds") == 46.4702  # nabird -> nabirds
    assert cell("model_spider", "FTD_densenet201_AID", "stl10") == 92.38
    assert cell("model_spider", "FTD_densenet201_AID", "aid") == 97.55
    assert cell("shift_vtab", "google/vit-base-patch16-224", "caltech101") == 88.623  # 0.88623 x 100
    assert cell("shift_vtab", "Aftabhussain/Tomato_Leaf_Classifier", "caltech101") == 78.7272
    assert cell("transfergraph", "google/vit-base-patch16-224", "caltech101") == 94.559


def test_missing_and_dropped_cells_are_absent():
    sfda = history("sfda")
    simclr = sfda[sfda["model_id"].isin(["simclr-v1", "simclr-v2"])]
    assert not set(simclr["task_id"]) & {"resisc45", "eurosat"}
    parc = history("parc")
    assert "resnet101%simclr_imagenet" not in set(parc["model_id"])  # all -1 upstream
    assert parc[parc["model_id"] == "resnet50%cub200"]["task_id"].tolist().count("cub200") == 0
    tg = history("transfergraph")
    assert "food" not in set(tg["task_id"])  # broken food101 column
    assert not {"nateraw/test_model_a", "lysandre/tiny-vit-random"} & set(tg["model_id"])
    assert set(tg["task_id"]) == {
        "caltech101", "cars", "cifar100", "diabetic_retinopathy", "dtd", "eurosat", "flowers",
        "kitti", "pets", "smallnorb_azimuth", "smallnorb_elevation", "svhn"}


def test_sfda_is_the_literature_table():
    sfda = history("sfda")
    core = {"aircraft", "caltech101", "cars", "cifar10", "cifar100", "dtd", "flowers", "food",
            "pets", "sun397", "voc2007"}
    assert set(sfda["task_id"]) == core | {"resisc45", "eurosat"}
    assert (sfda.groupby("campaign")["model_id"].nunique().to_dict()
            == {"group1_supervised_cnn": 11, "group2_selfsup_r50": 12, "vit": 13})


def test_tasks_table():
    t = tasks()
    classnames = json.loads((DATA / "classnames" / "classnames.json").read_text())
    for row in t.itertuples(index=False):
        assert row.task_id in classnames, row.task_id
        assert int(row.n_classes) == len(classnames[row.task_id])
        assert row.domain in DOMAINS
    assert set(t.loc[t["multi_label"] == "True", "task_id"]) == {"voc2007"}
    assert dict(zip(t["task_id"], t["n_classes"], strict=True))["pets"] == "37"
    assert dict(zip(t["task_id"], t["domain"], strict=True))["sun397"] == "scene"


def test_models_table():
    m = models().set_index("model_id")
    tagged = m[m["timm_model"] != ""]
    assert (tagged["timm_model"].str.split(".").str[0] == tagged["timm_arch"]).all()
    assert (m.loc[m["timm_model"] == "", "imagenet_top1"] == "").all()
    assert m.loc["resnet50", "timm_model"] == "resnet50.tv_in1k"
    assert float(m.loc["resnet50", "imagenet_top1"]) == 76.156
    assert m.loc["inception_v3", "timm_model"] == "inception_v3.tv_in1k"
    assert m.loc["deit_small", "timm_model"] == "deit_small_patch16_224.fb_in1k"
    assert m.loc["dino_small", "timm_model"] == "vit_small_patch16_224.dino"
    assert m.loc["google/vit-base-patch16-224", "timm_model"] == "vit_base_patch16_224.orig_in21k_ft_in1k"
    # torchvision weights that timm does not re-host / self-supervised checkpoints: no tag, no top-1
    for mid in ("mnasnet1_0", "mobilenet_v2", "googlenet", "byol", "mocov3_small", "resnet50%imagenet"):
        assert m.loc[mid, "timm_model"] == "" and m.loc[mid, "imagenet_top1"] == "", mid
    assert m.loc["googlenet", "timm_arch"] == "" and float(m.loc["googlenet", "params_m"]) == 6.6
    assert float(m.loc["resnet50", "gmacs"]) == 4.11
    assert m.loc["resnet50", "histories"] == "sfda;logme"
    assert m.loc["FTD_resnet50_Dogs", "source_dataset"] == "stanford_dogs"
    assert m.loc["resnet50%nabird", "pretraining"] == "parc_source"
    for col in ("params_m", "gmacs", "imagenet_top1"):
        vals = pd.to_numeric(m[col].replace("", np.nan))
        assert (vals.dropna() > 0).all(), col
    assert (m["pretraining"] != "").all()


def test_readme_lists_every_history():
    text = (DATA / "README.md").read_text()
    for name, (nm, nt, nc) in SHAPES.items():
        assert f"| `{name}` | {nm} x {nt} | {nc} |" in text
