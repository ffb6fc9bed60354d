"""Versions that determine stored archi2vec vectors (networkx's WL hashes of directed graphs changed in 3.5).

Read from the installed distributions' metadata, so asking costs no import of networkx, torch or timm.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata


def environment() -> dict[str, str]:
    """``{archi2vec, numpy, networkx, torch, timm}`` versions (``"absent"`` where not installed)."""
    return dict(_environment())


# read once per process: each look-up scans sys.path
@lru_cache(maxsize=1)
def _environment() -> tuple[tuple[str, str], ...]:
    from archi2vec import __version__

    env = {"archi2vec": __version__}
    for dist in ("numpy", "networkx", "torch", "timm"):
        try:
            env[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # pragma: no cover
            env[dist] = "absent"
    return tuple(env.items())
