"""Encoding one architecture for the catalogue: trace it, hash its graph, under a time limit. Runs where
:func:`archi2vec.catalogue.build_catalogue` sends it (this process or a Ray worker)."""

from __future__ import annotations

import base64
import contextlib
import functools
import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archi2vec.embed import Archi2Vec

logger = logging.getLogger(__name__)

__all__ = ["encode_one", "encode_record", "time_limit"]


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise ``TimeoutError`` after ``seconds`` (POSIX main thread only; otherwise no limit)."""
    usable = (
        seconds
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def _raise(signum: int, frame: Any) -> None:
        raise TimeoutError(f"timed out after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def encode_record(name: str, encoder: Archi2Vec, timeout_s: float | None) -> dict[str, Any]:
    from archi2vec.graph import to_networkx
    from archi2vec.trace import trace_model

    start = time.perf_counter()
    try:
        with time_limit(timeout_s):
            trace = trace_model(name)
            graph = to_networkx(trace)
            vec = encoder.transform_one(graph)
        return {
            "name": name,
            "ok": True,
            "kind": trace.kind,
            "device": trace.device,
            "n_nodes": graph.number_of_nodes(),
            "n_edges": graph.number_of_edges(),
            "seconds": round(time.perf_counter() - start, 4),
            "trace_error": trace.error,
            "vector": base64.b64encode(vec.astype("<f4").tobytes()).decode("ascii"),
        }
    except Exception as exc:  # one bad architecture must not stop the build
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        logger.warning("%s: failed (%s)", name, message)
        return {
            "name": name,
            "ok": False,
            "error": message,
            "seconds": round(time.perf_counter() - start, 4),
        }


@functools.lru_cache(maxsize=2)
def _encoder(n_features: int, iterations: int, node_label: str) -> Archi2Vec:
    from archi2vec.embed import Archi2Vec

    return Archi2Vec(n_features=n_features, iterations=iterations, node_label=node_label).fit()


def encode_one(name: str, shared: dict[str, Any]) -> dict[str, Any]:
    """The progress record of one architecture (``shared``: the encoder's config and the time limit); runs
    where :func:`build_catalogue` sends it (here or a Ray worker)."""
    cfg = shared["config"]
    encoder = _encoder(int(cfg["n_features"]), int(cfg["iterations"]), str(cfg["node_label"]))
    return encode_record(name, encoder, shared["timeout_s"])
