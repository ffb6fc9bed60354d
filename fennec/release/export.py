"""A frozen, self-contained benchmark release: export it, load it back, verify every checksum.

``export_benchmark(out)`` writes (atomically, through :func:`fennec.artifacts.atomic_directory`)::

    benchmark_release/
      README.md                 datasheet: provenance and licences per history, protocol, how to evaluate
      manifest.json             format, format_version, seed, protocol parameters, sha256 of every other file
      histories/<name>.csv      the long fine-tuning tables (byte copies of data/histories/<name>.csv)
      tasks.csv                 task_id, display_name, n_classes, domain, multi_label, classnames_key, histories
      classnames.json           class names of every task, label order (key = tasks.csv classnames_key)
      models.csv                model_id, timm_arch, timm_model, pretraining, ..., params_m, gmacs,
                                imagenet_top1, archi2vec_row (row of archi2vec.safetensors; empty = none)
      archi2vec.safetensors     vectors (n_archs x 256, float32, unit rows) of the models' timm architectures;
                                catalogue_pca_mean / catalogue_pca_components (float64): the PCA of the whole
                                archi2vec catalogue used by the cold-model featurizer
      archi2vec_ids.csv         row, timm_arch
      task_embeddings/          every task proxy available offline (the text proxy, all-MiniLM-L6-v2)
      splits.json               the folds of every protocol and history, warm-start draws and held-out cells
      conventions.json          metric definitions (fennec.evaluation.rankmetrics.CONVENTIONS) and protocols

``load_benchmark(path)`` verifies the sha256 of every file listed in the manifest *before* reading
anything else; one changed byte fails with an error naming the file and the word "checksum".

Splits are drawn by :func:`make_splits` with documented NumPy generators, so they can be re-derived from
the seed by anyone (the draws are also stored, so nobody has to).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from fennec.artifacts import (
    atomic_directory,
    check_output,
    library_versions,
    read_arrays,
    read_manifest,
    sha256_file,
    write_arrays,
)
from fennec.errors import ArtifactError, SchemaError, UnknownIdError
from fennec.evaluation.splits import (  # noqa: F401 - re-exported: part of the release format
    CELL_DRAWS,
    CELL_FRACTION,
    GENERATORS,
    N_DRAWS,
    WARM_K,
    make_splits,
)
from fennec.history.table import History

logger = logging.getLogger(__name__)

FORMAT = "fennec-benchmark"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# ---------------------------------------------------------------------------------------------- splits
def splits_parameters(seed: int, n_draws: int = N_DRAWS) -> dict:
    return {"seed": seed, "warm_k": list(WARM_K), "n_draws": n_draws, "cell_fraction": CELL_FRACTION,
            "cell_draws": CELL_DRAWS, "generators": GENERATORS}


# ---------------------------------------------------------------------------------------------- export
def _shipped_provenance_sections() -> dict[str, str]:
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


def _archi2vec_arrays(archs: list[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    from fennec.zoo.placement import catalogue_source

    src = catalogue_source()
    vecs, known = src.lookup(archs)
    kept = [a for a, k in zip(archs, known, strict=True) if k]
    arrays = {"vectors": vecs[known].astype(np.float32), "catalogue_pca_mean": np.asarray(src.pca_mean, np.float64),
              "catalogue_pca_components": np.asarray(src.pca_components, np.float64)}
    return arrays, kept


def _release_models(loaded: dict[str, History]):
    """The registry rows of the histories' models (canonical ids) and the histories in canonical ids."""
    from fennec.evaluation.protocols import canonical, with_unknown
    from fennec.zoo.registry import ModelRegistry

    registry = ModelRegistry.load()
    for h in loaded.values():
        registry = with_unknown(registry, h.model_ids)
    canon = {name: canonical(h, registry) for name, h in loaded.items()}
    ids = sorted({m for h in canon.values() for m in h.model_ids})
    frame = registry.frame.set_index("model_id").loc[ids].reset_index()
    return frame, canon


def export_benchmark(
    out: str | os.PathLike[str],
    *,
    histories: list[str] | None = None,
    seed: int = 0,
    n_draws: int = N_DRAWS,
    force: bool = False,
) -> Path:
    """Freeze the shipped histories, tables, task embeddings and protocol splits into ``out``.

    Parameters
    ----------
    out : path-like
        Release directory; replaced atomically (written to a temporary sibling, then renamed).
    histories : list of str, optional
        Shipped history names (default: all of them).
    seed : int
        Seed of the warm-start draws and held-out cells (:data:`GENERATORS`).
    n_draws : int
        Warm-start draws per task and k.
    force : bool, default=False
        Replace ``out`` even if it is not a benchmark release (by default only an empty directory or a
        release may be replaced; see :func:`fennec.artifacts.check_output`).

    Returns
    -------
    Path
        The release directory.
    """
    from fennec.data.shipped import data_dir, history_path, list_histories, load_history

    names = list(histories) if histories else list_histories()
    for name in names:
        history_path(name)  # unknown names raise UnknownIdError with suggestions
    if n_draws < 1:
        raise SchemaError(f"n_draws must be >= 1, got {n_draws}")
    src = data_dir()
    check_output(out, inputs=[src], force=force, format=FORMAT)  # before the work, not after
    loaded: dict[str, History] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HistoryWarning is also logged
        for name in names:
            loaded[name] = load_history(name)
    models, canon = _release_models(loaded)
    tasks = pd.read_csv(src / "tasks.csv", dtype=str, keep_default_na=False)
    with open(src / "classnames" / "classnames.json", encoding="utf-8") as fh:
        classnames = json.load(fh)
    task_ids = sorted({t for h in loaded.values() for t in h.task_ids})
    tasks = tasks[tasks["task_id"].isin(task_ids)].sort_values("task_id").reset_index(drop=True)
    tasks.insert(tasks.columns.get_loc("n_classes") + 1, "classnames_key",
                 [t if t in classnames else "" for t in tasks["task_id"]])
    archs = sorted({a for a in models["arch"] if a})
    arrays, kept = _archi2vec_arrays(archs)
    splits = {"format": "fennec-benchmark-splits", **splits_parameters(seed, n_draws),
              "histories": {name: make_splits(h, seed=seed, n_draws=n_draws) for name, h in canon.items()}}
    from fennec.evaluation.rankmetrics import CONVENTIONS

    conventions = {"metrics": CONVENTIONS, "aggregation": "per task across the task's ranked models, then the "
                   "mean over draws within a task, then the mean over tasks", "protocols": _PROTOCOL_TEXT,
                   "higher_is_better": True}
    provenance = _shipped_provenance_sections()
    with atomic_directory(out, force=force, format=FORMAT) as tmp:
        (tmp / "histories").mkdir()
        for name in names:
            shutil.copyfile(history_path(name), tmp / "histories" / f"{name}.csv")
        tasks.to_csv(tmp / "tasks.csv", index=False)
        models.to_csv(tmp / "models.csv", index=False)
        _write_json(tmp / "classnames.json", {t: classnames[t] for t in tasks["classnames_key"] if t}, indent=1)
        write_arrays(tmp / "archi2vec.safetensors", arrays,
                     {"format": "fennec-benchmark-archi2vec", "ids": "archi2vec_ids.csv"})
        pd.DataFrame({"row": range(len(kept)), "timm_arch": kept}).to_csv(tmp / "archi2vec_ids.csv", index=False)
        emb_dir = src / "task_embeddings"
        (tmp / "task_embeddings").mkdir()
        for p in sorted(emb_dir.iterdir()):
            if p.is_file():
                shutil.copyfile(p, tmp / "task_embeddings" / p.name)
        _write_json(tmp / "splits.json", splits, indent=None)
        _write_json(tmp / "conventions.json", conventions, indent=2)
        (tmp / "README.md").write_text(_datasheet(names, loaded, provenance, seed, n_draws, tasks, models, kept),
                                       encoding="utf-8")
        files = {p.relative_to(tmp).as_posix(): sha256_file(p)
                 for p in sorted(tmp.rglob("*")) if p.is_file() and p.name != MANIFEST}
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "created_utc": _created_utc(),
            "histories": {n: {"file": f"histories/{n}.csv", "n_models": len(h.model_ids),
                              "n_tasks": len(h.task_ids), "n_cells": h.n_cells, "sha256": files[f"histories/{n}.csv"]}
                          for n, h in loaded.items()},
            "splits": splits_parameters(seed, n_draws),
            "n_models": len(models), "n_tasks": len(tasks), "n_archi2vec": len(kept),
            "files": files, "environment": library_versions(),
        }
        _write_json(tmp / MANIFEST, manifest, indent=2)
        for p in [tmp, *tmp.rglob("*")]:  # mkdtemp / safetensors create owner-only modes
            p.chmod(0o755 if p.is_dir() else 0o644)
    logger.info("wrote benchmark release %s (%d histories, %d files)", out, len(names), len(files))
    return Path(out)


def _created_utc() -> str:
    """Now, or ``$SOURCE_DATE_EPOCH`` (the reproducible-builds convention) when set."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_json(path: Path, obj, *, indent: int | None) -> None:
    sep = (",", ":") if indent is None else (",", ": ")
    path.write_text(json.dumps(obj, indent=indent, separators=sep, ensure_ascii=False) + "\n", encoding="utf-8")


_PROTOCOL_TEXT = {
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


def _datasheet(names, loaded, provenance, seed, n_draws, tasks, models, kept) -> str:
    from fennec import __version__

    lines = [
        "# Fennec benchmark release (datasheet)", "",
        "Published fine-tuning results of pre-trained vision models (model x task -> accuracy), frozen with the "
        "splits of every evaluation protocol, the metric conventions and a checksummed manifest, so that "
        "model-recommendation methods can be compared on exactly the same folds. Written by "
        f"`fennec export-benchmark` (fennec {__version__}, format `{FORMAT}` v{FORMAT_VERSION}, seed {seed}). "
        "No experiment was run to produce these numbers: they are the upstream authors' results, re-shaped.", "",
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
        "## Histories", "",
        "| history | models | tasks | cells |", "|---|---|---|---|",
    ]
    for n, h in loaded.items():
        lines.append(f"| `{n}` | {len(h.model_ids)} | {len(h.task_ids)} | {h.n_cells} |")
    lines += ["", "## Protocols", ""]
    lines += [f"- `{k}`: {v}." for k, v in _PROTOCOL_TEXT.items()]
    lines += [
        "", f"Warm start reveals k in {list(WARM_K)} models, {n_draws} draws per task and k; cells holds out "
        f"{CELL_FRACTION:.0%} of the observed cells, {CELL_DRAWS} draws. The draws are stored in `splits.json`; "
        "they were made by:", "",
    ]
    lines += [f"- `{k}`: {v}." for k, v in GENERATORS.items()]
    lines += [
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
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------- load
@dataclass
class ArchiVectors:
    """archi2vec vectors of a release, by timm architecture, with the catalogue PCA."""

    archs: list[str]
    vectors: np.ndarray
    pca_mean: np.ndarray
    pca_components: np.ndarray

    def lookup(self, archs) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors float64, known bool)`` for timm architecture names (zeros where unknown)."""
        index = {a: i for i, a in enumerate(self.archs)}
        out = np.zeros((len(archs), self.vectors.shape[1]))
        known = np.zeros(len(archs), bool)
        for i, a in enumerate(archs):
            if isinstance(a, str) and a.split(".")[0] in index:
                out[i], known[i] = self.vectors[index[a.split(".")[0]]], True
        return out, known

    def source(self):
        """As an :class:`~fennec.zoo.placement.ArchSource` for the cold-model placement."""
        from fennec.zoo.placement import ArchSource

        return ArchSource(self.lookup, self.pca_mean, self.pca_components)


@dataclass
class BenchmarkRelease:
    """A loaded (and verified) benchmark release; see the module docstring for the layout."""

    path: Path
    manifest: dict
    models: pd.DataFrame
    tasks: pd.DataFrame
    classnames: dict[str, list[str]]
    splits: dict
    conventions: dict
    archi2vec: ArchiVectors
    _histories: dict[str, History] = field(default_factory=dict, repr=False)

    @property
    def history_names(self) -> list[str]:
        return list(self.manifest["histories"])

    def history(self, name: str) -> History:
        """One history of the release (validated; tasks with < 3 models dropped as in ``fennec evaluate``)."""
        if name not in self.manifest["histories"]:
            raise UnknownIdError(f"history {name!r} is not in the release {self.path}; "
                                 f"it holds {', '.join(self.history_names)}")
        if name not in self._histories:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                h = History.from_csv(self.path / self.manifest["histories"][name]["file"])
            self._histories[name] = replace(h, name=name)
        return self._histories[name]

    def registry(self):
        """The release's models as a :class:`~fennec.zoo.registry.ModelRegistry` (resolves every history id)."""
        from fennec.zoo.registry import ModelRegistry

        return ModelRegistry(self.models, architectures=self.archi2vec.archs)

    def history_splits(self, name: str) -> dict:
        try:
            return self.splits["histories"][name]
        except KeyError:
            raise UnknownIdError(f"{self.path / 'splits.json'}: no splits for history {name!r}") from None

    def task_embeddings(self):
        """The release's text-proxy task embeddings (:class:`fennec.proxy.TaskEmbeddings`)."""
        from fennec.proxy import TaskEmbeddings

        files = sorted((self.path / "task_embeddings").glob("*.safetensors"))
        if not files:
            raise ArtifactError(f"{self.path / 'task_embeddings'}: no task embeddings in the release")
        return TaskEmbeddings.load(files[0])


def verify_benchmark(path: str | os.PathLike[str]) -> dict:
    """Check the manifest's format and the sha256 of every file it lists; return the manifest."""
    manifest = read_manifest(path, format=FORMAT, max_version=FORMAT_VERSION, what="benchmark release",
                             written_by="fennec export-benchmark")
    files = manifest["files"]
    for name in manifest.get("histories", {}).values():
        if name.get("file") not in files:
            raise ArtifactError(f"{Path(path) / MANIFEST}: history file {name.get('file')} has no checksum")
    return manifest


def load_benchmark(path: str | os.PathLike[str]) -> BenchmarkRelease:
    """Verify every checksum of a release, then load its tables, splits and archi2vec vectors."""
    path = Path(path)
    manifest = verify_benchmark(path)
    from fennec.zoo.registry import NUMERIC

    models = pd.read_csv(path / "models.csv", dtype=str, keep_default_na=False)
    for col in NUMERIC:
        models[col] = pd.to_numeric(models[col].replace("", np.nan), errors="coerce")
    tasks = pd.read_csv(path / "tasks.csv", keep_default_na=False, na_values={"n_classes": [""]})
    with open(path / "classnames.json", encoding="utf-8") as fh:
        classnames = json.load(fh)
    with open(path / "splits.json", encoding="utf-8") as fh:
        splits = json.load(fh)
    with open(path / "conventions.json", encoding="utf-8") as fh:
        conventions = json.load(fh)
    arrays = read_arrays(path / "archi2vec.safetensors")
    archs = pd.read_csv(path / "archi2vec_ids.csv", dtype={"timm_arch": str})["timm_arch"].tolist()
    if len(archs) != len(arrays["vectors"]):
        raise ArtifactError(f"{path / 'archi2vec_ids.csv'}: {len(archs)} ids for {len(arrays['vectors'])} vectors")
    arch = ArchiVectors(archs, arrays["vectors"].astype(np.float64), arrays["catalogue_pca_mean"],
                        arrays["catalogue_pca_components"])
    return BenchmarkRelease(path, manifest, models, tasks, classnames, splits, conventions, arch)
