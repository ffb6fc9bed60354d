"""Artifact directories: a manifest (JSON), arrays (safetensors), ids and tables (CSV). Never pickle.

Writes are atomic (:mod:`fennec.outputs`): everything goes to a temporary sibling directory which is
swapped into place only when complete, so a crash never leaves a half-written artifact, and an existing
directory is replaced only if Fennec wrote it. Loading checks the format name, refuses a newer
``format_version``, verifies the sha256 of every file listed in the manifest, and refuses a file that
the manifest does not list (it would be read unverified).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from fennec.errors import ArtifactError
from fennec.outputs import FENNEC_FORMATS as FENNEC_FORMATS
from fennec.outputs import UNLISTED_OK, recover_directory
from fennec.outputs import atomic_directory as atomic_directory
from fennec.outputs import atomic_path as atomic_path
from fennec.outputs import check_output as check_output
from fennec.outputs import sha256_file as sha256_file

logger = logging.getLogger(__name__)

FORMAT = "fennec-artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour an artifact depends on (``"absent"`` if not installed)."""
    import platform  # here, not at import: reading an artifact needs neither
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("fennec", "numpy", "scipy", "pandas", "scikit-learn", "faiss-cpu", "torch", "timm",
                 "open_clip_torch", "networkx", "safetensors"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def write_json(path: str | os.PathLike[str], obj) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, allow_nan=True) + "\n")


def write_arrays(path: Path, arrays: Mapping[str, np.ndarray], metadata_: Mapping[str, str] | None = None) -> None:
    """A safetensors file whose bytes depend on its content only (the metadata keys sorted: safetensors
    writes them in hash order, which differs between processes)."""
    from safetensors.numpy import save

    clean = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    data = save(clean, metadata=dict(metadata_ or {}))
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    Path(path).write_bytes(data[:8] + text.ljust(n) + data[8 + n:] if len(text) <= n else data)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot be read as safetensors ({exc})") from exc


def read_ids(path: str | os.PathLike[str], column: str) -> list[str]:
    """The ``column`` of an artifact's id table (``model_ids.csv``, ``task_ids.csv``): every id a non-empty,
    unique string, else one :class:`ArtifactError` naming the file, the column and the ids at fault."""
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ArtifactError(f"{path}: cannot be read as CSV ({' '.join(str(exc).split())})") from exc
    if column not in frame.columns:
        raise ArtifactError(f"{path}: no column {column!r}; found {list(frame.columns)}")
    ids = frame[column].tolist()
    empty = [i + 2 for i, v in enumerate(ids) if not v.strip()]
    if empty:
        raise ArtifactError(f"{path}: column {column!r} is empty on line(s) {empty[:5]}")
    seen: set[str] = set()
    repeated = sorted({v for v in ids if v in seen or seen.add(v)})
    if repeated:
        raise ArtifactError(f"{path}: column {column!r} must hold unique ids; repeated: {repeated[:5]}")
    return ids


def write_manifest(directory: Path, manifest: dict) -> None:
    """Add format fields and the sha256 of every other file in ``directory``, then write the manifest."""
    files = {p.relative_to(directory).as_posix(): sha256_file(p) for p in sorted(directory.rglob("*"))
             if p.is_file() and p.name != MANIFEST}
    full = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **manifest,
        "files": files,
        "environment": library_versions(),
    }
    (directory / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.ndarray, tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_manifest(
    directory: str | os.PathLike[str],
    *,
    expected_kind: str | None = None,
    verify: bool = True,
    format: str = FORMAT,
    max_version: int = FORMAT_VERSION,
    what: str = "artifact",
    written_by: str = "fennec fit",
) -> dict:
    """Read and check a manifest: format, version, kind, and (``verify``) every file's checksum.

    Shared by artifacts (``format="fennec-artifact"``) and benchmark releases (``"fennec-benchmark"``);
    ``what`` and ``written_by`` only word the errors.
    """
    directory = Path(directory)
    if not directory.exists() and not recover_directory(directory):
        raise ArtifactError(f"{directory}: {what} directory not found")
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: is not a directory (a {what} is a directory written by '{written_by}')")
    path = directory / MANIFEST
    if not path.exists():
        raise ArtifactError(f"{directory}: no {MANIFEST}; not a Fennec {what} ('{written_by}' writes one)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: corrupt manifest ({exc})") from exc
    got = manifest.get("format") if isinstance(manifest, dict) else None
    if got != format:
        raise ArtifactError(f"{path}: not a Fennec {what} manifest (format={got!r}, expected {format!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise ArtifactError(f"{path}: corrupt manifest (format_version={version!r})")
    if version > max_version:
        raise ArtifactError(
            f"{path}: format_version {version} is newer than this Fennec supports ({max_version}); upgrade fennec")
    if expected_kind is not None and manifest.get("kind") != expected_kind:
        raise ArtifactError(f"{path}: holds a {manifest.get('kind')!r} artifact, expected {expected_kind!r}")
    if verify:
        files = manifest.get("files")
        if not isinstance(files, dict) or not files:
            raise ArtifactError(f"{path}: corrupt manifest (no file checksums)")
        _verify_files(directory, files, allowed=(MANIFEST, *UNLISTED_OK.get(format, ())), what=what)
    return manifest


def _verify_files(directory: Path, files: dict, *, allowed: tuple[str, ...], what: str) -> None:
    """Every listed file exists inside ``directory`` with its checksum; every other file is refused."""
    for name, digest in files.items():
        parts = Path(str(name)).parts
        if not parts or Path(str(name)).is_absolute() or ".." in parts:
            raise ArtifactError(f"{directory / MANIFEST}: corrupt manifest (file name {name!r} leaves the {what})")
        fp = directory / name
        if not fp.is_file() or fp.is_symlink():
            raise ArtifactError(f"{fp}: listed in the manifest but missing")
        if sha256_file(fp) != digest:
            raise ArtifactError(f"{fp}: checksum mismatch (the file was modified or is corrupt)")
    for fp in sorted(directory.rglob("*")):
        rel = fp.relative_to(directory).as_posix()
        if (fp.is_dir() and not fp.is_symlink()) or rel in files or rel in allowed:
            continue
        raise ArtifactError(f"{fp}: not listed in the manifest, so it cannot be verified (added after the {what} "
                            "was written?); remove it")
