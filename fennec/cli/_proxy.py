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
    campaign: Annotated[Path | None, typer.Option(
        "--campaign", help="Also embed every task of this campaign spec (its image pools).")] = None,
    ray: Annotated[bool, typer.Option("--ray", help="Fan the tasks out as Ray tasks (pip install "
                                      "\"fennec[ray]\").")] = False,
    address: Annotated[str | None, typer.Option(
        "--address", help="With --ray: the cluster to join (default $RAY_ADDRESS, else a local one).")] = None,
) -> None:
    """Embed many tasks once (cached per task; rerunning resumes where it stopped)."""
    from fennec.proxy import TaskEmbeddings, identity_key, make_proxy
    from fennec.proxy.bulk import BulkTask, embed_many

    paths = list(tasks or [])
    if root is not None:
        if not root.is_dir():
            raise FileNotFoundError(2, "--root folder not found", str(root))
        paths += sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    items = [BulkTask(p.stem if p.suffix.lower() == ".csv" else p.name, path=str(p)) for p in paths]
    if campaign is not None:
        from fennec.campaign import load_spec

        spec = load_spec(campaign)
        items += [BulkTask(t.task_id, campaign=(t, spec.budget)) for t in spec.tasks]
    if not items:
        raise SchemaError("embed-tasks: give task folders, --root DIR or --campaign SPEC")
    if address is not None and not ray:
        raise typer.BadParameter("--address applies to --ray")
    names = [t.task_id for t in items]
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
    settings = {"proxy": proxy, "use": use, "max_images": max_images, "seed": seed,
                "cache": None if cache is None else str(cache)}

    def save(vecs) -> None:
        TaskEmbeddings(list(vecs), list(vecs.values()), prox.identity,
                       {"proxy_spec": proxy, "max_images": max_images, "seed": seed, "use": use}).save(out)

    vectors = embed_many(items, settings, done=done, save=save, ray=ray, address=address)
    if vectors and len(done) == len(vectors):
        typer.echo(f"{out}: all {len(vectors)} task(s) already embedded", err=True)
    else:
        typer.echo(f"wrote {out}: {len(vectors)} task(s), proxy {prox.identity['kind']} {prox.identity['arch']}",
                   err=True)
