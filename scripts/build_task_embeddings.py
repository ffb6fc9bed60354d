"""Build data/task_embeddings/text_minilm.safetensors: text-proxy embeddings of every task with class names.

Every list in data/classnames/classnames.json (all tasks of all shipped histories and the common
benchmarks) is embedded with the packaged all-MiniLM-L6-v2 through the prompt "a photo of a {}.":
mean of the L2-normalised prompt embeddings, re-normalised. Deterministic; ~15 s on one CPU thread.

    python scripts/build_task_embeddings.py [--out data/task_embeddings/text_minilm.safetensors]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path

import numpy as np

from fennec.data.shipped import data_dir, load_classnames
from fennec.proxy import TaskEmbeddings
from fennec.proxy.text import TextProxy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=data_dir() / "task_embeddings" / "text_minilm.safetensors")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    names = load_classnames()
    proxy = TextProxy()
    ids = sorted(names)
    vectors = np.stack([proxy.embed_classnames(names[t]) for t in ids])
    source = data_dir() / "classnames" / "classnames.json"
    meta = {"source": "data/classnames/classnames.json",
            "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
            "n_classes": {t: len(names[t]) for t in ids},
            "built_by": "scripts/build_task_embeddings.py"}
    TaskEmbeddings(ids, vectors, proxy.identity, meta).save(args.out)
    print(f"wrote {args.out}: {len(ids)} tasks x {vectors.shape[1]} dims")


if __name__ == "__main__":
    main()
