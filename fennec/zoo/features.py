"""Side information -> the numeric features that place a cold model (statistics fixed at fit time).

Two blocks: the *base* block, ImageNet top-1 (standardised; a model without one gets its pre-training kind's
mean and a missing flag) with one-hot pre-training kind -- top-1 within its kind -- and the *size* block,
log10 parameter count and log10 GMACs (standardised, missing flags). Pure pandas / NumPy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from fennec.errors import NotFittedError

if TYPE_CHECKING:
    import pandas as pd

Array = npt.NDArray[np.float64]
UNKNOWN_KINDS = ("", "unknown")
LOG_COLUMNS = ("params_m", "gmacs")


def _column(side: pd.DataFrame, name: str, numeric: bool) -> np.ndarray:
    if name not in side.columns:
        return np.full(len(side), np.nan) if numeric else np.array([""] * len(side), dtype=object)
    if numeric:
        import pandas as pd

        return pd.to_numeric(side[name], errors="coerce").to_numpy(dtype=float, copy=True)
    return side[name].fillna("").astype(str).to_numpy(dtype=object)


def _log(side: pd.DataFrame, name: str) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.log10(_column(side, name, True))
    return np.where(np.isfinite(v), v, np.nan)


def _stats(v: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(v)
    if not ok.any():
        return 0.0, 1.0
    sd = float(v[ok].std())
    return float(v[ok].mean()), sd if sd > 1e-12 else 1.0


class SideFeaturizer:
    """Turn a side table (``top1, params_m, gmacs, pretraining``) into a design matrix."""

    def fit(self, side: pd.DataFrame) -> SideFeaturizer:
        top1 = _column(side, "top1", True)
        kinds = _column(side, "pretraining", False)
        self.top1_ = _stats(top1)
        self.logs_ = {c: _stats(_log(side, c)) for c in LOG_COLUMNS}
        self.kinds_ = sorted({k for k in kinds if k not in UNKNOWN_KINDS})
        self.kind_top1_ = {k: float(np.mean(top1[(kinds == k) & np.isfinite(top1)]))
                           for k in self.kinds_ if ((kinds == k) & np.isfinite(top1)).any()}
        return self

    def _check(self) -> None:
        if not hasattr(self, "kinds_"):
            raise NotFittedError("This SideFeaturizer is not fitted yet; call fit() first.")

    def blocks(self, side: pd.DataFrame) -> tuple[Array, Array]:
        """The base (top-1 within kind) and size design matrices; row ``i`` depends on row ``i`` of ``side``."""
        self._check()
        top1 = _column(side, "top1", True)
        kinds = _column(side, "pretraining", False)
        miss = ~np.isfinite(top1)
        fill = np.array([self.kind_top1_.get(k, self.top1_[0]) for k in kinds], dtype=float)
        base = [((np.where(miss, fill, top1) - self.top1_[0]) / self.top1_[1])[:, None], miss[:, None]]
        base += [(kinds == k)[:, None] for k in self.kinds_]
        size = []
        for col in LOG_COLUMNS:
            v = _log(side, col)
            m = ~np.isfinite(v)
            mean, sd = self.logs_[col]
            size += [np.where(m, 0.0, (np.where(m, mean, v) - mean) / sd)[:, None], m[:, None]]
        return np.hstack(base).astype(float), np.hstack(size).astype(float)

    def transform(self, side: pd.DataFrame) -> Array:
        """Both blocks side by side (n, p): the columns of :meth:`names`."""
        return np.hstack(self.blocks(side))

    def names(self) -> list[str]:
        self._check()
        logs = [n for c in LOG_COLUMNS for n in (f"log_{c}", f"{c}_missing")]
        return ["top1", "top1_missing"] + [f"kind={k}" for k in self.kinds_] + logs

    @staticmethod
    def has_top1(side: pd.DataFrame) -> np.ndarray:
        """Which rows have an ImageNet top-1 (the placement regime)."""
        return np.isfinite(_column(side, "top1", True))

    def to_state(self) -> dict:
        self._check()
        return {"top1": list(self.top1_), "logs": {c: list(v) for c, v in self.logs_.items()},
                "kinds": self.kinds_, "kind_top1": self.kind_top1_}

    @classmethod
    def from_state(cls, state: dict) -> SideFeaturizer:
        f = cls()
        f.top1_ = tuple(float(x) for x in state["top1"])
        f.logs_ = {c: tuple(float(x) for x in v) for c, v in state["logs"].items()}
        f.kinds_ = list(state["kinds"])
        f.kind_top1_ = {k: float(v) for k, v in state["kind_top1"].items()}
        return f
