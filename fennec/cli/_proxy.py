"""Proxy verbs: ``embed-tasks`` (many task folders -> one embeddings file), and the helpers that
``fit --text-proxy`` and ``query --images/--classnames`` use."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from fennec.cli import app
from fennec.errors import SchemaError

logger = logging.getLogger("fennec.cli")


def _task_input(path: Path, task_id: str | None = None):
    from fennec.proxy import TaskInput

    if path.suffix.lower() == ".csv" and path.is_file():
        return TaskInput.from_csv(path, task_id=task_id)
    return TaskInput.from_folder(path, task_id=task_id)


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
        emb = embed_input(prox, _task_input(path, name), use=use, max_images=max_images, seed=seed, cache=store)
        vectors[name] = emb.vector
        TaskEmbeddings(list(vectors), list(vectors.values()), prox.identity,
                       {"proxy_spec": proxy, "max_images": max_images, "seed": seed, "use": use}).save(out)
    if vectors and len(done) == len(vectors):
        typer.echo(f"{out}: all {len(vectors)} task(s) already embedded", err=True)
    else:
        typer.echo(f"wrote {out}: {len(vectors)} task(s), proxy {prox.identity['kind']} {prox.identity['arch']}",
                   err=True)


def text_proxy_embeddings(task_ids: list[str]):
    """Text-proxy embeddings for ``task_ids``: the shipped file when it matches the installed encoder,
    else computed now from ``data/classnames`` (tasks without known class names are left out)."""
    from fennec._optional import MissingPackageError
    from fennec.errors import ArtifactError
    from fennec.proxy import TaskEmbeddings, TaskInput, identity_key, load_shipped_text_embeddings
    from fennec.proxy.text import TextProxy

    proxy = TextProxy()
    try:
        shipped = load_shipped_text_embeddings()
    except (ArtifactError, FileNotFoundError):
        shipped = None
    covered = shipped is not None and not shipped.lookup(task_ids)[1]
    try:
        installed = proxy.key
    except MissingPackageError:
        if covered:  # the shipped file is enough to fit; querying by class names will need the package
            logger.info("text encoder package not installed; using the shipped embeddings as they are")
            return shipped
        raise
    if covered and identity_key(shipped.identity) == installed:
        return shipped
    logger.info("computing text-proxy embeddings of %d task(s) from their class names", len(task_ids))
    ids, vecs = [], []
    for t in task_ids:
        try:
            names = TaskInput.from_task_id(t).class_names
        except KeyError:
            logger.warning("no class names known for task %s; it is left out of the task projector", t)
            continue
        ids.append(t)
        vecs.append(proxy.embed_classnames(names))
    if not ids:
        raise SchemaError("none of the history's tasks has known class names; use --task-embeddings FILE")
    return TaskEmbeddings(ids, vecs, proxy.identity, {"source": "data/classnames (computed by fennec fit)"})


def embed_query(rec, *, images: Path | None, classnames: Path | None, task: str | None, proxy: str | None,
                max_images: int, seed: int, cache: Path | None):
    """Embed a query task for ``rec`` (see ``fennec query --help``); returns ``(TaskEmbedding, how)``."""
    from fennec.proxy import (
        EmbeddingCache,
        TaskInput,
        bridge_embedding,
        embed_input,
        identity_key,
        make_proxy,
        proxy_for_identity,
    )
    from fennec.proxy.base import ProxyMismatchError, describe_identity

    ident = rec.proxy_identity
    if ident is None:
        raise SchemaError("this artifact has no task embeddings; refit it with --text-proxy or --task-embeddings")
    store = EmbeddingCache(cache)
    if images is not None:
        task_input = _task_input(images)
    elif classnames is not None:
        task_input = TaskInput.from_classnames_file(classnames)
    else:
        task_input = TaskInput.from_task_id(task)
    art_proxy = None
    if proxy is not None:
        user = make_proxy(proxy)
        if user.key == identity_key(ident):
            art_proxy = user
        elif ident.get("kind") == "text" and task_input.has_images and hasattr(user, "imagenet_posterior"):
            text = proxy_for_identity(ident)
            emb = bridge_embedding(user, text, task_input, max_images=max_images, seed=seed, cache=store,
                                   progress=True)
            top = ", ".join(n for n, _ in emb.meta["imagenet_top"][:3])
            return emb, f"images through {user.identity['arch']}'s ImageNet labels ({top}, ...) into the text proxy"
        else:
            raise ProxyMismatchError(f"--proxy {proxy} ({describe_identity(user.identity)}) is not the artifact's "
                                     f"proxy ({describe_identity(ident)}) and cannot be bridged to it")
    art_proxy = art_proxy or proxy_for_identity(ident)
    if task_input.has_images and art_proxy.has_images:
        emb = embed_input(art_proxy, task_input, use="images", max_images=max_images, seed=seed, cache=store,
                          progress=True)
        return emb, f"{emb.n_items} images through the artifact's proxy"
    if task_input.has_images:
        logger.warning("the artifact's proxy is a text proxy: placing %s by its folder names (%s); the images are "
                       "not used (--proxy efficientnet-lite0 uses them through ImageNet labels)",
                       task_input.task_id, ", ".join(task_input.class_names[:5]))
    emb = embed_input(art_proxy, task_input, use="names", cache=store)
    return emb, f"{len(task_input.class_names)} class names through the artifact's text proxy"
