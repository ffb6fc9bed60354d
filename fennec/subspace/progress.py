"""Progress of a long search (the rank/L2 choice of :class:`~fennec.subspace.factorization.TransferSubspace`):
a time estimate and progress lines, logged at INFO and, once the search is expected to take longer than
half a minute, as warnings (so the command line shows them without ``-v``). Libraries log, never print.
"""

from __future__ import annotations

import logging
import time

logger = logging.getLogger("fennec.subspace.factorization")

__all__ = ["SearchProgress"]


class SearchProgress:
    """Time estimate and progress of the rank/L2 search: logged at INFO, and as warnings (seen on the
    command line) once it is expected to take longer than ``slow_s`` seconds."""

    def __init__(self, total: int, shape: tuple[int, int], slow_s: float = 30.0, every_s: float = 60.0) -> None:
        self.total, self.shape, self.slow_s, self.every_s = total, shape, slow_s, every_s
        self.done, self.loud = 0, False
        self.start = self.last = 0.0

    def step(self) -> None:
        """Call before each fit."""
        now = time.monotonic()
        if not self.done:
            self.start = self.last = now
        else:
            left = (now - self.start) / self.done * (self.total - self.done)
            if not self.loud and now - self.start + left > self.slow_s:
                self.loud, self.last = True, now
                logger.warning("choosing rank and L2 by held-out cells on %d x %d: %d fits, about %s left; pass "
                               "--rank and --l2 (n_components=, l2=) to skip the search", *self.shape, self.total,
                               _duration(left))
            elif self.loud and now - self.last >= self.every_s:
                self.last = now
                logger.warning("rank/L2 search: %d of %d fits done, about %s left", self.done, self.total,
                               _duration(left))
            else:
                logger.debug("rank/L2 search: %d of %d fits done", self.done, self.total)
        self.done += 1


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"
