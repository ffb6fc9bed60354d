"""Cold-start models: place a model with no fine-tuning history into the transfer subspace.

A model's side information -- its architecture's archi2vec vector, parameter count, GMACs, ImageNet
top-1 where known, kind of pre-training -- predicts its subspace coordinates ``[b_i, u_i]`` (general
transfer quality and task-specific direction) by ridge regression fitted on the models that do have a
history. Pure NumPy except :func:`model_feature_table`, which reads the shipped tables / catalogue.

Feature design (:class:`ModelFeaturizer`): the 256-d archi2vec vectors are reduced by a PCA fitted on
the whole archi2vec catalogue (unsupervised, ~1 370 timm architectures, so no history leaks into it),
numeric features are log-scaled and standardised, unknown values are mean-imputed with a missing flag.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pandas as pd

from fennec.errors import NotFittedError, SchemaError

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
NUMERIC = (("params_m", True), ("gmacs", True), ("imagenet_top1", False))


def archi2vec_vectors(archs: Sequence[str | None]) -> tuple[Array, np.ndarray]:
    """archi2vec vectors of timm architecture names (zeros and ``False`` where none / unknown)."""
    import archi2vec

    names, vectors, _ = archi2vec.load_catalogue()
    index = {n: i for i, n in enumerate(names)}
    out = np.zeros((len(archs), vectors.shape[1]))
    known = np.zeros(len(archs), bool)
    missing = []
    for i, a in enumerate(archs):
        if not a or not isinstance(a, str):
            continue
        base = a.split(".")[0]
        if base in index:
            out[i], known[i] = vectors[index[base]], True
        else:
            missing.append((i, base))
    if missing:
        try:
            out[[i for i, _ in missing]] = archi2vec.lookup([b for _, b in missing])
            known[[i for i, _ in missing]] = True
        except Exception as exc:  # an unknown arch: no vector, flagged as missing
            logger.warning("archi2vec could not encode %s (%s)", [b for _, b in missing], exc)
    return out, known


@lru_cache(maxsize=4)
def catalogue_pca(n_components: int = 8) -> tuple[Array, Array]:
    """``(mean, components)`` of a PCA of the whole archi2vec catalogue (computed once per process;
    the arrays are read-only)."""
    import archi2vec

    _, vectors, _ = archi2vec.load_catalogue()
    V = vectors.astype(np.float64)
    mean = V.mean(axis=0)
    _, _, vt = np.linalg.svd(V - mean, full_matrices=False)
    comps = vt[:n_components].copy()
    mean.flags.writeable = comps.flags.writeable = False
    return mean, comps


@dataclass
class ModelFeaturizer:
    """Turn a models side table into a numeric design matrix (fit learns imputation and scaling)."""

    n_arch_components: int = 8
    use_archi2vec: bool = True

    def fit(self, side: pd.DataFrame) -> ModelFeaturizer:
        self.columns_ = [c for c, _ in NUMERIC if c in side.columns]
        raw = self._raw(side)
        obs = np.isfinite(raw)
        counts = obs.sum(axis=0)
        self.mean_ = np.where(counts > 0, np.where(obs, raw, 0.0).sum(axis=0) / np.maximum(counts, 1), 0.0)
        filled = np.where(np.isfinite(raw), raw, self.mean_)
        self.scale_ = filled.std(axis=0) if raw.size else np.zeros(0)
        self.scale_ = np.where(self.scale_ > 1e-12, self.scale_, 1.0)
        self.pretraining_ = sorted(set(side.get("pretraining", pd.Series(dtype=str)).fillna("").astype(str)) - {""})
        if self.use_archi2vec:
            self.pca_mean_, self.pca_components_ = self._arch_pca()
        return self

    # where archi2vec vectors come from (the installed catalogue; see StoredVectorsFeaturizer)
    def _arch_pca(self) -> tuple[Array, Array]:
        return catalogue_pca(self.n_arch_components)

    def _arch_vectors(self, archs: list) -> tuple[Array, np.ndarray]:
        return archi2vec_vectors(archs)

    def _raw(self, side: pd.DataFrame) -> Array:
        cols = []
        for c, log in NUMERIC:
            if c not in side.columns:
                continue
            v = pd.to_numeric(side[c], errors="coerce").to_numpy(dtype=float, copy=True)
            if log:
                with np.errstate(divide="ignore", invalid="ignore"):
                    v = np.log10(v)
            cols.append(np.where(np.isfinite(v), v, np.nan))
        return np.column_stack(cols) if cols else np.zeros((len(side), 0))

    def transform(self, side: pd.DataFrame) -> Array:
        if not hasattr(self, "columns_"):
            raise NotFittedError("This ModelFeaturizer is not fitted yet; call fit() first.")
        raw = self._raw(side)
        miss = ~np.isfinite(raw)
        num = (np.where(miss, self.mean_, raw) - self.mean_) / self.scale_
        parts = [num, miss.astype(float)]
        kinds = side.get("pretraining", pd.Series([""] * len(side))).fillna("").astype(str).to_numpy()
        parts.append(np.column_stack([kinds == k for k in self.pretraining_]).astype(float)
                     if self.pretraining_ else np.zeros((len(side), 0)))
        if self.use_archi2vec:
            archs = side.get("timm_arch", pd.Series([None] * len(side))).tolist()
            vec, known = self._arch_vectors(archs)
            proj = (vec - self.pca_mean_) @ self.pca_components_.T
            proj[~known] = 0.0
            scale = np.sqrt(np.mean(proj[known] ** 2)) if known.any() else 1.0
            parts += [proj / max(scale, 1e-12), (~known).astype(float)[:, None]]
        return np.hstack(parts)


def fit_placement(X: Array, targets: Array, *, l2: float = 1.0) -> Array:
    """Ridge coefficients (with an unpenalised intercept) from features ``X`` to ``targets``."""
    X = np.asarray(X, dtype=float)
    T = np.asarray(targets, dtype=float)
    if X.shape[0] != T.shape[0]:
        raise SchemaError(f"features have {X.shape[0]} rows but targets have {T.shape[0]}")
    Xa = np.hstack([np.ones((len(X), 1)), X])
    pen = np.r_[0.0, np.full(X.shape[1], l2)]
    return np.linalg.solve(Xa.T @ Xa + np.diag(pen) + 1e-9 * np.eye(Xa.shape[1]), Xa.T @ T)


def predict_placement(X: Array, coef: Array) -> Array:
    X = np.asarray(X, dtype=float)
    return np.hstack([np.ones((len(X), 1)), X]) @ coef


def timm_side_table(archs: Sequence[str], known: pd.DataFrame | None = None) -> pd.DataFrame:
    """Side information of timm architectures (``arch`` or ``arch.tag``) for :class:`ModelFeaturizer`.

    Rows of ``known`` (a models table) whose ``timm_model`` or ``timm_arch`` matches are reused;
    otherwise the parameter count is measured by building the model on the meta device (no weights,
    no download) and GMACs / ImageNet top-1 are left unknown.
    """
    rows = []
    for name in archs:
        arch = name.split(".")[0]
        row = {"model_id": name, "timm_arch": arch, "params_m": np.nan, "gmacs": np.nan,
               "imagenet_top1": np.nan, "pretraining": ""}
        if known is not None and len(known):
            hit = known[(known.get("timm_model", pd.Series(dtype=str)) == name)]
            if hit.empty:
                hit = known[(known.get("timm_arch", pd.Series(dtype=str)) == arch)]
            if not hit.empty:
                h = hit.iloc[0]
                for col in ("params_m", "gmacs", "pretraining"):
                    if col in h.index:
                        row[col] = h[col]
                if "timm_model" in h.index and h["timm_model"] == name:
                    row["imagenet_top1"] = h.get("imagenet_top1", np.nan)
        if not np.isfinite(pd.to_numeric(row["params_m"], errors="coerce")):
            row["params_m"] = _count_params_m(arch)
        rows.append(row)
    return pd.DataFrame(rows)


def _count_params_m(arch: str) -> float:
    from fennec._torch_compat import ensure_torchvision

    ensure_torchvision()
    import timm
    import torch

    if not timm.is_model(arch):
        import difflib

        close = difflib.get_close_matches(arch, timm.list_models(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise SchemaError(f"unknown timm architecture {arch!r}{hint}")
    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False)
    return float(sum(p.numel() for p in model.parameters()) / 1e6)


class ModelPlacer:
    """Predict a model's standardised profile over the history's tasks from its side information.

    ``fit(side, subspace)`` learns ridge coefficients from the featurized side table of the history's
    models (rows in ``subspace.model_ids_`` order; models whose side information is all unknown still
    count, through the missing flags) to their ``[b_i, u_i]``. ``profiles(side)`` returns
    ``mu + b + c_j + u . v_j`` for every history task ``j``.
    """

    def __init__(self, *, l2: float = 10.0, n_arch_components: int = 8) -> None:
        self.l2 = l2
        self.n_arch_components = n_arch_components

    def fit(self, side: pd.DataFrame, subspace) -> ModelPlacer:
        if len(side) != len(subspace.model_ids_):
            raise SchemaError(f"side table has {len(side)} rows for {len(subspace.model_ids_)} models")
        self.featurizer_ = ModelFeaturizer(n_arch_components=self.n_arch_components).fit(side)
        targets = np.hstack([subspace.model_bias_[:, None], subspace.model_vectors_])
        self.coef_ = fit_placement(self.featurizer_.transform(side), targets, l2=self.l2)
        self._subspace = subspace
        return self

    def coordinates(self, side: pd.DataFrame) -> tuple[Array, Array]:
        """``(bias, vectors)`` predicted for the rows of ``side``."""
        if not hasattr(self, "coef_"):
            raise NotFittedError("This ModelPlacer is not fitted yet; call fit() first.")
        t = predict_placement(self.featurizer_.transform(side), self.coef_)
        return t[:, 0], t[:, 1:]

    def profiles(self, side: pd.DataFrame) -> Array:
        b, U = self.coordinates(side)
        sub = self._subspace
        return sub.global_mean_ + b[:, None] + sub.task_bias_[None, :] + U @ sub.task_vectors_.T

    # persistence: arrays + JSON-able params (no pickle)
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        f = self.featurizer_
        params = {"l2": self.l2, "n_arch_components": self.n_arch_components, "columns": f.columns_,
                  "pretraining": f.pretraining_, "use_archi2vec": f.use_archi2vec}
        arrays = {"coef": self.coef_, "mean": f.mean_, "scale": f.scale_}
        if f.use_archi2vec:
            arrays.update({"pca_mean": f.pca_mean_, "pca_components": f.pca_components_})
        return params, arrays

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray], subspace) -> ModelPlacer:
        placer = cls(l2=params["l2"], n_arch_components=params["n_arch_components"])
        f = ModelFeaturizer(n_arch_components=params["n_arch_components"], use_archi2vec=params["use_archi2vec"])
        f.columns_, f.pretraining_ = list(params["columns"]), list(params["pretraining"])
        f.mean_, f.scale_ = arrays["mean"], arrays["scale"]
        if f.use_archi2vec:
            f.pca_mean_, f.pca_components_ = arrays["pca_mean"], arrays["pca_components"]
        placer.featurizer_, placer.coef_, placer._subspace = f, arrays["coef"], subspace
        return placer


@dataclass
class StoredVectorsFeaturizer(ModelFeaturizer):
    """A :class:`ModelFeaturizer` whose archi2vec vectors and catalogue PCA come from a stored source (a
    benchmark release's ``ArchiVectors``: ``lookup(names) -> (vectors, known)``, ``pca_mean``,
    ``pca_components``) instead of the installed catalogue."""

    arch: object = None

    def _arch_pca(self) -> tuple[Array, Array]:
        return self.arch.pca_mean, self.arch.pca_components[: self.n_arch_components]

    def _arch_vectors(self, archs: list) -> tuple[Array, np.ndarray]:
        return self.arch.lookup(archs)
