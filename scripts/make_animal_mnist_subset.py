"""Build data/examples/animal_mnist_subset.npz from the animal-mnist 0.4 wheel (MIT), without unpickling.

    pip install --no-deps animal-mnist==0.4 && python scripts/make_animal_mnist_subset.py

The wheel stores its arrays as gzip'd pickles. This script never unpickles them: it checks each file's
sha256 against the values recorded below, walks the pickle *opcodes* with ``pickletools.genops`` (a
parser that builds no object and runs no code), checks that the stream is exactly one numpy array of
the expected dtype and shape, and reads the array's raw bytes with ``numpy.frombuffer``.

It ships the images of every class-balanced draw that Fennec's tests, README, notebook and benchmarks
make (``fennec.data.examples.balanced_subsample(labels, n, random_state=seed)`` for the ``n`` and seeds
below) and the full label vector, so that every such draw returns exactly the images it returned from
the package's own files. Regenerating gives the same file byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import pickletools
import zipfile
from pathlib import Path

import numpy as np

from fennec.data.examples import ANIMAL_DRAW_SEEDS, ANIMAL_DRAW_SIZES, balanced_subsample

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "data" / "examples" / "animal_mnist_subset.npz"
FILES = {  # name -> (sha256 of the .gz in the animal-mnist 0.4 wheel, numpy dtype, shape)
    "animal_data_version_3.gz": ("68a30346781a0984f839463a4615d2decb899d1ce65091bb92586311754a34ce",
                                 "u1", (10000, 28, 28)),
    "animal_label_version_3.gz": ("dec8dba7c469830989fbab46825021a08a38470753a512f27ada847eced97b57",
                                  "i8", (10000,)),
}


def read_array(path: Path, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """The array of a numpy pickle, from its opcodes only (nothing is unpickled)."""
    data = gzip.decompress(path.read_bytes())
    ops = list(pickletools.genops(data))
    names = [arg for op, arg, _ in ops if op.name == "SHORT_BINUNICODE"]
    if names[:4] != ["numpy.core.multiarray", "_reconstruct", "numpy", "ndarray"] or dtype not in names:
        raise SystemExit(f"{path}: not a plain numpy {dtype} array pickle: {names[:6]}")
    ints = [arg for op, arg, _ in ops if op.name.startswith("BININT")]
    if tuple(ints[2:2 + len(shape)]) != shape:  # ints: reconstruct (0,), state version 1, then the shape
        raise SystemExit(f"{path}: shape {ints[2:2 + len(shape)]} is not {shape}")
    payloads = [arg for op, arg, _ in ops if op.name == "BINBYTES"]
    expected = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if len(payloads) != 1 or len(payloads[0]) != expected:
        raise SystemExit(f"{path}: expected one {expected}-byte array payload")
    return np.frombuffer(payloads[0], dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()


def main() -> None:
    spec = importlib.util.find_spec("animal_mnist")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install the source first: pip install --no-deps animal-mnist==0.4")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data" / "Animal_MNIST"
    arrays = {}
    for name, (digest, dtype, shape) in FILES.items():
        got = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        if got != digest:
            raise SystemExit(f"{folder / name}: sha256 {got}, expected {digest} (another animal-mnist release?)")
        arrays[name] = read_array(folder / name, dtype, shape)
    images, labels = arrays["animal_data_version_3.gz"], arrays["animal_label_version_3.gz"]
    keep: set[int] = set()
    for n in ANIMAL_DRAW_SIZES:
        for seed in ANIMAL_DRAW_SEEDS:
            keep.update(balanced_subsample(labels, n, random_state=seed).tolist())
    index = np.array(sorted(keep), dtype=np.int32)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:  # fixed timestamps: reproducible bytes
        for key, arr in (("images", images[index]), ("index", index), ("labels", labels.astype(np.uint8))):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(arr), allow_pickle=False)
    OUT.write_bytes(buf.getvalue())
    print(f"wrote {OUT.relative_to(REPO)}: {len(index)} of {len(labels)} images, "
          f"{OUT.stat().st_size} bytes, sha256 {hashlib.sha256(buf.getvalue()).hexdigest()}")


if __name__ == "__main__":
    main()
