"""Exceptions raised by Fennec. Every message names the file, column, id or shape at fault."""

from __future__ import annotations


class FennecError(Exception):
    """Base class of every error Fennec raises on purpose; the CLI prints its message as one line."""


class SchemaError(FennecError, ValueError):
    """A table or array does not have the required columns, types, shape or values."""


class NotFittedError(FennecError, AttributeError):
    """An estimator was used before ``fit``."""


class ArtifactError(FennecError, OSError):
    """An artifact directory is missing, corrupt, or was written by an incompatible version."""


class UnknownIdError(FennecError, KeyError):
    """A model or task id is not known to the history, the index or the artifact."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""
