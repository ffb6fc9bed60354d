"""Optional dependencies: import them on demand with an error that names the package to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from fennec.errors import FennecError

__all__ = ["MissingPackageError", "require"]


class MissingPackageError(FennecError, ImportError):
    """An optional package needed for this call is not installed; the message names it."""


def require(module: str, package: str, *, purpose: str, extra_args: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingPackageError` naming the pip ``package``."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module and not module.startswith(f"{exc.name}."):
            raise
        cmd = f"pip install {extra_args + ' ' if extra_args else ''}{package}"
        raise MissingPackageError(f"{purpose}: the package {package!r} is not installed ({cmd})") from exc
