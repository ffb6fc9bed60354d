"""Task inputs: where a task's images and class names come from, and the probe set drawn from them.

A :class:`TaskInput` is built from

* an ImageFolder-style directory (:meth:`TaskInput.from_folder`): one sub-folder per class, named after
  the class (the folder names are the class names);
* a CSV of ``path,label`` (:meth:`TaskInput.from_csv`; relative paths are relative to the CSV's folder);
* in-memory arrays (:meth:`TaskInput.from_arrays`);
* a known benchmark task id (:meth:`TaskInput.from_task_id`): its class names from ``data/classnames``
  (no images);
* a class-names file (:meth:`TaskInput.from_classnames_file`): one name per line, or a JSON list.

:meth:`TaskInput.sample` draws a class-balanced probe set (at most ``max_images``, seeded) and
:meth:`TaskInput.load` decodes it (grayscale and palette images become RGB; 16-bit and float images are
rescaled to 8 bits; images larger than :data:`MAX_SIDE` are shrunk to it on decoding; unreadable, tiny
and decompression-bomb images raise an error naming the file).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fennec.data.images import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    MAX_SIDE,
    MIN_SIDE,
    read_image,
    to_pil_rgb,
)
from fennec.errors import SchemaError, UnknownIdError

logger = logging.getLogger(__name__)

__all__ = ["IMAGE_EXTENSIONS", "MAX_PIXELS", "MAX_SIDE", "MIN_SIDE", "TaskInput", "read_image", "to_pil_rgb"]


def _read_text(path: Path) -> str:
    """A text file as str: UTF-8 (with or without a BOM) or UTF-16/32 with a BOM; anything else is an error
    naming the file."""
    import codecs

    raw = path.read_bytes()
    boms = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
            (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
    codec = next((c for bom, c in boms if raw.startswith(bom)), "utf-8")
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        hint = " (it looks like UTF-16 without a byte-order mark)" if raw.count(0) > len(raw) // 4 else ""
        raise SchemaError(f"{path}: not UTF-8 text{hint} ({exc.reason} at byte {exc.start}); "
                          "save it as UTF-8") from None
    if "\x00" in text:
        raise SchemaError(f"{path}: holds NUL characters, so it is not UTF-8 text (UTF-16 without a byte-order "
                          "mark?); save it as UTF-8")
    return text


def _json_names(path: Path, text: str) -> list[str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}: not a valid JSON list of class names ({exc})") from exc
    if not isinstance(data, list):
        raise SchemaError(f"{path}: a JSON class-names file must be a list of strings in label order; "
                          f"got a JSON {type(data).__name__}")
    for i, item in enumerate(data):
        if not isinstance(item, str):
            got = "null" if item is None else f"{type(item).__name__} {item!r}"
            raise SchemaError(f"{path}: item {i} of the JSON list is not a string ({got}); class names are "
                              "strings")
    return [n.strip() for n in data]


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


@dataclass
class TaskInput:
    """A task's class names and (optionally) its labelled images.

    Attributes
    ----------
    class_names : list of str
        In label order.
    items : list
        One entry per image: a file path or an in-memory image (empty for a names-only task).
    labels : ndarray (n_images,) int64
        Indices into ``class_names``.
    task_id : str
    source : str
        Where the task came from (folder, CSV, "arrays", "classnames:<id>").
    """

    class_names: list[str]
    items: list[Any] = field(default_factory=list)
    labels: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    task_id: str = "<new>"
    source: str = ""

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64).ravel()
        if len(self.items) != len(self.labels):
            raise SchemaError(f"{self.source or self.task_id}: {len(self.items)} images but {len(self.labels)} labels")
        if len(self.class_names) < 2:
            raise SchemaError(f"{self.source or self.task_id}: a task needs at least 2 classes; "
                              f"got {len(self.class_names)} ({self.class_names!r})")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise SchemaError(f"{self.source}: labels must lie in 0..{len(self.class_names) - 1}")

    @property
    def has_images(self) -> bool:
        return len(self.items) > 0

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_folder(cls, root: str | os.PathLike[str], *, task_id: str | None = None,
                    empty_classes: str = "ignore") -> TaskInput:
        """An ImageFolder directory: one sub-folder per class (sorted names = class names).

        ``empty_classes``: a class folder without images is skipped with a warning (``"ignore"``, right
        for a query) or is an error (``"error"``, right for training and scoring, where it is a mistake).
        """
        path = Path(root)
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, "image folder not found", str(path))
        if not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "image folder is not a directory", str(path))
        classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        files = {c: sorted(f for f in (path / c).rglob("*") if _is_image(f)) for c in classes}
        if not any(files.values()):
            loose = [f for f in path.iterdir() if _is_image(f)]
            if loose:
                raise SchemaError(f"no class sub-folders in {path}: it holds {len(loose)} image file(s) directly; "
                                  "an ImageFolder has one sub-folder per class, named after the class")
            raise SchemaError(f"no images found in {path} (expected one sub-folder per class holding "
                              f"{', '.join(IMAGE_EXTENSIONS[:4])}... files)")
        empty = [c for c in classes if not files[c]]
        if empty and empty_classes == "error":
            raise SchemaError(f"class folder(s) without images in {path}: {', '.join(empty)}")
        if empty:
            logger.warning("%s: ignoring class folder(s) without images: %s", path, ", ".join(empty))
            classes = [c for c in classes if files[c]]
        if len(classes) < 2:
            raise SchemaError(f"{path} has a single class folder with images ({classes[0]!r}); "
                              "at least 2 classes are needed")
        items = [f for c in classes for f in files[c]]
        labels = np.array([i for i, c in enumerate(classes) for _ in files[c]], dtype=np.int64)
        return cls([c.replace("_", " ") for c in classes], items, labels, task_id or path.name, str(path))

    @classmethod
    def from_csv(cls, csv_path: str | os.PathLike[str], *, task_id: str | None = None) -> TaskInput:
        """A CSV with columns ``path,label`` (class names = sorted distinct labels)."""
        import pandas as pd

        csv_path = Path(csv_path)
        if not csv_path.is_file():
            raise FileNotFoundError(errno.ENOENT, "task CSV not found", str(csv_path))
        try:
            df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise SchemaError(f"{csv_path}: cannot be read as CSV ({' '.join(str(exc).split())})") from exc
        missing = [c for c in ("path", "label") if c not in df.columns]
        if missing:
            raise SchemaError(f"{csv_path}: missing column(s) {', '.join(missing)}; found {', '.join(df.columns)}")
        if df.empty:
            raise SchemaError(f"{csv_path}: no rows (no images)")
        paths = [Path(p) if Path(p).is_absolute() else csv_path.parent / p for p in df["path"]]
        absent = [i for i, p in enumerate(paths) if not p.is_file()]
        if absent:
            i = absent[0]
            more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
            raise SchemaError(f"{csv_path}: line {i + 2}: image file not found: {paths[i]}{more}")
        names = sorted(set(df["label"].str.strip()))
        pos = {n: i for i, n in enumerate(names)}
        labels = np.array([pos[v.strip()] for v in df["label"]], dtype=np.int64)
        return cls(names, paths, labels, task_id or csv_path.stem, str(csv_path))

    @classmethod
    def from_arrays(cls, images: Sequence[Any] | np.ndarray, labels: npt.ArrayLike,
                    class_names: Sequence[str] | None = None, *, task_id: str = "<arrays>") -> TaskInput:
        """In-memory images (uint8 arrays or PIL images) with integer labels."""
        y = np.asarray(labels).ravel()
        if len(images) != len(y):
            raise SchemaError(f"images has {len(images)} entries but labels has {len(y)}")
        uniq = np.unique(y)
        if class_names is None:
            class_names = [str(u) for u in uniq]
            y = np.searchsorted(uniq, y)
        return cls(list(class_names), list(images), y.astype(np.int64), task_id, "arrays")

    @classmethod
    def from_task_id(cls, task_id: str) -> TaskInput:
        """A benchmark's class names from ``data/classnames`` (aliases resolved; no images)."""
        from fennec.data.shipped import canonical_task_id, load_classnames

        names = load_classnames()
        key = canonical_task_id(task_id)
        if key not in names:
            import difflib

            close = difflib.get_close_matches(key, list(names), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownIdError(f"no class names known for task {task_id!r} (data/classnames lists "
                                 f"{len(names)} tasks){hint}; give --classnames FILE instead")
        return cls(list(names[key]), task_id=key, source=f"classnames:{key}")

    @classmethod
    def from_classnames_file(cls, path: str | os.PathLike[str], *, task_id: str | None = None) -> TaskInput:
        """Class names from a text file (one per line; blank lines and ``#`` comments skipped) or a JSON list."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(errno.ENOENT, "class-names file not found", str(path))
        text = _read_text(path)
        if text.lstrip().startswith(("[", "{")):
            names = _json_names(path, text)
        else:
            names = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        names = [n for n in names if n]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise SchemaError(f"{path}: class name(s) listed twice: {', '.join(dup[:5])}")
        if len(names) < 2:
            raise SchemaError(f"{path}: needs at least 2 class names, found {len(names)}")
        return cls(names, task_id=task_id or path.stem, source=str(path))

    # ------------------------------------------------------------------ probe set
    def sample(self, max_images: int | None = 100, *, seed: int = 0) -> npt.NDArray[np.intp]:
        """Sorted indices of a class-balanced probe set.

        Every class contributes ``min(its size, max(1, max_images // n_classes))`` images drawn without
        replacement by ``numpy.random.default_rng(seed)``; ``max_images=None`` keeps every image.
        """
        if not self.has_images:
            raise SchemaError(f"{self.source or self.task_id}: task has class names only, no images to sample")
        if max_images is None:
            return np.arange(len(self.labels))
        if int(max_images) != max_images or max_images < 1:
            raise SchemaError(f"max_images must be an int >= 1 or None; got {max_images!r}")
        present = np.unique(self.labels)
        per_class = max(1, int(max_images) // len(present))
        if per_class * len(present) > max_images:
            logger.warning("max_images=%d is below the number of classes (%d): taking one image per class",
                           max_images, len(present))
        rng = np.random.default_rng(seed)
        picks = []
        for c in present:
            members = np.flatnonzero(self.labels == c)
            picks.append(members if members.size <= per_class else rng.choice(members, per_class, replace=False))
        return np.sort(np.concatenate(picks))

    def content_hash(self, indices: npt.ArrayLike | None = None) -> str:
        """sha256 of the class names and of the bytes and labels of the chosen images."""
        h = hashlib.sha256(json.dumps(self.class_names).encode())
        idx = np.arange(len(self.items)) if indices is None else np.asarray(indices, dtype=np.intp)
        for i in idx:
            item = self.items[i]
            h.update(f"|{int(self.labels[i])}|".encode())
            if isinstance(item, (str, os.PathLike)):
                with open(item, "rb") as fh:
                    h.update(hashlib.sha256(fh.read()).digest())
            else:
                from PIL import Image

                arr = np.asarray(item.convert("RGB")) if isinstance(item, Image.Image) else np.asarray(item)
                h.update(f"{arr.shape}{arr.dtype}".encode())
                h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def load(self, indices: npt.ArrayLike | None = None, *, progress: bool = False) -> list[Any]:
        """Decode the chosen images as PIL RGB (errors name the file)."""
        from tqdm.auto import tqdm

        idx = np.arange(len(self.items)) if indices is None else np.asarray(indices, dtype=np.intp)
        out = []
        for i in tqdm(idx, desc=f"reading {self.task_id}", unit="img", disable=None if progress else True):
            out.append(to_pil_rgb(self.items[i], name=f"image {i} of {self.source or self.task_id}"))
        return out
