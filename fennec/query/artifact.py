"""Artifact I/O for every fitted part of a :class:`~fennec.query.recommender.Recommender`, in one place.

Layout: ``manifest.json`` (format version, config, inputs, fit, index, proxy and placer sections, sha256 of
every file), ``subspace.safetensors``, ``model_ids.csv``, ``columns.csv`` (column id, task, history, metric),
``history.csv``, and when present ``cv_results.csv``, ``proxy.safetensors`` + ``task_embeddings.csv`` (task
projector) and ``placer.safetensors`` (models without history). Written atomically; no pickle.
"""

from __future__ import annotations

import json
import logging
import os
from functools import partial
from pathlib import Path

import numpy as np

from fennec.artifacts import (
    atomic_directory,
    read_arrays,
    read_manifest,
    write_arrays,
    write_manifest,
)
from fennec.errors import ArtifactError, SchemaError
from fennec.history.scaler import TaskScaler
from fennec.history.union import Columns
from fennec.subspace import TransferSubspace
from fennec.tabular import Table

logger = logging.getLogger(__name__)

SUBSPACE_ARRAYS = ("model_vectors", "model_bias", "task_vectors", "task_bias", "task_mean", "task_std",
                   "global_mean", "noise_var")


def save_recommender(rec, directory: str | os.PathLike[str]) -> Path:
    """Write the artifact directory atomically."""
    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        _save_subspace(rec, tmp)
        proxy_section = _save_projector(rec, tmp)
        placer_section = _save_placer(rec, tmp)
        summary = rec.history_.summary()
        sub = rec.subspace_
        write_manifest(tmp, {
            "kind": "recommender",
            "config": rec.config.to_dict(),
            "inputs": {"history": summary["name"], "history_sha256": summary["sha256"],
                       "histories": rec.columns_.histories, "n_models": summary["n_models"],
                       "n_tasks": len(rec.columns_.task_ids), "n_columns": summary["n_tasks"],
                       "n_cells": summary["n_cells"], "observed_fraction": summary["observed_fraction"]},
            "fit": {"n_components": sub.n_components_, "l2": sub.l2_, "n_iter": sub.n_iter_,
                    "objective": sub.objective_, "noise_var": sub.noise_var_},
            "arrays": {"file": "subspace.safetensors",
                       "shapes": {"model_vectors": list(sub.model_vectors_.shape),
                                  "task_vectors": list(sub.task_vectors_.shape)}},
            "index": {"backend": rec.config.index_backend, "factory": rec.config.index_factory,
                      "metric": "inner_product", "vectors": "[u_i, mu + b_i]"},
            "metrics": {"kendall": "scipy tau-b", "weighted": "both conventions, see fennec.evaluation"},
            **({"proxy": proxy_section} if proxy_section else {}),
            **({"placer": placer_section} if placer_section else {}),
        })
    logger.info("wrote %s", directory)
    return directory


def _save_subspace(rec, tmp: Path) -> None:
    import pandas as pd

    sub = rec.subspace_
    write_arrays(tmp / "subspace.safetensors", {
        "model_vectors": sub.model_vectors_.astype(np.float64), "model_bias": sub.model_bias_.astype(np.float64),
        "task_vectors": sub.task_vectors_.astype(np.float64), "task_bias": sub.task_bias_.astype(np.float64),
        "task_mean": rec.scaler_.mean, "task_std": rec.scaler_.std,
        "global_mean": np.array([sub.global_mean_]), "noise_var": np.array([sub.noise_var_]),
    }, {"format": "fennec-subspace"})
    pd.DataFrame({"model_id": sub.model_ids_}).to_csv(tmp / "model_ids.csv", index=False)
    rec.columns_.frame.to_csv(tmp / "columns.csv", index=False)
    rec.history_.frame.to_csv(tmp / "history.csv", index=False)
    if sub.cv_results_ is not None:
        sub.cv_results_.to_csv(tmp / "cv_results.csv", index=False)


def _save_projector(rec, tmp: Path) -> dict | None:
    """Write ``proxy.safetensors`` and ``task_embeddings.csv``; return the manifest's ``proxy`` section."""
    proj = rec.projector_
    if proj is None:
        return None
    import pandas as pd

    from fennec.proxy.base import identity_key

    emb = rec.task_embeddings_
    params, arrays = proj.to_state()
    write_arrays(tmp / "proxy.safetensors", {
        "task_embeddings": emb.vectors.astype(np.float32),
        **{f"projector.{k}": np.asarray(v) for k, v in arrays.items()},
    }, {"format": "fennec-proxy", "identity": json.dumps(emb.identity, sort_keys=True, default=str)})
    pd.DataFrame({"task_id": emb.task_ids}).to_csv(tmp / "task_embeddings.csv", index=False)
    return {"identity": emb.identity, "identity_key": identity_key(emb.identity) if emb.identity else None,
            "n_embedded_tasks": len(emb), "dim": emb.dim, "embeddings_meta": emb.meta,
            "projector": params, "file": "proxy.safetensors"}


def _save_placer(rec, tmp: Path) -> dict | None:
    if rec.placer_ is None:
        return None
    params, arrays = rec.placer_.to_state()
    write_arrays(tmp / "placer.safetensors", {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()},
                 {"format": "fennec-placer"})
    return {"file": "placer.safetensors", "history_weight": rec.history_weight_, **params}


def _read_table(path: Path, **kwargs) -> Table:
    try:
        return Table.read_csv(path, **kwargs)
    except (SchemaError, OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: cannot be read ({exc})") from exc


def _read_ids(path: Path, column: str) -> list[str]:
    table = _read_table(path)
    if column not in table:
        raise ArtifactError(f"{path}: no column {column!r}; found {table.names}")
    return list(table[column])


def _read_matrix(path: Path, model_ids: list[str], column_ids: list[str]) -> np.ndarray:
    """``history.csv`` as the model x column matrix of scores (NaN where unmeasured), in the given orders."""
    cells = _read_table(path, dtypes={"score": float})
    rows, cols = {m: i for i, m in enumerate(model_ids)}, {c: j for j, c in enumerate(column_ids)}
    try:
        i = np.array([rows[m] for m in cells["model_id"]], dtype=np.intp)
        j = np.array([cols[t] for t in cells["task_id"]], dtype=np.intp)
    except KeyError as exc:
        raise ArtifactError(f"{path}: the history has a model or column the subspace does not ({exc})") from None
    Y = np.full((len(model_ids), len(column_ids)), np.nan)
    Y[i, j] = cells["score"]
    if not (set(i.tolist()) == set(rows.values()) and set(j.tolist()) == set(cols.values())):
        raise ArtifactError(f"{path}: the stored history does not match the subspace (a model or a column without "
                            "any result)")
    return Y


def _read_history(path: Path, name: str, sha256: str):
    """The artifact's history as a validated :class:`~fennec.history.table.History` named ``name``, read
    after the rest of the artifact: refused unless the file is still the one the manifest vouched for."""
    from fennec.history.table import History

    history = History.from_csv(path)
    if history.sha256 != sha256:
        raise ArtifactError(f"{path}: changed since the artifact was loaded (replaced by a new fit?); load it again")
    return History(frame=history.frame, name=name, sha256=history.sha256)


def load_recommender(directory: str | os.PathLike[str], cls):
    """Load an artifact (checks format version and checksums first)."""
    directory = Path(directory)
    manifest = read_manifest(directory, expected_kind="recommender")
    if "placer" in manifest and "featurizer" not in manifest["placer"] or not (directory / "columns.csv").is_file():
        raise ArtifactError(f"{directory}: written by an older Fennec (no model registry); refit it with fennec fit")
    if "placer" in manifest and not isinstance(manifest["placer"].get("penalties"), dict):
        raise ArtifactError(f"{directory}: written by an older Fennec (one cold-model placement for every model); "
                            "refit it with fennec fit")
    if "placer" in manifest and manifest["placer"].get("targets") != "profiles":
        raise ArtifactError(f"{directory}: written by an older Fennec (a cold-model placement of subspace "
                            "coordinates, not profiles); refit it with fennec fit")
    config = type(cls().config).from_dict(manifest["config"])
    sub, scaler = _load_subspace(directory, manifest)
    columns = Columns(_read_table(directory / "columns.csv"))
    if columns.ids != sub.task_ids_:
        raise ArtifactError(f"{directory / 'columns.csv'}: the columns do not match the subspace's task ids")
    path, name = directory / "history.csv", manifest["inputs"]["history"]
    matrix = _read_matrix(path, sub.model_ids_, sub.task_ids_)
    projector, embeddings = _load_projector(directory, manifest.get("proxy"), sub)
    placer = _load_placer(directory, manifest.get("placer"))
    weight = (manifest.get("placer") or {}).get("history_weight", 1.0)
    history = partial(_read_history, path, name, manifest["files"]["history.csv"])
    return cls.from_parts(config=config, history=history, matrix=matrix, columns=columns, scaler=scaler, subspace=sub,
                          projector=projector, task_embeddings=embeddings, placer=placer, history_weight=weight,
                          manifest=manifest)


def _load_subspace(directory: Path, manifest: dict) -> tuple[TransferSubspace, TaskScaler]:
    arrays = read_arrays(directory / "subspace.safetensors")
    missing = [k for k in SUBSPACE_ARRAYS if k not in arrays]
    if missing:
        raise ArtifactError(f"{directory / 'subspace.safetensors'}: missing array(s) {missing}")
    model_ids = _read_ids(directory / "model_ids.csv", "model_id")
    column_ids = _read_ids(directory / "columns.csv", "column_id")
    if arrays["model_vectors"].shape[0] != len(model_ids) or arrays["task_vectors"].shape[0] != len(column_ids):
        raise ArtifactError(
            f"{directory}: array shapes {arrays['model_vectors'].shape}/{arrays['task_vectors'].shape} do not "
            f"match {len(model_ids)} model ids / {len(column_ids)} columns")
    fit = manifest["fit"]
    sub = TransferSubspace.from_arrays(
        model_vectors=arrays["model_vectors"], model_bias=arrays["model_bias"], task_vectors=arrays["task_vectors"],
        task_bias=arrays["task_bias"], global_mean=float(arrays["global_mean"][0]),
        noise_var=float(arrays["noise_var"][0]), model_ids=model_ids, task_ids=column_ids, l2=float(fit["l2"]),
        n_iter=fit.get("n_iter"), objective=fit.get("objective"),
        cv_results=_read_table(directory / "cv_results.csv", dtypes={"n_components": int, "l2": float, "rmse": float})
        if (directory / "cv_results.csv").exists() else None)
    return sub, TaskScaler(mean=arrays["task_mean"], std=arrays["task_std"])


def _load_projector(directory: Path, section: dict | None, sub):
    if not section:
        return None, None
    from fennec.proxy.projector import TaskProjector
    from fennec.proxy.store import TaskEmbeddings

    arrays = read_arrays(directory / section.get("file", "proxy.safetensors"))
    ids = _read_ids(directory / "task_embeddings.csv", "task_id")
    emb = TaskEmbeddings(ids, arrays["task_embeddings"], section.get("identity"), section.get("embeddings_meta") or {})
    state = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("projector.")}
    return TaskProjector.from_state(section["projector"], state, sub), emb


def _load_placer(directory: Path, section: dict | None):
    if not section:
        return None
    from fennec.zoo.placement import ModelPlacer

    return ModelPlacer.from_state(section, read_arrays(directory / section["file"]))
