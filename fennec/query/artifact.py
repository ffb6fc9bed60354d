"""Reading and writing a :class:`~fennec.query.recommender.Recommender` artifact directory.

Layout: ``manifest.json`` (format version, config, inputs, fit, index, proxy and placer sections, sha256
of every file), ``subspace.safetensors``, ``model_ids.csv``, ``task_ids.csv``, ``history.csv``, and when
present ``cv_results.csv``, ``proxy.safetensors`` + ``task_embeddings.csv`` (task projector) and
``placer.safetensors`` (cold-start models). Written atomically; no pickle.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from fennec.artifacts import (
    atomic_directory,
    read_arrays,
    read_manifest,
    write_arrays,
    write_manifest,
)
from fennec.errors import ArtifactError
from fennec.history.table import History, TaskScaler
from fennec.subspace.factorization import TransferSubspace

logger = logging.getLogger("fennec.query.recommender")


def save_recommender(rec, directory: str | os.PathLike[str]) -> Path:
    """Write the artifact directory atomically (manifest.json, subspace.safetensors, CSVs)."""
    rec._check_fitted()
    sub = rec.subspace_
    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        write_arrays(tmp / "subspace.safetensors", {
            "model_vectors": sub.model_vectors_.astype(np.float64),
            "model_bias": sub.model_bias_.astype(np.float64),
            "task_vectors": sub.task_vectors_.astype(np.float64),
            "task_bias": sub.task_bias_.astype(np.float64),
            "task_mean": rec.scaler_.mean, "task_std": rec.scaler_.std,
            "global_mean": np.array([sub.global_mean_]), "noise_var": np.array([sub.noise_var_]),
        }, {"format": "fennec-subspace"})
        pd.DataFrame({"model_id": sub.model_ids_}).to_csv(tmp / "model_ids.csv", index=False)
        metric = rec.history_.task_metric()
        pd.DataFrame({"task_id": sub.task_ids_, "metric": [metric[t] for t in sub.task_ids_]}).to_csv(
            tmp / "task_ids.csv", index=False)
        rec.history_.frame.to_csv(tmp / "history.csv", index=False)
        if sub.cv_results_ is not None:
            sub.cv_results_.to_csv(tmp / "cv_results.csv", index=False)
        summary = rec.history_.summary()
        proxy_section = _save_projector(rec, tmp)
        from fennec.query.candidates import save_placer

        placer_section = save_placer(rec, tmp)
        write_manifest(tmp, {
            "kind": "recommender",
            "config": rec.config.to_dict(),
            "inputs": {"history": summary["name"], "history_sha256": summary["sha256"],
                       "n_models": summary["n_models"], "n_tasks": summary["n_tasks"],
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

def _save_projector(rec, tmp: Path) -> dict | None:
    """Write ``proxy.safetensors`` and ``task_embeddings.csv``; return the manifest's ``proxy`` section."""
    proj = getattr(rec, "projector_", None)
    if proj is None:
        return None
    import json

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

def _load_projector(rec, directory: Path, section: dict) -> None:
    from fennec.proxy.projector import TaskProjector
    from fennec.proxy.store import TaskEmbeddings

    arrays = read_arrays(directory / section.get("file", "proxy.safetensors"))
    ids = pd.read_csv(directory / "task_embeddings.csv", dtype=str, keep_default_na=False)["task_id"].tolist()
    rec.task_embeddings_ = TaskEmbeddings(ids, arrays["task_embeddings"], section.get("identity"),
                                           section.get("embeddings_meta") or {})
    state = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("projector.")}
    rec.projector_ = TaskProjector.from_state(section["projector"], state, rec.subspace_)

def load_recommender(cls, directory: str | os.PathLike[str]):
    """Load an artifact written by :meth:`save` (checks format version and checksums first)."""
    directory = Path(directory)
    manifest = read_manifest(directory, expected_kind="recommender")
    rec = cls(config=cls.config_class().from_dict(manifest["config"]))
    arrays = read_arrays(directory / "subspace.safetensors")
    model_ids = pd.read_csv(directory / "model_ids.csv", dtype=str, keep_default_na=False)["model_id"].tolist()
    task_ids = pd.read_csv(directory / "task_ids.csv", dtype=str, keep_default_na=False)["task_id"].tolist()
    required = ("model_vectors", "model_bias", "task_vectors", "task_bias", "task_mean", "task_std",
                "global_mean", "noise_var")
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ArtifactError(f"{directory / 'subspace.safetensors'}: missing array(s) {missing}")
    if arrays["model_vectors"].shape[0] != len(model_ids) or arrays["task_vectors"].shape[0] != len(task_ids):
        raise ArtifactError(
            f"{directory}: array shapes {arrays['model_vectors'].shape}/{arrays['task_vectors'].shape} do not "
            f"match {len(model_ids)} model ids / {len(task_ids)} task ids")
    sub = TransferSubspace(int(manifest["fit"]["n_components"]), l2=float(manifest["fit"]["l2"]))
    sub.model_vectors_, sub.model_bias_ = arrays["model_vectors"], arrays["model_bias"]
    sub.task_vectors_, sub.task_bias_ = arrays["task_vectors"], arrays["task_bias"]
    sub.global_mean_, sub.noise_var_ = float(arrays["global_mean"][0]), float(arrays["noise_var"][0])
    sub.n_components_, sub.l2_ = int(manifest["fit"]["n_components"]), float(manifest["fit"]["l2"])
    sub.n_iter_, sub.objective_ = manifest["fit"].get("n_iter"), manifest["fit"].get("objective")
    sub.model_ids_, sub.task_ids_ = model_ids, task_ids
    cv = directory / "cv_results.csv"
    sub.cv_results_ = pd.read_csv(cv) if cv.exists() else None
    rec.subspace_ = sub
    rec.scaler_ = TaskScaler(mean=arrays["task_mean"], std=arrays["task_std"])
    rec.history_ = History.from_csv(directory / "history.csv")
    object.__setattr__(rec.history_, "name", manifest["inputs"]["history"])
    rec.manifest_ = manifest
    rec._build_index()
    rec.projector_, rec.task_embeddings_ = None, None
    if manifest.get("proxy"):
        _load_projector(rec, directory, manifest["proxy"])
    from fennec.query.candidates import load_placer

    load_placer(rec, directory, manifest.get("placer"))
    return rec

