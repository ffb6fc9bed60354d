"""Cold models: place a model with no fine-tuning history into the transfer subspace from its side information.

A model's *profile* -- its standardised score on every fitted column, as the transfer subspace reconstructs
it -- is predicted in stages, each a ridge regression fitted on the models that do have a history, each on what the
previous stages left:

1. **base**: the strongest simple predictor -- ImageNet top-1 with a per-kind intercept (top-1 compared
   within its pre-training kind; a missing top-1 is imputed by its kind's mean and flagged);
2. **size**: log parameter count and log GMACs (standardised, missing flags) -- or off;
3. **archi2vec**: the archi2vec vector (PCA of the whole catalogue, unsupervised) -- or off.

Two further corrections were tried and left out because they hurt models of other campaigns (see the
issue-10 note): one-hot family, and a share of the residual of history models with the same architecture.

The penalties (and which corrections are on) are chosen by K-fold cross-validation over the history's models
(in a zoo of several histories, one history held out at a time: a correction must help on a campaign the fit
has not seen), scored by the per-task Kendall tau of the held-out models' predicted profiles against their
standardised results. Each correction must add :data:`CORRECTION_MARGIN` to be kept, and near-ties go to the
simpler choice. The choice is made twice, once per *regime*: for the models with an ImageNet top-1 and for
those without. They need different corrections -- where top-1 is known, archi2vec and size add little and
can hurt on another campaign; where it is not, they are most of what is known -- and a mean over all
models would let the (many) models without a top-1 decide for the others. Every feature is scaled with
statistics fixed at fit time and a row's regime is its own, so a model's placement never depends on which
other models are placed with it. Pure NumPy / pandas: side tables in, arrays out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from fennec.errors import NotFittedError, SchemaError
from fennec.zoo.features import SideFeaturizer

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
ArchLookup = Callable[[Sequence[str]], tuple[Array, np.ndarray]]
STAGES = ("base", "size", "archi2vec")
#: what the placement predicts (saved with it): profiles over the fitted columns
TARGETS = "profiles"
#: placement regimes: models whose ImageNet top-1 is known, and the others (each chooses its own stages)
REGIMES = ("top1", "no_top1")
REGIME_LABELS = {"top1": "with a top-1", "no_top1": "without"}
#: which models a regime's placement is fitted on: all of them, or the regime's own
POOLS = ("all", "own")
POOL_LABELS = {"all": "every model", "own": "its own"}


@dataclass(frozen=True)
class ArchSource:
    """Where archi2vec vectors come from: ``lookup(archs) -> (vectors, known)`` and the PCA basis
    ``(mean, components)`` (the installed catalogue by default; a benchmark release stores its own)."""

    lookup: ArchLookup
    pca_mean: Array
    pca_components: Array


def catalogue_source(n_components: int = 8) -> ArchSource:
    """The installed archi2vec catalogue: vectors by architecture name, PCA of the whole catalogue."""
    mean, comps = _catalogue_pca(n_components)
    return ArchSource(catalogue_vectors, mean, comps)


def catalogue_vectors(archs: Sequence[str]) -> tuple[Array, np.ndarray]:
    """archi2vec vectors of timm architecture names from the catalogue (zeros, ``False`` where unknown)."""
    names, vectors = _catalogue()
    index = {n: i for i, n in enumerate(names)}
    out = np.zeros((len(archs), vectors.shape[1]))
    known = np.zeros(len(archs), bool)
    for i, a in enumerate(archs):
        j = index.get(str(a).split(".")[0]) if a else None
        if j is not None:
            out[i], known[i] = vectors[j], True
    return out, known


@lru_cache(maxsize=1)
def _catalogue() -> tuple[list[str], Array]:
    import archi2vec

    names, vectors, _ = archi2vec.load_catalogue()
    return list(names), vectors.astype(np.float64)


@lru_cache(maxsize=4)
def _catalogue_pca(n_components: int) -> tuple[Array, Array]:
    _, V = _catalogue()
    mean = V.mean(axis=0)
    _, _, vt = np.linalg.svd(V - mean, full_matrices=False)
    comps = vt[:n_components].copy()
    # one sign per component (its largest entry positive) and 12 decimals: the same bytes in every process,
    # whatever the BLAS threads did to the last bits
    comps *= np.sign(comps[np.arange(len(comps)), np.argmax(np.abs(comps), axis=1)])[:, None]
    mean, comps = np.round(mean, 12), np.round(comps, 12)
    mean.flags.writeable = comps.flags.writeable = False
    return mean, comps


def ridge(X: Array, T: Array, l2: float) -> Array:
    """Ridge coefficients with an unpenalised intercept (first row) from ``X`` (n, p) to ``T`` (n, q).

    A NaN in ``T`` is a target that is not known: each column is fitted on the rows where it is finite (one
    solve per pattern of known rows); a column known on no row gets NaN coefficients."""
    X = np.asarray(X, dtype=float)
    T = np.asarray(T, dtype=float)
    if X.shape[0] != T.shape[0]:
        raise SchemaError(f"features have {X.shape[0]} rows but targets have {T.shape[0]}")
    Xa = np.hstack([np.ones((len(X), 1)), X])
    pen = np.diag(np.r_[0.0, np.full(X.shape[1], l2)]) + 1e-9 * np.eye(Xa.shape[1])
    known = np.isfinite(T)
    if known.all():
        return np.linalg.solve(Xa.T @ Xa + pen, Xa.T @ T)
    coef = np.full((Xa.shape[1], T.shape[1]), np.nan)
    patterns, which = np.unique(known.T, axis=0, return_inverse=True)
    for k, rows in enumerate(patterns):
        cols = np.flatnonzero(which.ravel() == k)
        if rows.any():
            A = Xa[rows]
            coef[:, cols] = np.linalg.solve(A.T @ A + pen, A.T @ T[np.ix_(rows, cols)])
    return coef


def apply_ridge(X: Array, coef: Array) -> Array:
    return np.hstack([np.ones((len(X), 1)), np.asarray(X, dtype=float)]) @ coef


def profile_kendall(P: Array, Z: Array) -> float:
    """Mean over columns of Kendall tau between predicted profiles ``P`` and observed ``Z`` (both (n, m),
    NaN where unknown), on the rows where both are known."""
    from scipy.stats import kendalltau

    taus = []
    for j in range(Z.shape[1]):
        ok = np.isfinite(Z[:, j]) & np.isfinite(P[:, j])
        if ok.sum() >= 3 and np.ptp(P[ok, j]) > 0:
            taus.append(kendalltau(P[ok, j], Z[ok, j]).statistic)
    return float(np.nanmean(taus)) if taus else -np.inf


class ModelPlacer:
    """Predict a model's profile over the fitted columns from its side information (module docstring).

    The targets are profiles, not subspace coordinates: in a zoo whose histories are not all linked by
    shared models, each part of the subspace has its own arbitrary rotation (:mod:`fennec.subspace.components`),
    so coordinates of models of different parts cannot be regressed together, while each column's scores
    can be, on the models the subspace determines there (the other cells are NaN targets). On one connected
    history the two are the same fit: a profile is linear in the coordinates.

    Parameters
    ----------
    l2_grid, size_l2_grid, arch_l2_grid : tuples
        Candidates for the penalties of the base, size and archi2vec stages (``inf`` = stage off), chosen by
        ``n_folds``-fold cross-validation, separately for the models with and without an ImageNet top-1.
    use_archi2vec : bool
        ``False`` removes the archi2vec stage from the search (the ``fennec_noarch`` ablation).
    """

    def __init__(self, *, l2_grid: Sequence[float] = (3.0, 10.0, 30.0),
                 size_l2_grid: Sequence[float] = (np.inf, 3.0, 10.0, 30.0),
                 arch_l2_grid: Sequence[float] = (np.inf, 30.0, 100.0), n_folds: int = 5, use_archi2vec: bool = True,
                 random_state: int = 0) -> None:
        self.l2_grid = tuple(float(x) for x in l2_grid)
        self.size_l2_grid = tuple(float(x) for x in size_l2_grid)
        self.arch_l2_grid = tuple(float(x) for x in arch_l2_grid) if use_archi2vec else (np.inf,)
        self.n_folds = int(n_folds)
        self.use_archi2vec = bool(use_archi2vec)
        self.random_state = int(random_state)

    # ------------------------------------------------------------------ fit
    def fit(self, side: pd.DataFrame, targets: Array, *, Z: Array, arch_source: ArchSource | None = None,
            groups: Sequence[str] | None = None) -> ModelPlacer:
        """Fit on the history's models: ``side`` (rows in model order), ``targets`` their reconstructed
        profiles (n, m; NaN where the subspace does not determine a cell) and the standardised history ``Z``
        (n, m; NaN where unmeasured).

        ``groups`` (each model's history, in a zoo of at least 3): the validation then holds out one group at a
        time, so a correction is kept only if it helps on the models of a campaign the fit has not seen."""
        if len(side) != len(targets):
            raise SchemaError(f"side table has {len(side)} rows for {len(targets)} models")
        self.offset_, T = split_targets(targets)
        self.featurizer_ = SideFeaturizer().fit(side)
        self.arch_source_ = (arch_source or catalogue_source()) if self.use_archi2vec else None
        blocks = self._blocks(side, fit=True)
        regimes = regime_of(side)
        self.selection_ = self._select(blocks, T, np.asarray(Z, float), groups, regimes)
        best = best_choices(self.selection_)
        self.penalties_ = {r: choice[1:] for r, choice in best.items()}
        self.pools_ = {r: choice[0] for r, choice in best.items()}
        self.coefs_ = {r: self._regime_coefs(blocks, T, regimes, r, pool, pens) for r, (pool, *pens) in best.items()}
        if self.oof_ is not None:  # a column no training fold could predict: the in-sample placement
            self.oof_ = np.where(np.isfinite(self.oof_), self.oof_, self._predict(blocks, regimes))
        logger.info("cold-model placement: %s", describe(self.penalties_, self.pools_, self.selection_))
        return self

    def _regime_coefs(self, blocks, T, regimes, regime, pool, pens) -> list:
        """A regime's stage coefficients, fitted on its pool; a column its own models do not reach (a part of
        the zoo with none of them) is fitted on every model."""
        rows = training_rows(regimes, regime, pool)
        coefs = self._fit_stages([B[rows] for B in blocks], T[rows], pens)[0]
        if rows.all():
            return coefs
        full = self._fit_stages(blocks, T, pens)[0]
        return [None if c is None else np.where(np.isfinite(c), c, f) for c, f in zip(coefs, full, strict=True)]

    def _blocks(self, side: pd.DataFrame, *, fit: bool = False) -> list[Array]:
        return [*self.featurizer_.blocks(side), self._arch_features(side, fit=fit)]

    def _arch_features(self, side: pd.DataFrame, *, fit: bool = False) -> Array:
        src = self.arch_source_
        if src is None:
            return np.zeros((len(side), 0))
        archs = side["arch"].fillna("").astype(str).tolist() if "arch" in side.columns else [""] * len(side)
        V, known = src.lookup(archs)
        known = np.asarray(known, bool)
        P = (np.asarray(V, float) - src.pca_mean) @ np.asarray(src.pca_components).T
        P[~known] = 0.0
        if fit:
            self.arch_scale_ = float(np.sqrt(np.mean(P[known] ** 2))) if known.any() else 1.0
        return np.hstack([P / max(self.arch_scale_, 1e-12), (~known).astype(float)[:, None]])

    @staticmethod
    def _fit_stages(blocks: list[Array], T: Array, penalties: Sequence[float]) -> tuple[list, Array]:
        """Each stage on the previous stages' residuals; returns (coefficients, final residuals)."""
        coefs, resid = [], T
        for B, pen in zip(blocks, penalties, strict=True):
            if not np.isfinite(pen) or B.shape[1] == 0:
                coefs.append(None)
                continue
            c = ridge(B, resid, pen)
            coefs.append(c)
            resid = resid - apply_ridge(B, c)
        return coefs, resid

    @staticmethod
    def _apply_stages(blocks: list[Array], coefs: list) -> Array:
        return sum(apply_ridge(B, c) for B, c in zip(blocks, coefs, strict=True) if c is not None)

    def _select(self, blocks, T, Z, groups, regimes) -> list[dict]:
        """One row per (regime, penalties): the cv Kendall on that regime's held-out models."""
        n = len(T)
        if n < 6:  # too few models to validate: the base stage alone, most regularised
            self.oof_ = None
            return [{"regime": r, "pool": POOLS[0], "base": max(self.l2_grid), "size": np.inf, "archi2vec": np.inf,
                     "kendall": float("nan")} for r in REGIMES]
        grid = list(product(POOLS, self.l2_grid, self.size_l2_grid, self.arch_l2_grid))
        random_folds = np.random.default_rng(self.random_state).permutation(np.arange(n) % max(2, min(self.n_folds, n)))
        grouped = groups is not None and len(set(groups)) >= 3
        folds = np.unique(list(groups), return_inverse=True)[1] if grouped else random_folds
        preds = self._cross_predict(blocks, T, folds, grid, regimes)
        rows = []
        for r in REGIMES:
            Zr = np.where((regimes == r)[:, None], Z, np.nan)
            rows += [{"regime": r, "pool": key[0], **dict(zip(STAGES, key[1:], strict=True)),
                      "kendall": profile_kendall(join_targets(self.offset_, P), Zr)} for key, P in preds.items()]
        best = best_choices(rows)
        # out-of-fold profiles of the chosen placement, by random folds (what side information says about
        # a model whose campaign the fit did see: the shrinkage prior of history models)
        oof = self._cross_predict(blocks, T, random_folds, sorted(set(best.values())), regimes) if grouped else preds
        chosen = np.zeros_like(T)
        for r, key in best.items():
            chosen[regimes == r] = oof[key][regimes == r]
        self.oof_ = join_targets(self.offset_, chosen)
        return rows

    def _cross_predict(self, blocks, T, folds, grid, regimes) -> dict:
        """Out-of-fold profiles of every model for every choice ``(pool, *penalties)``: each model predicted
        by its regime's placement fitted on the other folds."""
        preds = {key: np.zeros_like(T) for key in grid}
        for f in np.unique(folds):
            te = folds == f
            for r in REGIMES:
                rows = te & (regimes == r)
                if not rows.any():
                    continue
                for pool, *pens in grid:
                    tr = ~te & training_rows(np.where(te, "", regimes), r, pool)
                    coefs, _ = self._fit_stages([B[tr] for B in blocks], T[tr], pens)
                    preds[(pool, *pens)][rows] = self._apply_stages([B[rows] for B in blocks], coefs)
        return preds

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "coefs_"):
            raise NotFittedError("This ModelPlacer is not fitted yet; call fit() first.")

    @property
    def out_of_fold_(self) -> Array | None:
        """Cross-validated profiles of the training models (each predicted by a fit that did not
        see it): what side information alone says about a history model. None with fewer than 6 models."""
        self._check_fitted()
        return self.oof_

    def profiles(self, side: pd.DataFrame) -> Array:
        """Predicted profiles (n, m) of the rows of ``side``; each row depends on that row alone."""
        self._check_fitted()
        arch = any(c[2] is not None for c in self.coefs_.values())
        blocks = [*self.featurizer_.blocks(side), self._arch_features(side) if arch else np.zeros((len(side), 0))]
        return self._predict(blocks, regime_of(side))

    def _predict(self, blocks: list[Array], regimes: np.ndarray) -> Array:
        out = np.zeros((len(regimes), next(iter(self.coefs_.values()))[0].shape[1]))
        for r, coefs in self.coefs_.items():
            rows = regimes == r
            if rows.any():
                out[rows] = self._apply_stages([B[rows] for B in blocks], coefs)
        return join_targets(self.offset_, out)

    # ------------------------------------------------------------------ persistence (no pickle)
    def to_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        self._check_fitted()
        params = {"stages": list(STAGES), "targets": TARGETS, "featurizer": self.featurizer_.to_state(),
                  "use_archi2vec": self.use_archi2vec, "pools": dict(self.pools_),
                  "penalties": {r: [None if np.isinf(p) else p for p in pens] for r, pens in self.penalties_.items()}}
        arrays = {f"{r}.coef{i}": c for r, coefs in self.coefs_.items() for i, c in enumerate(coefs) if c is not None}
        if self.oof_ is not None:
            arrays["oof"] = self.oof_
        arrays["offset"] = self.offset_
        if any(c[2] is not None for c in self.coefs_.values()):
            src = self.arch_source_
            arrays.update({"pca_mean": np.asarray(src.pca_mean), "pca_components": np.asarray(src.pca_components),
                           "arch_scale": np.array([self.arch_scale_])})
        return params, arrays

    @classmethod
    def from_state(cls, params: dict, arrays: dict[str, np.ndarray], *, lookup: ArchLookup | None = None) -> ModelPlacer:
        if (list(params.get("stages", ())) != list(STAGES) or not isinstance(params.get("penalties"), dict)
                or params.get("targets") != TARGETS):
            raise SchemaError("the cold-model placement was saved by an older Fennec (other stages or subspace "
                              "coordinates instead of profiles); refit it")
        placer = cls(use_archi2vec=params["use_archi2vec"])
        placer.featurizer_ = SideFeaturizer.from_state(params["featurizer"])
        placer.penalties_ = {r: tuple(np.inf if p is None else float(p) for p in pens)
                             for r, pens in params["penalties"].items()}
        placer.pools_ = {r: str(params.get("pools", {}).get(r, POOLS[0])) for r in placer.penalties_}
        placer.coefs_ = {r: [arrays.get(f"{r}.coef{i}") for i in range(len(STAGES))] for r in placer.penalties_}
        placer.oof_ = arrays.get("oof")
        placer.offset_ = arrays["offset"]
        placer.arch_source_ = None
        if "arch_scale" in arrays:
            placer.arch_source_ = ArchSource(lookup or catalogue_vectors, arrays["pca_mean"], arrays["pca_components"])
            placer.arch_scale_ = float(arrays["arch_scale"][0])
        return placer


def split_targets(profiles: Array) -> tuple[Array, Array]:
    """``(offset, targets)``: a profile (n, m; NaN where unknown) as each column's mean, plus each model's
    general quality -- its mean centred score over the columns where it is known -- plus the rest.

    The quality (first target column) is known for every model and is learnt from all of them; the rest of a
    column only from the models it is known on. On complete profiles this changes nothing (every stage is
    linear in its targets); in a zoo of unlinked parts it lets a part's columns borrow the quality every part
    shows (a pre-training kind its own models lack, for instance)."""
    T = np.asarray(profiles, dtype=float)
    offset = np.nanmean(T, axis=0)
    centred = T - offset
    quality = np.nanmean(centred, axis=1)
    return offset, np.hstack([quality[:, None], centred - quality[:, None]])


def join_targets(offset: Array, targets: Array) -> Array:
    """The profiles (n, m) back from :func:`split_targets`'s form."""
    return offset + targets[:, :1] + targets[:, 1:]


def regime_of(side: pd.DataFrame) -> np.ndarray:
    """Each row's placement regime: ``top1`` where its ImageNet top-1 is known, else ``no_top1``."""
    return np.where(SideFeaturizer.has_top1(side), REGIMES[0], REGIMES[1])


def training_rows(regimes: np.ndarray, regime: str, pool: str) -> np.ndarray:
    """The models a regime's placement is fitted on: every model (``pool="all"``), or the regime's own
    (``"own"``) where there are at least :data:`MIN_OWN` of them."""
    own = regimes == regime
    return own if pool == "own" and own.sum() >= MIN_OWN else np.ones(len(regimes), bool)


def best_choices(rows: Sequence[dict]) -> dict[str, tuple]:
    """Each regime's chosen ``(pool, *penalties)`` (:func:`_simplest` over its rows of the selection)."""
    out = {}
    for r in REGIMES:
        row = min((row for row in rows if row["regime"] == r), key=_simplest)
        out[r] = (row["pool"], *(row[s] for s in STAGES))
    return out


def describe(penalties: Mapping[str, Sequence[float | None]], pools: Mapping[str, str] | None = None,
             rows: Sequence[dict] = ()) -> str:
    """One line: each regime's stages, their penalties and pool (and cv Kendall where ``rows`` give it)."""
    parts = []
    for r, pens in penalties.items():
        pens = tuple(np.inf if p is None else float(p) for p in pens)
        stages = ", ".join(f"{s} {'off' if np.isinf(p) else f'l2 {p:g}'}" for s, p in zip(STAGES, pens, strict=True))
        pool = (pools or {}).get(r, POOLS[0])
        cv = [row["kendall"] for row in rows if row["regime"] == r and row["pool"] == pool
              and tuple(row[s] for s in STAGES) == pens]
        parts.append(f"{REGIME_LABELS[r]}: {stages}, fitted on {POOL_LABELS[pool]}"
                     + (f" (cv Kendall {cv[0]:.3f})" if cv else ""))
    return "; ".join(parts)


#: fewest models of a regime its placement is fitted on alone (else on every model)
MIN_OWN = 6

#: cv Kendall each correction stage (size, archi2vec) must add to be kept
CORRECTION_MARGIN = 0.02


def _simplest(row: dict) -> tuple:
    """Best cv Kendall, each correction stage that is on charged :data:`CORRECTION_MARGIN`; among near-ties
    (to 1e-3) the simpler placement: fewer corrections, fitted on every model, more shrinkage."""
    on = [s for s in STAGES[1:] if np.isfinite(row[s])]
    return (-round(row["kendall"] - CORRECTION_MARGIN * len(on), 3), len(on), row["pool"] != POOLS[0], -row["base"],
            *(-row[s] if s in on else 0.0 for s in STAGES[1:]))
