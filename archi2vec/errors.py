"""Exceptions raised by archi2vec on purpose. The CLI prints their message as one line."""

from __future__ import annotations


class Archi2VecError(ValueError):
    """A bad architecture name, parameter, graph or catalogue file; the message says which and why."""


class UnknownArchitectureError(Archi2VecError, KeyError):
    """An architecture name that timm (or the catalogue) does not know; the message lists close matches."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""
