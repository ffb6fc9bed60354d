"""Per-task standardisation of a model x task matrix (NumPy only: what a loaded artifact needs of it)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fennec.errors import SchemaError


@dataclass(frozen=True)
class TaskScaler:
    """Per-task standardisation ``z = (y - mean_j) / std_j`` over the observed cells; invertible.

    Tasks differ in scale (CIFAR-10 ~97 %, aircraft ~80 %); comparing models across tasks needs a common
    scale. A task whose observed scores are all equal gets ``std = 1`` (nothing to rank; no division by 0).
    """

    mean: npt.NDArray[np.float64]
    std: npt.NDArray[np.float64]

    @classmethod
    def fit(cls, Y: npt.NDArray[np.float64]) -> TaskScaler:
        Y = np.asarray(Y, dtype=float)
        if Y.ndim != 2:
            raise SchemaError(f"expected a 2-D model x task matrix, got shape {Y.shape}")
        observed = np.isfinite(Y)
        n = observed.sum(axis=0)
        if (n == 0).any():
            raise SchemaError(f"task column(s) {np.flatnonzero(n == 0).tolist()} have no observed cell")
        mean = np.where(observed, Y, 0.0).sum(axis=0) / n
        var = np.where(observed, (Y - mean) ** 2, 0.0).sum(axis=0) / np.maximum(n - 1, 1)
        std = np.sqrt(var)
        std = np.where(std > 1e-12, std, 1.0)
        return cls(mean=mean, std=std)

    def transform(self, Y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return (np.asarray(Y, dtype=float) - self.mean) / self.std

    def inverse_transform(self, Z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(Z, dtype=float) * self.std + self.mean
