"""Safe outputs: never delete what Fennec did not write, never leave a half-written file at a user's path.

* :func:`check_output` refuses an output directory before any work is done: one that is not a Fennec
  directory (unless ``force``), one that contains an input, the current directory or one of its parents,
  the home directory, the shipped data.
* :func:`atomic_directory` writes a directory next to its target and swaps it in. On Linux the swap is
  one ``renameat2(RENAME_EXCHANGE)``, so a complete copy is at the path at every instant; elsewhere it is
  two renames, and a crash between them is repaired by :func:`recover_directory` (the next write or
  load puts the old copy back). Stale ``.X.tmp-*`` / ``.X.old-*`` siblings of killed runs are removed by
  the next write. A second writer of the same path gets a clear error instead of a race.
* :func:`atomic_path` is the single-file twin (follows a symbolic link, keeps the file's mode).
* :func:`path_lock` serialises writers of one path across processes (``flock`` on a sibling
  ``.X.lock`` file that is removed on release; the ``filelock`` package where ``fcntl`` is missing).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from fennec.errors import ArtifactError

logger = logging.getLogger(__name__)

__all__ = ["FENNEC_FORMATS", "atomic_directory", "atomic_path", "check_output", "path_lock",
           "recover_directory", "replace_problem"]

#: Manifest formats of the directories Fennec writes (artifacts, benchmark releases).
FENNEC_FORMATS = ("fennec-artifact", "fennec-benchmark")
#: Files Fennec writes into a directory of a format after the manifest (not checksummed).
UNLISTED_OK = {"fennec-benchmark": ("RESULTS.md",)}
MANIFEST = "manifest.json"
_APPROVED: set[Path] = set()  # outputs the user allowed to replace with --force (check_output)


# ---------------------------------------------------------------------------------------------- locks
@contextlib.contextmanager
def path_lock(path: str | os.PathLike[str], *, timeout: float = 60.0, what: str = "file") -> Iterator[None]:
    """Hold an exclusive lock for writing ``path`` (a sibling ``.NAME.lock`` file, removed on release).

    ``timeout`` seconds to wait (0: fail at once); a kill releases the lock (the kernel drops it).
    Raises :class:`ArtifactError` naming the path and the holder's pid when the wait times out.
    """
    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield from _filelock(lock, path, timeout, what)
        return
    fd = _flock(fcntl, lock, path, timeout, what)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)  # while still holding it: a waiter on this inode then retries on a new one
        os.close(fd)


def _flock(fcntl, lock: Path, path: Path, timeout: float, what: str) -> int:
    deadline = time.monotonic() + max(timeout, 0.0)
    delay = 0.005
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            if time.monotonic() >= deadline:
                raise ArtifactError(_busy(path, lock, what, timeout)) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
            continue
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the holder removed it between our open and our lock: start again
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return fd


def _busy(path: Path, lock: Path, what: str, timeout: float) -> str:
    try:
        pid = lock.read_text().strip()
    except OSError:
        pid = ""
    holder = f"process {pid}" if pid else "another process"
    waited = f" (waited {timeout:g} s)" if timeout > 0 else ""
    return (f"{path}: {holder} is writing this {what} right now{waited}; "
            f"try again when it has finished, or write to another path")


def _filelock(lock: Path, path: Path, timeout: float, what: str):  # pragma: no cover - Windows
    import filelock

    try:
        with filelock.FileLock(str(lock), timeout=timeout):
            yield
    except filelock.Timeout:
        raise ArtifactError(_busy(path, lock, what, timeout)) from None


# ---------------------------------------------------------------------------------------------- checks
def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _protected() -> list[tuple[Path, str]]:
    places = [(_real(os.getcwd()), "the current directory"), (_real(Path.home()), "your home directory"),
              (_real(Path(__file__).parent), "the fennec package")]
    env = os.environ.get("FENNEC_DATA_DIR")
    data = Path(env) if env else Path(__file__).resolve().parents[1] / "data"
    places.append((_real(data), "the shipped data"))
    return places


def _contains(outer: Path, inner: Path) -> bool:
    return outer == inner or outer in inner.parents


def _place_problem(out: Path, real: Path, option: str) -> str | None:
    if str(out) in ("", "."):
        return (f"{option} {str(out)!r}: refusing to replace the current directory; name a new folder "
                "(e.g. runs/sfda)")
    if real == Path(real.anchor):
        return f"{option} {out}: refusing to replace the root of the file system"
    for place, what in _protected():
        if _contains(real, place):
            return f"{option} {out}: refusing to replace {what} ({place}); name a new folder (e.g. runs/sfda)"
    return None


def replace_problem(path: str | os.PathLike[str], *, format: str | None = None) -> str | None:
    """Why the existing directory ``path`` may not be replaced, or None if it may.

    It may be when it does not exist, is empty, or is a Fennec directory (``manifest.json`` of a
    :data:`FENNEC_FORMATS` format, ``format`` if given) holding only files its manifest lists.
    """
    path = Path(path)
    if not path.exists():
        return None
    if not path.is_dir():
        return f"{path}: exists and is not a directory"
    entries = [p for p in path.rglob("*") if p.is_symlink() or not p.is_dir()]
    if not entries:
        return None
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    got = manifest.get("format") if isinstance(manifest, dict) else None
    expected = (format,) if format else FENNEC_FORMATS
    if got not in expected:
        kind = "a Fennec artifact" if format in (None, "fennec-artifact") else "a Fennec benchmark release"
        found = "no readable manifest.json" if got is None else f"its manifest says format {got!r}"
        return f"{path}: exists and is not {kind} ({found}; {len(entries)} file(s) in it)"
    listed = set(manifest.get("files") or {}) | {MANIFEST} | set(UNLISTED_OK.get(got, ()))
    foreign = sorted(p.relative_to(path).as_posix() for p in entries
                     if p.relative_to(path).as_posix() not in listed)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        return f"{path}: holds file(s) Fennec did not write ({shown})"
    return None


def check_output(
    out: str | os.PathLike[str],
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    force: bool = False,
    format: str | None = None,
    option: str = "--out",
) -> Path:
    """Refuse an unsafe output directory before any work is done; returns it.

    Refused always: the current directory or a parent of it, the home directory, the file-system root,
    the shipped data or the package, and a directory that contains one of ``inputs`` (non-existing
    inputs, e.g. a shipped history name, are skipped). Refused unless ``force``: an existing directory
    that :func:`replace_problem` objects to. With ``force`` the next :func:`atomic_directory` of ``out``
    in this process may replace it.
    """
    out = Path(out)
    real = _real(out)
    problem = _place_problem(out, real, option)
    if problem:
        raise ArtifactError(problem)
    for item in inputs:
        if item is None or str(item) == "" or not Path(item).exists():
            continue
        if _contains(real, _real(item)):
            raise ArtifactError(f"{option} {out} contains the input {item}; writing there would delete it: "
                                "choose another output folder")
    problem = replace_problem(real, format=format)
    if problem and not force:
        raise ArtifactError(f"{problem}; refusing to replace it: choose another {option}, empty it, "
                            "or pass --force")
    if problem:
        logger.warning("%s; replacing it (--force)", problem)
        _APPROVED.add(real)
    return out


# ---------------------------------------------------------------------------------------------- swaps
def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _siblings(target: Path, kind: str) -> list[Path]:
    prefix = f".{target.name}.{kind}-"
    try:
        return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefix))
    except FileNotFoundError:
        return []


def recover_directory(target: str | os.PathLike[str]) -> bool:
    """Put back the previous copy of a missing ``target`` left as ``.NAME.old-*`` by a crash between the
    two renames of a swap; returns True if it did (the newest copy whose manifest checks out)."""
    target = Path(target)
    if target.exists() or not _siblings(target, "old"):
        return False
    with path_lock(target, timeout=10.0, what="directory"):
        return _restore_old(target)


def _restore_old(target: Path) -> bool:
    if target.exists():
        return False
    for old in sorted(_siblings(target, "old"), key=lambda p: p.stat().st_mtime, reverse=True):
        if not _complete(old):
            continue
        os.rename(old, target)
        logger.warning("%s: restored the previous copy left by an interrupted write (%s)", target, old.name)
        return True
    return False


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _complete(directory: Path) -> bool:
    """A directory whose manifest is readable and lists files that are all present with their checksums."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        return bool(files) and all(sha256_file(directory / name) == digest for name, digest in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _clean_stale(target: Path) -> None:
    """Under the target's lock: restore a lost copy, then remove leftovers of killed writers."""
    _restore_old(target)
    for p in _siblings(target, "tmp") + _siblings(target, "old"):
        logger.info("removing %s, left by an interrupted write", p)
        shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str], *, overwrite: bool = True, force: bool = False,
                     format: str | None = None) -> Iterator[Path]:
    """Yield a temporary directory next to ``target``; on success it replaces ``target`` atomically.

    An existing ``target`` is replaced only if :func:`replace_problem` allows it, ``force`` is given, or
    :func:`check_output` was called with ``force`` for it. A symbolic link is followed (the link stays).
    On failure the temporary directory is removed and ``target`` is untouched.
    """
    given = Path(target)
    target = _real(given)
    problem = _place_problem(given, target, "output directory")
    if problem:
        raise ArtifactError(problem)
    if target.exists() and not target.is_dir():
        raise ArtifactError(f"{given}: exists and is not a directory")
    if target.exists() and not overwrite:
        raise ArtifactError(f"{given}: already exists (use overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with path_lock(target, timeout=0, what="directory"):
        _clean_stale(target)
        problem = replace_problem(target, format=format)
        forced = force or target in _APPROVED
        if problem and not forced:
            raise ArtifactError(f"{problem}; refusing to replace it (pass force=True / --force to override)")
        _APPROVED.discard(target)
        mode = (target.stat().st_mode & 0o7777) if target.exists() else 0o777 & ~_umask()
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            yield tmp
            os.chmod(tmp, mode)
            _swap_in(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, target: Path) -> None:
    """Move the complete ``tmp`` to ``target``; ``tmp`` then holds the previous copy (or nothing)."""
    if not target.exists():
        os.rename(tmp, target)
        return
    if _exchange(tmp, target):
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rename(target, old)  # replaces the empty placeholder; a crash from here on: recover_directory
    os.rename(tmp, target)
    os.rename(old, tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; on success it replaces ``path`` in one rename,
    on failure it is removed.

    A symbolic link is followed (its target is replaced, the link stays); an existing file keeps its
    permission bits, a new one gets the usual ones (``0o666`` less the umask) unless ``mode`` is given.
    """
    path = _real(path) if Path(path).is_symlink() else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def stale_temp_files(path: str | os.PathLike[str]) -> list[Path]:
    """``.NAME.*.tmp`` siblings of ``path`` written by :func:`atomic_path` (call it under the path's lock)."""
    path = Path(path)
    prefix = f".{path.name}."
    try:
        return sorted(p for p in path.parent.iterdir()
                      if p.name.startswith(prefix) and p.name.endswith(".tmp") and p.is_file())
    except FileNotFoundError:
        return []
