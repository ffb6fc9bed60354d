"""Training data for B-Tuning: coercion to one form, a stratified seeded split, and preprocessing.

Images are preprocessed **once** with the target model's own evaluation transform (timm data
config: resize, centre crop, mean/std; ``image_size`` overrides the input size) into one float
tensor. There is no random augmentation: the teachers' features are computed once per image, so
the student must see the same image the teachers saw.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fennec.errors import SchemaError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = ["TaskData", "as_task_data", "stratified_split"]

@dataclass(frozen=True)
class TaskData:
    """A labelled image set in canonical form.

    Attributes
    ----------
    images : list of uint8 arrays (H, W) or (H, W, 3)
    labels : ndarray of shape (N,), int64 in ``0..n_classes-1``
    class_names : list of str
        ``class_names[c]`` is the original label (or folder name) of class ``c``.
    task_id : str
        Where the data came from (example task name, folder name, or ``"<array>"``).
    """

    images: list[npt.NDArray[np.uint8]]
    labels: npt.NDArray[np.int64]
    class_names: list[str]
    task_id: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def take(self, idx: npt.ArrayLike) -> TaskData:
        idx = np.asarray(idx, dtype=np.intp)
        return TaskData([self.images[i] for i in idx], self.labels[idx], self.class_names, self.task_id)

    def sha256(self) -> str:
        """Hash of the images, labels and class names (a resumed run must see the same data)."""
        from fennec.backbone.features import images_sha256

        h = hashlib.sha256(images_sha256(self.images).encode())
        h.update(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        h.update("\x1f".join(self.class_names).encode())
        return h.hexdigest()


def as_task_data(data: Any, *, what: str = "train_data", class_names: Sequence[str] | None = None) -> TaskData:
    """Coerce the accepted data forms to :class:`TaskData`.

    Parameters
    ----------
    data : path, (images, labels), (images, labels, class_names), or an object with ``images``
        and ``labels`` attributes (e.g. :class:`fennec.data.examples.ExampleTask`)
        A path is read as an ImageFolder directory (one sub-folder per class).
    what : str
        Name used in error messages.
    class_names : sequence of str, optional
        Fix the label space (used for validation data: its labels must be among these names).

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        A data directory that does not exist.
    SchemaError
        Wrong types or shapes, labels not matching the images, fewer than 2 classes.
    """
    from fennec.backbone.features import to_uint8_images

    images, labels, names, task_id = _unpack(data, what)
    imgs = to_uint8_images(images)
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != len(imgs):
        raise SchemaError(f"{what}: {len(imgs)} images but labels has shape {y.shape}; expected ({len(imgs)},)")
    if names is not None:
        names = [str(n) for n in names]
    raw, names = _raw_labels(y, names, what)
    class_names = _label_space(raw, names, class_names, what)
    index = {c: i for i, c in enumerate(class_names)}
    codes = np.fromiter((index[s] for s in raw), dtype=np.int64, count=len(raw))
    return TaskData(imgs, codes, list(class_names), task_id)


def _unpack(data: Any, what: str) -> tuple[Any, Any, Sequence[Any] | None, str]:
    """``(images, labels, class names or None, task_id)`` of any accepted data form."""
    names: Sequence[Any] | None = None
    task_id = "<array>"
    if isinstance(data, (str, os.PathLike)):
        from fennec.transferability.scoring import load_image_folder

        images, labels, names = load_image_folder(data)
        task_id = Path(data).resolve().name
    elif hasattr(data, "images") and hasattr(data, "labels"):
        images, labels = data.images, data.labels
        names = getattr(data, "class_names", None)
        task_id = str(getattr(data, "task_id", task_id))
    elif isinstance(data, tuple) and len(data) in (2, 3):
        images, labels = data[0], data[1]
        names = data[2] if len(data) == 3 else None
    else:
        raise SchemaError(
            f"{what} must be an ImageFolder path, a tuple (images, labels[, class_names]) or an object with "
            f".images and .labels (e.g. load_example_task(...)); got {type(data).__name__}")
    return images, labels, names, task_id


def _raw_labels(y: np.ndarray, names: list[str] | None, what: str) -> tuple[np.ndarray, list[str] | None]:
    """Every sample's label as a string (object array), and the class names still usable (or None)."""
    if names is not None and y.dtype.kind in "iu":
        # integer labels index into the given class names
        if len(y) and (y.min() < 0 or y.max() >= len(names)):
            raise SchemaError(f"{what}: labels must lie in 0..{len(names) - 1} (one per class name); "
                              f"got values {y.min()}..{y.max()}")
        raw = np.array(names, dtype=object)[y]
    else:
        raw = y.astype(str).astype(object)
        if names is not None and not set(raw.tolist()) <= set(names):
            names = None  # string labels that are not the names: fall back to natural order
    return raw, names


def _label_space(raw: np.ndarray, names: list[str] | None, class_names: Sequence[str] | None,
                 what: str) -> list[str]:
    """The classes in code order: the given label space (every label must be in it), else the labels seen."""
    if class_names is None:
        seen = set(raw.tolist())
        # classes in the order of the given names (folder / example-task order), else natural order
        present = [n for n in names if n in seen] if names is not None else sorted(seen, key=_natural)
        if len(present) < 2:
            raise SchemaError(f"{what}: a single class {present!r}; at least 2 classes are needed")
        return present
    class_names = [str(c) for c in class_names]
    unknown = sorted(set(raw.tolist()) - set(class_names))
    if unknown:
        raise SchemaError(
            f"{what}: label(s) {unknown[:8]} are not in the training label space "
            f"({len(class_names)} classes: {class_names[:10]}{' ...' if len(class_names) > 10 else ''})")
    return class_names


def _natural(s: str) -> tuple:
    """Numbers sort by value ('2' < '10'), other strings alphabetically."""
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


def stratified_split(labels: npt.ArrayLike, val_fraction: float, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split; returns sorted ``(train_idx, val_idx)``.

    Every class puts ``round(val_fraction * n_c)`` samples in validation, at least 1 and at most
    ``n_c - 1`` (a class with a single sample stays in training only).
    """
    y = np.asarray(labels)
    rng = np.random.default_rng([int(seed), 0x5B17])
    train, val = [], []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        perm = rng.permutation(members)
        n_val = min(max(int(round(val_fraction * len(members))), 1), len(members) - 1)
        val.append(perm[:n_val])
        train.append(perm[n_val:])
    train_idx, val_idx = np.sort(np.concatenate(train)), np.sort(np.concatenate(val))
    if len(val_idx) == 0:
        raise SchemaError(f"no validation sample: every class has a single image ({len(y)} images)")
    return train_idx, val_idx


def data_config(net: torch.nn.Module, image_size: int | None) -> dict[str, Any]:
    """The model's timm data config, with the input size overridden by ``image_size``
    (:func:`fennec.backbone.preprocess.data_config`)."""
    from fennec.backbone.preprocess import data_config as model_data_config

    return model_data_config(net, {"input_size": int(image_size)} if image_size is not None else None)


def preprocess(images: Sequence[np.ndarray], cfg: Mapping[str, Any]) -> torch.Tensor:
    """Apply the evaluation transform of ``cfg`` to every image; returns (N, 3, H, W) float32
    (:func:`fennec.backbone.preprocess.preprocess_images`)."""
    from fennec.backbone.preprocess import preprocess_images

    return preprocess_images(images, cfg)
