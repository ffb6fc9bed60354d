"""The text of a benchmark release: its datasheet (``README.md``) and the protocol definitions.

:func:`datasheet` is written by :func:`fennec.release.export.export_benchmark`; it quotes the provenance
sections of ``data/PROVENANCE.md`` (:func:`shipped_provenance_sections`) and :data:`PROTOCOL_TEXT`, which
``conventions.json`` also holds.
"""

from __future__ import annotations

from fennec.evaluation.splits import CELL_DRAWS, CELL_FRACTION, GENERATORS, WARM_K

#: One definition per evaluation protocol (datasheet and ``conventions.json``).
PROTOCOL_TEXT = {
    "loto": "leave-one-task-out: fit on the other tasks; rank every model measured on the held-out task (and on "
            "at least one other task) with no information about it",
    "warm": "warm start: as loto, then k models of the held-out task are revealed (splits.json warm draws); the "
            "models not revealed are ranked",
    "lomo": "leave-one-model-out: each model's whole row is held out and predicted from side information "
            "(models.csv, archi2vec.safetensors); per task, the cold predictions of all models are ranked",
    "xgroup": "cross-group: xgroup:G fits on the other groups (campaigns) and ranks the models of G from side "
              "information; xgroup_rev:G fits on G alone and ranks the rest",
    "cells": "random held-out cells (splits.json cells, fraction cell_fraction); per task, the held-out models are "
             "ranked (tasks with fewer than 3 held-out models are skipped)",
}


def shipped_provenance_sections() -> dict[str, str]:
    """``## histories/<name>.csv`` sections of data/PROVENANCE.md, by history name."""
    from fennec.data.shipped import data_dir

    text = (data_dir() / "PROVENANCE.md").read_text(encoding="utf-8")
    out, name, lines = {}, None, []
    for line in text.splitlines():
        if line.startswith("## "):
            if name:
                out[name] = "\n".join(lines).strip()
            name, lines = None, []
            head = line[3:].strip()
            if head.startswith("histories/"):
                name = head.split("/", 1)[1].split(".csv", 1)[0]
                lines = [line]
        elif name:
            lines.append(line)
    if name:
        out[name] = "\n".join(lines).strip()
    return out


def datasheet(names, loaded, provenance, seed, n_draws, tasks, models, kept, *, fmt: str,
              fmt_version: int) -> str:
    """The release's ``README.md``: contents, histories, protocols, how to evaluate, provenance."""
    lines = _introduction(seed, fmt, fmt_version)
    lines += _contents(tasks, models, kept)
    lines += _histories(loaded)
    lines += _protocols(n_draws)
    lines += _how_to_evaluate()
    lines += _provenance(names, provenance)
    return "\n".join(lines).rstrip() + "\n"


def _introduction(seed, fmt, fmt_version) -> list[str]:
    from fennec import __version__

    return [
        "# Fennec benchmark release (datasheet)", "",
        "Published fine-tuning results of pre-trained vision models (model x task -> accuracy), frozen with the "
        "splits of every evaluation protocol, the metric conventions and a checksummed manifest, so that "
        "model-recommendation methods can be compared on exactly the same folds. Written by "
        f"`fennec export-benchmark` (fennec {__version__}, format `{fmt}` v{fmt_version}, seed {seed}). "
        "No experiment was run to produce these numbers: they are the upstream authors' results, re-shaped.", "",
    ]


def _contents(tasks, models, kept) -> list[str]:
    return [
        "## Contents", "",
        "| file | content |", "|---|---|",
        "| `histories/<name>.csv` | long table `model_id,task_id,score,metric,source,campaign` (score in %; "
        "`metric` is `top1` except `map` for voc2007) |",
        f"| `tasks.csv` | {len(tasks)} tasks: `task_id, display_name, n_classes, classnames_key, domain, "
        "multi_label, histories` |",
        "| `classnames.json` | class names per task in label order (key = `classnames_key`) |",
        f"| `models.csv` | {len(models)} models, rows of Fennec's model registry: canonical id (timm tag, "
        "torchvision weights, hf-hub id or history-local id), aliases (each history's own id), timm "
        "architecture, ImageNet top-1/top-5, params (M), GMACs, input size, pre-training kind, family |",
        f"| `archi2vec.safetensors`, `archi2vec_ids.csv` | archi2vec vectors of the {len(kept)} timm architectures "
        "(`vectors`), and the PCA of the whole archi2vec catalogue used by the cold-model featurizer |",
        "| `task_embeddings/` | text-proxy task embeddings (all-MiniLM-L6-v2 on the class names; identity in "
        "the JSON sidecar) |",
        "| `splits.json` | per history (canonical model ids): `models`/`tasks` (matrix order), `loto`, `lomo`, "
        "`xgroup` groups, "
        "`warm` revealed model ids per task / k / draw, `cells` held-out `[model_index, task_index]` per draw |",
        "| `conventions.json` | metric definitions exactly as computed (scipy calls) and protocol definitions |",
        "| `manifest.json` | format version, splits parameters, sha256 of every file |", "",
    ]


def _histories(loaded) -> list[str]:
    lines = ["## Histories", "", "| history | models | tasks | cells |", "|---|---|---|---|"]
    for n, h in loaded.items():
        lines.append(f"| `{n}` | {len(h.model_ids)} | {len(h.task_ids)} | {h.n_cells} |")
    return lines


def _protocols(n_draws) -> list[str]:
    lines = ["", "## Protocols", ""]
    lines += [f"- `{k}`: {v}." for k, v in PROTOCOL_TEXT.items()]
    lines += [
        "", f"Warm start reveals k in {list(WARM_K)} models, {n_draws} draws per task and k; cells holds out "
        f"{CELL_FRACTION:.0%} of the observed cells, {CELL_DRAWS} draws. The draws are stored in `splits.json`; "
        "they were made by:", "",
    ]
    lines += [f"- `{k}`: {v}." for k, v in GENERATORS.items()]
    return lines


def _how_to_evaluate() -> list[str]:
    return [
        "", "Metrics (`conventions.json`) are computed per task across the ranked models, averaged over draws "
        "within a task, then over tasks. Kendall tau is scipy's tau-b; weighted tau is given in both conventions "
        "of the literature: `scipy.stats.weightedtau(scores, truth)` (SFDA, TransferGraph) and "
        "`scipy.stats.weightedtau(truth, scores, rank=None)` (weights by the true rank: LogME, Model Spider). "
        "regret@k = best true score - best true score among the top-k predicted (accuracy points). "
        "Baselines: the history prior (a model's mean standardised score over the training tasks), ImageNet "
        "top-1 and parameter count (`models.csv`), random (mean over draws).", "",
        "## How to evaluate", "",
        "```bash",
        "fennec evaluate --benchmark benchmark_release/ --histories sfda            # Fennec beside every baseline",
        "fennec evaluate --benchmark benchmark_release/ --protocol loto,warm --out results.csv --per-task",
        "```", "",
        "In Python: `fennec.release.export.load_benchmark(path)` (verifies every checksum first) and "
        "`fennec.release.evaluate.evaluate_benchmark(release)`. Another method is evaluated on the same folds by "
        "reading `splits.json` and scoring its rankings with the functions named in `conventions.json`. "
        "Changing any file makes loading fail with a checksum error naming the file. The reference results "
        "of this release are in `RESULTS.md` (written by `fennec evaluate --benchmark ... --markdown`).", "",
    ]


def _provenance(names, provenance) -> list[str]:
    lines = [
        "## Provenance and licences (per history, from data/PROVENANCE.md)", "",
        "Licences are quoted as the upstream repositories state them; where none is stated the numbers are "
        "experimental facts republished from papers: cite the papers. Class names: see `data/classnames/"
        "PROVENANCE.md` in the Fennec repository (openai/CLIP, LAION-AI/CLIP_benchmark, tensorflow/datasets, "
        "... MIT / Apache-2.0, a few with no licence stated). Model metadata: timm (Apache-2.0) tables, HF "
        "configs via TransferGraph.", "",
    ]
    for n in names:
        sec = provenance.get(n)
        if sec:
            lines += [sec.replace("## histories/", "### histories/"), ""]
        else:
            lines += [f"### histories/{n}.csv", "", "(no provenance section found in data/PROVENANCE.md)", ""]
    return lines
