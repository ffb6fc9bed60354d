"""The shipped catalogue: archi2vec vectors of every timm architecture, how to build, load and query it.

Layout of ``data/archi2vec/`` (no pickle anywhere)::

    catalogue.npz    vectors: float32 (n_archs, n_features), unit rows; names: fixed-width unicode
    manifest.json    format, versions (networkx/torch/timm/numpy), encoder config, per-arch graph kind,
                     node/edge counts and seconds, failures with their error, timing summary
    .cache/          progress.jsonl of an interrupted build (resumable; not shipped)

The directory defaults to ``<repo>/data/archi2vec``; set ``ARCHI2VEC_CATALOGUE`` to use another one.
"""

from __future__ import annotations

import base64
import datetime as _dt
import difflib
import gc
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from archi2vec.encoding import encode_one
from archi2vec.parallel import map_unordered
from archi2vec.versions import environment

if TYPE_CHECKING:
    from archi2vec.embed import Archi2Vec
from archi2vec.errors import Archi2VecError, UnknownArchitectureError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "build_catalogue",
    "catalogue_dir",
    "catalogue_names",
    "load_catalogue",
    "lookup",
    "nearest",
]

logger = logging.getLogger(__name__)

FORMAT = "archi2vec-catalogue"
FORMAT_VERSION = 1
_VECTORS, _MANIFEST, _PROGRESS = "catalogue.npz", "manifest.json", Path(".cache") / "progress.jsonl"
_CACHE: dict[tuple[str, float], tuple[list[str], np.ndarray, dict[str, Any]]] = {}


def catalogue_dir(path: str | os.PathLike | None = None) -> Path:
    """The catalogue directory: ``path``, else ``$ARCHI2VEC_CATALOGUE``, else ``<repo>/data/archi2vec``."""
    if path is not None:
        return Path(path)
    env = os.environ.get("ARCHI2VEC_CATALOGUE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "data" / "archi2vec"


def load_catalogue(
    path: str | os.PathLike | None = None,
) -> tuple[list[str], npt.NDArray[np.float32], dict]:
    """Load the catalogue.

    Parameters
    ----------
    path : path-like, optional
        The catalogue directory (see :func:`catalogue_dir`).

    Returns
    -------
    names : list of str
        timm architecture names, in row order.
    vectors : ndarray of float32, shape (n_archs, n_features)
        Unit-norm rows (cosine similarity = dot product).
    meta : dict
        The manifest, plus ``"compatible"``: whether this process's networkx version equals the one
        that built the vectors (WL hashes of directed graphs differ across networkx versions, so
        freshly computed vectors are only comparable with the catalogue when it is True).

    Raises
    ------
    Archi2VecError
        If the files are missing, of another format version, or inconsistent.
    """
    folder = catalogue_dir(path)
    vec_file, man_file = folder / _VECTORS, folder / _MANIFEST
    if not vec_file.is_file() or not man_file.is_file():
        raise Archi2VecError(
            f"No archi2vec catalogue in {folder} (need {_VECTORS} and {_MANIFEST}); "
            "build one with `archi2vec build-catalogue`."
        )
    key = (str(vec_file.resolve()), vec_file.stat().st_mtime)
    if key not in _CACHE:
        _CACHE[key] = _read_catalogue(vec_file, man_file)
    names, vectors, meta = _CACHE[key]
    meta = dict(meta, compatible=meta.get("environment", {}).get("networkx") == environment()["networkx"])
    if not meta["compatible"]:
        logger.warning("catalogue built with networkx %s, running %s: new vectors are not comparable with it",
                       meta.get("environment", {}).get("networkx"), environment()["networkx"])
    return list(names), vectors.copy(), meta


def _read_catalogue(vec_file: Path, man_file: Path) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """Names, vectors and manifest of a catalogue, checked against each other and this format."""
    meta = json.loads(man_file.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise Archi2VecError(
            f"{man_file} has format {meta.get('format')!r} version {meta.get('format_version')!r}; "
            f"this archi2vec reads {FORMAT!r} version {FORMAT_VERSION}."
        )
    with np.load(vec_file, allow_pickle=False) as data:
        names = [str(n) for n in data["names"]]
        vectors = np.ascontiguousarray(data["vectors"], dtype=np.float32)
    if vectors.shape != (len(names), int(meta["config"]["n_features"])):
        raise Archi2VecError(
            f"{vec_file}: vectors of shape {vectors.shape} do not match {len(names)} names and "
            f"n_features={meta['config']['n_features']}."
        )
    return names, vectors, meta


def catalogue_names(path: str | os.PathLike | None = None) -> list[str]:
    """The architecture names of the catalogue, in row order, without reading its vectors or manifest
    (what a name resolver needs: a few ms instead of :func:`load_catalogue`'s tens)."""
    vec_file = catalogue_dir(path) / _VECTORS
    if not vec_file.is_file():
        raise Archi2VecError(f"No archi2vec catalogue in {vec_file.parent} (need {_VECTORS})")
    with np.load(vec_file, allow_pickle=False) as data:
        return [str(n) for n in data["names"].tolist()]


def _encoder_from(meta: dict) -> Archi2Vec:
    from archi2vec.embed import Archi2Vec

    cfg = meta["config"]
    return Archi2Vec(
        n_features=cfg["n_features"], iterations=cfg["iterations"], node_label=cfg["node_label"]
    )


def _row_name(name: str, index: dict[str, int]) -> str | None:
    if name in index:
        return name
    base = name.split(".", 1)[0]  # arch.tag -> arch
    return base if base in index else None


def lookup(
    names: Sequence[str], *, path: str | os.PathLike | None = None, compute_missing: bool = True
) -> npt.NDArray[np.float32]:
    """Vectors for ``names`` (timm ``arch`` or ``arch.tag``): catalogue rows, else computed.

    Missing architectures are traced and embedded with the catalogue's own config when
    ``compute_missing`` is True. Returns float32 of shape ``(len(names), n_features)``.

    Raises
    ------
    UnknownArchitectureError
        For a name neither in the catalogue nor (with ``compute_missing``) known to timm.
    """
    cat_names, vectors, meta = load_catalogue(path)
    index = {n: i for i, n in enumerate(cat_names)}
    out = np.zeros((len(names), vectors.shape[1]), dtype=np.float32)
    for i, name in enumerate(names):
        row = _row_name(name, index)
        if row is not None:
            out[i] = vectors[index[row]]
        elif compute_missing:
            from archi2vec.graph import to_networkx
            from archi2vec.trace import trace_model

            out[i] = _encoder_from(meta).fit().transform_one(to_networkx(trace_model(name)))
        else:
            close = difflib.get_close_matches(name, cat_names, n=5, cutoff=0.6)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise UnknownArchitectureError(
                f"Architecture {name!r} is not in the archi2vec catalogue{hint}"
            )
    return out


def nearest(
    query: str | npt.ArrayLike,
    k: int = 10,
    *,
    path: str | os.PathLike | None = None,
    include_self: bool = False,
    compute_missing: bool = True,
) -> Any:
    """The ``k`` catalogue architectures most similar (cosine) to ``query``.

    Parameters
    ----------
    query : str or array-like
        A timm architecture name (``arch`` or ``arch.tag``; computed if not in the catalogue) or a vector.
    k : int, default 10
    include_self : bool, default False
        Keep the query's own row (cosine 1) in the answer.

    Returns
    -------
    pandas.DataFrame
        Columns ``arch`` and ``cosine``, best first, index ``0..k-1``. Ties keep catalogue order.
    """
    import pandas as pd

    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise Archi2VecError(
            f"The 'k' parameter of nearest must be an int >= 1. Got {k!r} instead."
        )
    names, vectors, _ = load_catalogue(path)
    own: str | None = None
    if isinstance(query, str):
        own = _row_name(query, {n: i for i, n in enumerate(names)})
        vec = lookup([query], path=path, compute_missing=compute_missing)[0]
    else:
        vec = np.asarray(query, dtype=np.float32).ravel()
        if vec.shape != (vectors.shape[1],):
            raise Archi2VecError(
                f"A query vector must have {vectors.shape[1]} values. Got shape {vec.shape}."
            )
    scores = vectors @ vec
    order = np.argsort(-scores, kind="stable")
    rows = [(names[i], float(scores[i])) for i in order if include_self or names[i] != own][:k]
    return pd.DataFrame(rows, columns=["arch", "cosine"])


# ----------------------------------------------------------------------------------------- build


def _read_progress(file: Path, config: dict) -> dict[str, dict]:
    if not file.is_file():
        return {}
    lines = file.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0]) if lines else {}
    if header.get("config") != config:
        stale = file.with_suffix(f".stale-{int(time.time())}.jsonl")
        file.rename(stale)
        logger.warning(
            "progress in %s was built with another config; moved to %s", file, stale.name
        )
        return {}
    done: dict[str, dict] = {}
    for line in lines[1:]:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a kill
            continue
        done[record["name"]] = record
    return done


def build_catalogue(
    names: Sequence[str] | None = None,
    *,
    out_dir: str | os.PathLike | None = None,
    n_features: int = 256,
    iterations: int = 3,
    node_label: str = "op_shape",
    timeout_s: float | None = 120.0,
    resume: bool = True,
    retry_failed: bool = False,
    progress: bool = True,
    ray: bool = False,
    address: str | None = None,
) -> dict[str, Any]:
    """Encode architectures (default: every ``timm.list_models()`` name) and write the catalogue.

    Each architecture is appended to ``<out_dir>/.cache/progress.jsonl`` as soon as it is done, so a
    killed build resumes where it stopped (``resume=True``; records from another config are set aside).
    Failures (exceptions, or more than ``timeout_s`` seconds) are logged and listed in the manifest;
    ``retry_failed`` tries them again. With ``ray`` the architectures are encoded as Ray tasks (a local
    cluster unless ``address`` or ``$RAY_ADDRESS`` names one); records are written here as they finish.
    Returns the manifest that was written.
    """
    from archi2vec.embed import Archi2Vec

    encoder = Archi2Vec(n_features=n_features, iterations=iterations, node_label=node_label).fit()
    config = encoder.config()
    if names is None:
        from archi2vec.trace import import_timm

        names = list(import_timm().list_models())
    names = list(dict.fromkeys(names))
    folder = catalogue_dir(out_dir)
    progress_file = folder / _PROGRESS
    progress_file.parent.mkdir(parents=True, exist_ok=True)
    done = _done_records(progress_file, config, resume=resume, retry_failed=retry_failed)
    todo = [n for n in names if n not in done]
    logger.info("%d architectures: %d already done, %d to encode", len(names), len(names) - len(todo), len(todo))
    start = time.perf_counter()
    _encode_all(progress_file, todo, done, config, timeout_s=timeout_s, ray=ray, address=address,
                progress=progress)
    session_wall = time.perf_counter() - start
    return _write_catalogue(folder, names, done, config, session_wall)


def _done_records(progress_file: Path, config: dict, *, resume: bool, retry_failed: bool) -> dict[str, dict]:
    """The records of a previous build to keep (none without ``resume``; no failures with ``retry_failed``)."""
    done = _read_progress(progress_file, config) if resume else {}
    if not resume and progress_file.exists():
        progress_file.unlink()
    if retry_failed:
        done = {n: r for n, r in done.items() if r.get("ok")}
    return done


def _encode_all(progress_file: Path, todo: list[str], done: dict[str, dict], config: dict, *,
                timeout_s: float | None, ray: bool, address: str | None, progress: bool) -> None:
    """Encode ``todo``, appending each record to ``progress_file`` (and to ``done``) as it finishes."""
    from tqdm.auto import tqdm

    new_file = not progress_file.exists() or progress_file.stat().st_size == 0
    with progress_file.open("a", encoding="utf-8") as fh:
        if new_file:
            fh.write(json.dumps({"config": config, "environment": environment()}) + "\n")
        records = map_unordered(encode_one, todo, shared={"config": config, "timeout_s": timeout_s}, ray=ray,
                                address=address)
        bar = tqdm(records, total=len(todo), desc="archi2vec", unit="arch", disable=None if progress else True)
        for i, (k, record) in enumerate(bar):
            name = todo[k]
            bar.set_postfix_str(name[:40], refresh=False)
            if isinstance(record, BaseException):
                record = {"name": name, "ok": False, "error": " ".join(f"{type(record).__name__}: {record}".split())[:300],
                          "seconds": 0.0}
            done[name] = record
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            if i % 25 == 24:
                gc.collect()


def _write_catalogue(
    folder: Path, names: list[str], done: dict, config: dict, session_wall: float
) -> dict:
    ok = [n for n in names if done.get(n, {}).get("ok")]
    failed = {n: done[n].get("error", "?") for n in names if n in done and not done[n].get("ok")}
    vectors = np.zeros((len(ok), int(config["n_features"])), dtype=np.float32)
    for i, name in enumerate(ok):
        vectors[i] = np.frombuffer(base64.b64decode(done[name]["vector"]), dtype="<f4")
    width = max((len(n) for n in ok), default=1)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / _VECTORS, vectors=vectors, names=np.array(ok, dtype=f"<U{width}"))
    seconds = np.array([done[n]["seconds"] for n in names if n in done], dtype=float)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "environment": environment(),
        "threads": _torch_threads(),
        "n_requested": len(names),
        "n_encoded": len(ok),
        "n_failed": len(failed),
        "graph_kinds": dict(Counter(done[n]["kind"] for n in ok)),
        "timing": {
            "encode_seconds_total": round(float(seconds.sum()), 1) if seconds.size else 0.0,
            "encode_seconds_median": round(float(np.median(seconds)), 4) if seconds.size else 0.0,
            "encode_seconds_p90": round(float(np.quantile(seconds, 0.9)), 4)
            if seconds.size
            else 0.0,
            "encode_seconds_max": round(float(seconds.max()), 2) if seconds.size else 0.0,
            "last_session_wall_seconds": round(session_wall, 1),
        },
        "failures": failed,
        "archs": {
            n: {
                k: done[n][k]
                for k in ("kind", "device", "n_nodes", "n_edges", "seconds", "trace_error")
            }
            for n in ok
        },
    }
    (folder / _MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    _CACHE.clear()
    logger.info("wrote %d vectors (%d failures) to %s", len(ok), len(failed), folder)
    return manifest


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return None
    return int(torch.get_num_threads())
