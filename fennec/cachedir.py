"""Where Fennec caches what it computes (task embeddings, model features): one root, one folder per kind.

The root is ``$FENNEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/fennec``, else ``~/.cache/fennec``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir(kind: str) -> Path:
    """The cache folder of ``kind`` (``"embeddings"``, ``"features"``) under the cache root."""
    root = os.environ.get("FENNEC_CACHE_DIR")
    if root:
        return Path(root) / kind
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "fennec" / kind
