"""Provenance of a campaign's rows: library versions, host, time."""

from __future__ import annotations

import datetime as _dt
import json
import socket
from functools import lru_cache

__all__ = ["host", "now_utc", "versions"]

_LIBRARIES = ("fennec", "torch", "timm", "numpy", "scikit-learn", "python")


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def host() -> str:
    return socket.gethostname()


@lru_cache(maxsize=1)
def versions() -> str:
    """The versions of the libraries a result depends on, as compact JSON (one CSV cell)."""
    from fennec.artifacts import library_versions

    lib = library_versions()
    return json.dumps(
        {k: lib.get(k, "absent") for k in _LIBRARIES}, sort_keys=True, separators=(",", ":")
    )
