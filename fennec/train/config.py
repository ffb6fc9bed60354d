"""Hyperparameters of B-Tuning and of the plain fine-tuning baseline (one frozen dataclass)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from fennec.errors import SchemaError

__all__ = ["BTuningConfig"]


@dataclass(frozen=True)
class BTuningConfig:
    """Hyperparameters of :func:`fennec.train.btune` and :func:`fennec.train.finetune`.

    The defaults of the loss and the optimiser are the paper's (You et al., JMLR 2022).

    Parameters
    ----------
    top_k : int, default=3
        Number of teachers taken from the top of a ranking (a list of teachers is used whole).
    temperature : float, default=0.1
        T in the teacher weights ``pi = softmax(LogME / T)``.
    tradeoff : float, default=100.0
        lambda in ``loss = CE + lambda * MSE``; 0 gives plain fine-tuning (with teachers still computed).
    lr_backbone, lr_head : float, default=1e-3, 1e-2
        Learning rates of the pre-trained backbone and of the new classifier head.
    momentum : float, default=0.9
    nesterov : bool, default=True
        Nesterov momentum (needs ``momentum > 0``).
    weight_decay : float, default=5e-4
    epochs : int, default=10
        Maximum number of passes over the training split.
    batch_size : int, default=32
    val_fraction : float, default=0.2
        Share of every class held out for validation (stratified, drawn with ``seed``); ignored
        when validation data is given explicitly.
    seed : int, default=0
        Seeds the split, the new head's initialisation, the shuffles and dropout.
    patience : int or None, default=None
        Early stopping: stop after this many epochs without a better validation accuracy. None: off.
    image_size : int or None, default=None
        Square input size for the target and the teachers (their own crop and normalisation are
        kept). None: each model's own input size.
    num_threads : int or None, default=None
        torch CPU threads during the run (restored afterwards). None: leave torch's setting.
    """

    top_k: int = 3
    temperature: float = 0.1
    tradeoff: float = 100.0
    lr_backbone: float = 1e-3
    lr_head: float = 1e-2
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    epochs: int = 10
    batch_size: int = 32
    val_fraction: float = 0.2
    seed: int = 0
    patience: int | None = None
    image_size: int | None = None
    num_threads: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`~fennec.errors.SchemaError` (a ``ValueError``) naming the first bad parameter."""
        _int(self, "top_k", 1)
        _float(self, "temperature", positive=True)
        _float(self, "tradeoff")
        _float(self, "lr_backbone")
        _float(self, "lr_head")
        _float(self, "momentum")
        if not isinstance(self.nesterov, bool):
            _fail("nesterov", "a bool", self.nesterov)
        _float(self, "weight_decay")
        _int(self, "epochs", 1)
        _int(self, "batch_size", 1)
        v = self.val_fraction
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 < float(v) < 1.0:
            _fail("val_fraction", "a float in the open interval (0, 1)", v)
        _int(self, "seed", 0)
        for name, low in (("patience", 1), ("image_size", 8), ("num_threads", 1)):
            if getattr(self, name) is not None:
                _int(self, name, low, or_none=True)
        if self.nesterov and not self.momentum > 0:
            raise SchemaError(
                f"The 'nesterov' parameter of BTuningConfig needs momentum > 0. Got momentum={self.momentum!r} "
                "instead (pass nesterov=False for plain SGD).")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BTuningConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`~fennec.errors.SchemaError`."""
        if not isinstance(d, Mapping):
            raise SchemaError(f"BTuningConfig.from_dict expects a mapping; got {type(d).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise SchemaError(f"unknown BTuningConfig key(s) {unknown}; valid keys: {', '.join(known)}")
        return cls(**dict(d))

    def replace(self, **changes: Any) -> BTuningConfig:
        """A copy with some fields changed (validated)."""
        return replace(self, **changes)


def _fail(name: str, what: str, value: Any) -> None:
    raise SchemaError(f"The {name!r} parameter of BTuningConfig must be {what}. Got {value!r} instead.")


def _int(cfg: BTuningConfig, name: str, low: int, *, or_none: bool = False) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        _fail(name, f"an int >= {low}" + (" or None" if or_none else ""), value)


def _float(cfg: BTuningConfig, name: str, *, positive: bool = False) -> None:
    value = getattr(cfg, name)
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and (value > 0 if positive else value >= 0))
    if not ok:
        _fail(name, "a finite float " + ("> 0" if positive else ">= 0"), value)
