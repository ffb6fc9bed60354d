"""Proxy verb: ``embed-tasks`` (many task folders -> one embeddings file)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from fennec.cli import app
from fennec.errors import SchemaError

logger = logging.getLogger("fennec.cli")


@app.command("embed-tasks")
def embed_tasks(
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Embeddings file to write (.safetensors, plus a .json sidecar).")],
    tasks: Annotated[list[Path] | None, typer.Argument(
        help="Task folders (ImageFolder) or path,label CSVs; task id = folder or file name.")] = None,
    root: Annotated[Path | None, typer.Option(
        "--root", help="Also embed every sub-folder of this folder as a task.")] = None,
    proxy: Annotated[str, typer.Option(
        "--proxy", help="text, efficientnet-lite0/1/2, timm:NAME[@FILE], open_clip:ARCH:TAG or "
        "open_clip:ARCH@FILE.")] = "text",
    use: Annotated[str, typer.Option(
        "--use", help="auto (images if the proxy sees images), images or names.")] = "auto",
    max_images: Annotated[int, typer.Option("--max-images", help="Class-balanced probe size per task.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Probe sampling seed.")] = 0,
    cache: Annotated[Path | None, typer.Option(
        "--cache", help="Embedding cache folder (default ~/.cache/fennec/embeddings).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Recompute tasks already in --out.")] = False,
) -> None:
    """Embed many tasks once (cached per task; rerunning resumes where it stopped)."""
    from tqdm.auto import tqdm

    from fennec.proxy import EmbeddingCache, TaskEmbeddings, embed_input, identity_key, make_proxy
    from fennec.proxy.query import task_input

    paths = list(tasks or [])
    if root is not None:
        if not root.is_dir():
            raise FileNotFoundError(2, "--root folder not found", str(root))
        paths += sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not paths:
        raise SchemaError("embed-tasks: give task folders or --root DIR")
    names = [p.stem if p.suffix.lower() == ".csv" else p.name for p in paths]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SchemaError(f"embed-tasks: two tasks share the id(s) {', '.join(dup)} (task id = folder name)")
    prox = make_proxy(proxy)
    done: dict[str, object] = {}
    if out.is_file() and not overwrite:
        prev = TaskEmbeddings.load(out)
        if prev.identity is not None and identity_key(prev.identity) == prox.key:
            done = {t: prev.vectors[i] for i, t in enumerate(prev.task_ids)}
            logger.info("%s: resuming, %d task(s) already embedded", out, len(done))
    store = EmbeddingCache(cache)
    vectors = dict(done)
    for path, name in tqdm(list(zip(paths, names, strict=True)), desc="tasks", unit="task", disable=None):
        if name in vectors:
            continue
        emb = embed_input(prox, task_input(images=path, task_id=name), use=use, max_images=max_images, seed=seed, cache=store)
        vectors[name] = emb.vector
        TaskEmbeddings(list(vectors), list(vectors.values()), prox.identity,
                       {"proxy_spec": proxy, "max_images": max_images, "seed": seed, "use": use}).save(out)
    if vectors and len(done) == len(vectors):
        typer.echo(f"{out}: all {len(vectors)} task(s) already embedded", err=True)
    else:
        typer.echo(f"wrote {out}: {len(vectors)} task(s), proxy {prox.identity['kind']} {prox.identity['arch']}",
                   err=True)
