"""Transferability metrics: how well frozen features of a pre-trained model suit a labelled task.

Pure NumPy/SciPy (scikit-learn for PCA and mixtures): arrays in, floats out, no torch and no files.
Every score is "higher is better" and comparable only across models on the same task data.

:data:`METRICS` maps a name to each metric that needs only ``(features, labels)``; NCE and LEEP also
need the source classifier's predictions and are called directly.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from fennec.errors import UnknownIdError
from fennec.transferability._validation import check_features_labels as check_features_labels
from fennec.transferability.gbc import gbc as gbc
from fennec.transferability.hscore import hscore as hscore
from fennec.transferability.hscore import shrinkage_hscore as shrinkage_hscore
from fennec.transferability.leep import leep as leep
from fennec.transferability.leep import nce as nce
from fennec.transferability.leep import nleep as nleep
from fennec.transferability.logme import LogME as LogME
from fennec.transferability.logme import logme as logme
from fennec.transferability.parc import parc as parc
from fennec.transferability.sfda import sfda as sfda
from fennec.transferability.transrate import transrate as transrate

__all__ = [
    "METRICS",
    "SOURCE_METRICS",
    "LogME",
    "check_features_labels",
    "gbc",
    "get_metric",
    "hscore",
    "leep",
    "logme",
    "nce",
    "nleep",
    "parc",
    "sfda",
    "shrinkage_hscore",
    "transrate",
]

#: Metrics called as ``metric(features, labels) -> float``.
METRICS: dict[str, Callable[..., float]] = {
    "logme": logme,
    "shrinkage_hscore": shrinkage_hscore,
    "hscore": hscore,
    "nleep": nleep,
    "parc": parc,
    "sfda": sfda,
    "transrate": transrate,
    "gbc": gbc,
}

#: Metrics that need the source classifier: ``nce(source_labels=, target_labels=)`` and
#: ``leep(source_probs=, target_labels=)``.
SOURCE_METRICS: dict[str, Callable[..., float]] = {"nce": nce, "leep": leep}


def get_metric(name: str) -> Callable[..., float]:
    """Return the metric registered under ``name`` in :data:`METRICS`.

    Parameters
    ----------
    name : str
        One of ``sorted(METRICS)``; case-insensitive, "-" and "_" are interchangeable.

    Returns
    -------
    callable
        ``metric(features, labels) -> float``.

    Raises
    ------
    UnknownIdError
        For an unknown name; the message lists the valid names (and NCE/LEEP's different call).
    """
    key = str(name).strip().lower().replace("-", "_")
    if key in METRICS:
        return METRICS[key]
    valid = ", ".join(sorted(METRICS))
    if key in SOURCE_METRICS:
        raise UnknownIdError(
            f"metric {name!r} needs the source classifier's predictions, not (features, labels); "
            f"call fennec.transferability.{key}() directly. Metrics of (features, labels): {valid}"
        )
    close = difflib.get_close_matches(key, list(METRICS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownIdError(f"unknown metric {name!r}; valid names: {valid}.{hint}")
