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
from fennec.release.datasheet import PROTOCOL_TEXT, datasheet, shipped_provenance_sections

logger = logging.getLogger(__name__)

FORMAT = "fennec-benchmark"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# ---------------------------------------------------------------------------------------------- splits
def splits_parameters(seed: int, n_draws: int = N_DRAWS) -> dict:
    return {"seed": seed, "warm_k": list(WARM_K), "n_draws": n_draws, "cell_fraction": CELL_FRACTION,
            "cell_draws": CELL_DRAWS, "generators": GENERATORS}


# ---------------------------------------------------------------------------------------------- export
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


@dataclass
class _Contents:
    """Everything a release holds, gathered before anything is written."""

    names: list[str]
    loaded: dict[str, History]
    models: pd.DataFrame
    tasks: pd.DataFrame
    classnames: dict[str, list[str]]
    arrays: dict[str, np.ndarray]
    kept: list[str]
    splits: dict
    conventions: dict
    provenance: dict[str, str]


def _load_histories(names: list[str]) -> dict[str, History]:
    from fennec.data.shipped import load_history

    loaded: dict[str, History] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HistoryWarning is also logged
        for name in names:
            loaded[name] = load_history(name)
    return loaded


def _release_tasks(src: Path, loaded: dict[str, History]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The rows of tasks.csv of the histories' tasks (with ``classnames_key``) and every task's class names."""
    tasks = pd.read_csv(src / "tasks.csv", dtype=str, keep_default_na=False)
    with open(src / "classnames" / "classnames.json", encoding="utf-8") as fh:
        classnames = json.load(fh)
    task_ids = sorted({t for h in loaded.values() for t in h.task_ids})
    tasks = tasks[tasks["task_id"].isin(task_ids)].sort_values("task_id").reset_index(drop=True)
    tasks.insert(tasks.columns.get_loc("n_classes") + 1, "classnames_key",
                 [t if t in classnames else "" for t in tasks["task_id"]])
    return tasks, classnames


def _gather(src: Path, names: list[str], seed: int, n_draws: int) -> _Contents:
    loaded = _load_histories(names)
    models, canon = _release_models(loaded)
    tasks, classnames = _release_tasks(src, loaded)
    archs = sorted({a for a in models["arch"] if a})
    arrays, kept = _archi2vec_arrays(archs)
    splits = {"format": "fennec-benchmark-splits", **splits_parameters(seed, n_draws),
              "histories": {name: make_splits(h, seed=seed, n_draws=n_draws) for name, h in canon.items()}}
    from fennec.evaluation.rankmetrics import CONVENTIONS

    conventions = {"metrics": CONVENTIONS, "aggregation": "per task across the task's ranked models, then the "
                   "mean over draws within a task, then the mean over tasks", "protocols": PROTOCOL_TEXT,
                   "higher_is_better": True}
    return _Contents(names, loaded, models, tasks, classnames, arrays, kept, splits, conventions,
                     shipped_provenance_sections())


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
    from fennec.data.shipped import data_dir, history_path, list_histories

    names = list(histories) if histories else list_histories()
    for name in names:
        history_path(name)  # unknown names raise UnknownIdError with suggestions
    if n_draws < 1:
        raise SchemaError(f"n_draws must be >= 1, got {n_draws}")
    src = data_dir()
    check_output(out, inputs=[src], force=force, format=FORMAT)  # before the work, not after
    contents = _gather(src, names, seed, n_draws)
    with atomic_directory(out, force=force, format=FORMAT) as tmp:
        _write_tables(tmp, src, contents)
        (tmp / "README.md").write_text(
            datasheet(names, contents.loaded, contents.provenance, seed, n_draws, contents.tasks, contents.models,
                      contents.kept, fmt=FORMAT, fmt_version=FORMAT_VERSION), encoding="utf-8")
        files = {p.relative_to(tmp).as_posix(): sha256_file(p)
                 for p in sorted(tmp.rglob("*")) if p.is_file() and p.name != MANIFEST}
        _write_json(tmp / MANIFEST, _manifest(contents, files, seed, n_draws), indent=2)
        for p in [tmp, *tmp.rglob("*")]:  # mkdtemp / safetensors create owner-only modes
            p.chmod(0o755 if p.is_dir() else 0o644)
    logger.info("wrote benchmark release %s (%d histories, %d files)", out, len(names), len(files))
    return Path(out)


def _write_tables(tmp: Path, src: Path, c: _Contents) -> None:
    """Every file of the release but the datasheet and the manifest."""
    from fennec.data.shipped import history_path

    (tmp / "histories").mkdir()
    for name in c.names:
        shutil.copyfile(history_path(name), tmp / "histories" / f"{name}.csv")
    c.tasks.to_csv(tmp / "tasks.csv", index=False)
    c.models.to_csv(tmp / "models.csv", index=False)
    _write_json(tmp / "classnames.json", {t: c.classnames[t] for t in c.tasks["classnames_key"] if t}, indent=1)
    write_arrays(tmp / "archi2vec.safetensors", c.arrays,
                 {"format": "fennec-benchmark-archi2vec", "ids": "archi2vec_ids.csv"})
    pd.DataFrame({"row": range(len(c.kept)), "timm_arch": c.kept}).to_csv(tmp / "archi2vec_ids.csv", index=False)
    emb_dir = src / "task_embeddings"
    (tmp / "task_embeddings").mkdir()
    for p in sorted(emb_dir.iterdir()):
        if p.is_file():
            shutil.copyfile(p, tmp / "task_embeddings" / p.name)
    _write_json(tmp / "splits.json", c.splits, indent=None)
    _write_json(tmp / "conventions.json", c.conventions, indent=2)


def _manifest(c: _Contents, files: dict[str, str], seed: int, n_draws: int) -> dict:
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "created_utc": _created_utc(),
        "histories": {n: {"file": f"histories/{n}.csv", "n_models": len(h.model_ids),
                          "n_tasks": len(h.task_ids), "n_cells": h.n_cells, "sha256": files[f"histories/{n}.csv"]}
                      for n, h in c.loaded.items()},
        "splits": splits_parameters(seed, n_draws),
        "n_models": len(c.models), "n_tasks": len(c.tasks), "n_archi2vec": len(c.kept),
        "files": files, "environment": library_versions(),
    }


def _created_utc() -> str:
    """Now, or ``$SOURCE_DATE_EPOCH`` (the reproducible-builds convention) when set."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_json(path: Path, obj, *, indent: int | None) -> None:
    sep = (",", ":") if indent is None else (",", ": ")
    path.write_text(json.dumps(obj, indent=indent, separators=sep, ensure_ascii=False) + "\n", encoding="utf-8")


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
