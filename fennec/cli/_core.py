"""Core verbs: ``fit``, ``query``, ``info``, ``histories``, ``version``. Parse -> one library call -> render."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Annotated

import typer

from fennec.cli import app
from fennec.cli._render import Format, emit, emit_ranking, say
from fennec.errors import SchemaError

logger = logging.getLogger("fennec.cli")


def load_histories(spec: str, metric: str | None):
    from fennec.data.shipped import load_histories as load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HistoryWarning is also logged
        return load(spec, metric=metric)


def parse_observed(text: str) -> dict[str, float]:
    """``"resnet50=84.6,deit_small=73.1"`` -> ``{"resnet50": 84.6, "deit_small": 73.1}``."""
    out: dict[str, float] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        if "=" not in part:
            raise SchemaError(f"--observed: expected MODEL=SCORE pairs separated by commas, got {part!r}")
        model, _, value = part.rpartition("=")
        model = model.strip()
        try:
            score = float(value)
        except ValueError:
            raise SchemaError(f"--observed: score of {model!r} is not a number: {value!r}") from None
        if model in out and out[model] != score:
            raise SchemaError(f"--observed: {model!r} is given twice ({out[model]:g} and {score:g}); give it once")
        out[model] = score
    if not out:
        raise SchemaError("--observed: no MODEL=SCORE pair given")
    return out


def _number_or_auto(value: str, name: str, kind):
    if value == "auto":
        return "auto"
    try:
        return kind(value)
    except ValueError:
        raise SchemaError(f"--{name} must be a number or 'auto', got {value!r}") from None


@app.command()
def fit(
    out: Annotated[Path, typer.Option("--out", "-o", help="Artifact directory to write (replaced atomically).")],
    history: Annotated[str, typer.Argument(
        help="A shipped history (see 'fennec histories'), a long CSV path, a comma list of them, or 'all' "
        "(one zoo: a column per task and campaign).")] = "sfda",
    metric: Annotated[str | None, typer.Option(
        help="Keep only rows of this metric (top1, map, accuracy, neg_error).")] = None,
    rank: Annotated[str, typer.Option(help="Subspace rank, or 'auto' (held-out cells).")] = "auto",
    l2: Annotated[str, typer.Option(help="L2 penalty on vectors, or 'auto'.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed (fit is deterministic given it).")] = 0,
    backend: Annotated[str, typer.Option(help="Index backend: faiss or numpy.")] = "faiss",
    task_embeddings: Annotated[Path | None, typer.Option(
        "--task-embeddings", help="Task embeddings file (fennec embed-tasks) for the task projector.")] = None,
    text_proxy: Annotated[bool, typer.Option(
        "--text-proxy", help="Embed the history's tasks from their class names (all-MiniLM-L6-v2) "
        "for the task projector.")] = False,
    projector: Annotated[str, typer.Option(
        "--projector", help="collective, mixture, ridge, kernel_ridge or random_forest.")] = "collective",
    force: Annotated[bool, typer.Option(
        "--force", help="Replace --out even if it is not a Fennec artifact (its files are deleted).")] = False,
) -> None:
    """Fit the transfer subspace on one history or several and write an artifact directory."""
    from fennec.artifacts import check_output
    from fennec.query.recommender import Recommender, RecommenderConfig

    check_output(out, inputs=[*history.split(","), task_embeddings], force=force, format="fennec-artifact")
    if task_embeddings is not None and text_proxy:
        raise SchemaError("give either --task-embeddings or --text-proxy, not both")
    cfg = RecommenderConfig(n_components=_number_or_auto(rank, "rank", int), l2=_number_or_auto(l2, "l2", float),
                            seed=seed, index_backend=backend, projector=projector)
    hists = load_histories(history, metric)
    emb = None
    if text_proxy:
        from fennec.data.shipped import canonical_task_id
        from fennec.proxy.query import text_proxy_embeddings

        emb = text_proxy_embeddings([canonical_task_id(t) for h in hists for t in h.task_ids])
    elif task_embeddings is not None:
        from fennec.proxy import TaskEmbeddings

        emb = TaskEmbeddings.load(task_embeddings)
    rec = Recommender(cfg).fit(hists[0] if len(hists) == 1 else hists, emb)
    rec.save(out)
    s = rec.history_.summary()
    shape = (f"{s['n_models']} models x {s['n_tasks']} tasks" if len(hists) == 1 else
             f"{s['n_models']} models x {s['n_tasks']} columns ({len(rec.task_ids)} tasks, {len(hists)} histories)")
    say(f"fitted {shape} ({s['n_cells']} cells, {s['observed_fraction']:.0%} observed) from {s['name']}: rank "
        f"{rec.subspace_.n_components_}, l2 {rec.subspace_.l2_:g}; wrote {out}")
    if rec.projector_ is not None:
        p = rec.projector_
        say(f"task projector: {p.method} {p.params_} on {len(p.task_ids_)} embedded tasks "
            f"({rec.proxy_identity['kind']} {rec.proxy_identity['arch']}); far-query threshold "
            f"{p.max_distance_:.3f} cosine distance")


@app.command()
def query(
    artifact: Annotated[Path, typer.Argument(help="Artifact directory written by 'fennec fit'.")],
    task: Annotated[str | None, typer.Option(
        "--task", help="A task of the history (id or alias), or a benchmark with known class names (placed by "
        "the text proxy).")] = None,
    observed: Annotated[str | None, typer.Option(
        "--observed", help="Warm start: measured MODEL=SCORE pairs, comma separated (any model the registry "
        "resolves).")] = None,
    images: Annotated[Path | None, typer.Option(
        "--images", help="A new task's ImageFolder directory (or path,label CSV).")] = None,
    classnames: Annotated[Path | None, typer.Option(
        "--classnames", help="A new task's class names (one per line, or a JSON list).")] = None,
    proxy: Annotated[str | None, typer.Option(
        "--proxy", help="With --images: the image proxy (default: the artifact's; efficientnet-lite0 on a "
        "text-proxy artifact goes through ImageNet labels).")] = None,
    max_images: Annotated[int, typer.Option("--max-images", help="Class-balanced probe size for --images.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Probe sampling seed for --images.")] = 0,
    cache: Annotated[Path | None, typer.Option(
        "--cache", help="Embedding / feature cache folder (default ~/.cache/fennec).")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many models to show.")] = 10,
    suggest: Annotated[int, typer.Option(
        "--suggest", min=0, help="With --observed: also list the N models to fine-tune next.")] = 0,
    candidates: Annotated[str | None, typer.Option(
        "--candidates", help="Rank only these models (comma separated): any name the model registry resolves "
        "(timm tags or architectures, torchvision/..., hf-hub:..., history ids, NAME@WEIGHTS_FILE).")] = None,
    candidates_file: Annotated[Path | None, typer.Option(
        "--candidates-file", help="CSV of models outside the registry with their side information: model_id and "
        "any of top1,params_m,gmacs,pretraining,timm_arch,family.")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="An unknown candidate is an error (default: listed as unresolved).")] = False,
    fallback: Annotated[str, typer.Option(
        "--fallback", help="prior (a proxy query far from every history task is ranked by the prior), none, or a "
        "transferability metric (e.g. logme) that scores candidates with weights on the labelled --images.")] = "prior",
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table, csv or json.")] = Format.table,
) -> None:
    """Rank models for a task: a known task id, a new task's images or class names, a warm-start task
    (--observed), or with none of these, the prior."""
    from fennec.query.recommender import Recommender

    if proxy and not images:
        raise SchemaError("--proxy applies to --images only")
    if suggest and not observed:
        raise SchemaError("--suggest needs --observed")
    rec = Recommender.load(artifact)
    obs = parse_observed(observed) if observed else None
    if candidates_file is not None and candidates is None:
        from fennec.zoo.registry import read_user_models

        candidates = ",".join(read_user_models(candidates_file)["model_id"])
    ranking = rec.query(task=task, observed=obs, images=images, classnames=classnames, candidates=candidates,
                        candidates_file=candidates_file, top_k=top_k, fallback=fallback, proxy=proxy,
                        max_images=max_images, seed=seed, cache_dir=cache, strict=strict, progress=True)
    emit_ranking(ranking, fmt)
    if suggest:
        nxt = rec.suggest_next(obs, n=suggest, candidates=candidates)
        if fmt == Format.table:
            typer.echo("\nfine-tune next (upper confidence bound):")
        emit(nxt.table.select(["rank", "model_id", "score", "std", "ucb"]), fmt)


@app.command()
def info(
    artifact: Path = typer.Argument(..., help="Artifact directory written by 'fennec fit'."),
    models: bool = typer.Option(False, "--models", help="Also list the model ids and columns."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, json (the manifest) or csv (its fields "
                               "flattened: field,value)."),
) -> None:
    """Show what an artifact holds: history, size, rank, config, library versions."""
    from fennec.artifacts import read_manifest

    m = read_manifest(artifact)
    if fmt != Format.table:
        doc = {**m, **_ids(artifact)} if models else m
        if fmt == Format.json:
            typer.echo(json.dumps(doc, indent=2, default=str))
        else:
            _write_csv(["field", "value"], _flatten(doc))
        return
    inputs, fit_ = m.get("inputs", {}), m.get("fit", {})
    lines = [
        f"artifact      {artifact} ({m['format']} v{m['format_version']}, {m.get('kind')}, created {m.get('created_utc')})",
        f"history       {inputs.get('history')} (sha256 {str(inputs.get('history_sha256'))[:12]})",
        f"size          {inputs.get('n_models')} models x {inputs.get('n_columns')} columns ({inputs.get('n_tasks')} "
        f"tasks), {inputs.get('n_cells')} cells ({inputs.get('observed_fraction', 0):.0%} observed)",
        f"subspace      rank {fit_.get('n_components')}, l2 {fit_.get('l2')}, {fit_.get('n_iter')} ALS iterations",
        f"index         {m.get('index', {}).get('backend')} {m.get('index', {}).get('factory')} (inner product)",
    ]
    proxy = m.get("proxy")
    if proxy:
        ident = proxy.get("identity") or {}
        lines.append(f"task proxy    {ident.get('kind', '?')} {ident.get('arch') or ident.get('model', '')} "
                     f"({proxy.get('n_embedded_tasks')} tasks embedded, {proxy.get('dim')}-d), projector "
                     f"{((proxy.get('projector') or {}).get('params') or {}).get('method', '?')}")
    placer = m.get("placer")
    if placer:
        from fennec.zoo.placement import describe

        lines.append(f"cold models   {describe(placer['penalties'], placer.get('pools'))}; history weight "
                     f"{placer.get('history_weight', 1.0):g}")
    else:
        lines.append("cold models   not available (fewer than 3 models)")
    lines.append("environment   " + ", ".join(f"{k} {v}" for k, v in m.get("environment", {}).items()))
    typer.echo("\n".join(lines))
    if models:
        ids = _ids(artifact)
        typer.echo("models        " + ", ".join(ids["models"]))
        typer.echo("columns       " + ", ".join(ids["columns"]))


def _ids(artifact: Path) -> dict[str, list[str]]:
    """The model ids and column ids of an artifact (its model_ids.csv and columns.csv)."""
    import pandas as pd

    return {"models": pd.read_csv(Path(artifact) / "model_ids.csv", dtype=str)["model_id"].tolist(),
            "columns": pd.read_csv(Path(artifact) / "columns.csv", dtype=str)["column_id"].tolist()}


def _flatten(doc: dict, prefix: str = "") -> list[tuple[str, str]]:
    """``{"fit": {"l2": 1}}`` -> ``[("fit.l2", "1")]``; lists and null as JSON."""
    rows: list[tuple[str, str]] = []
    for key, value in doc.items():
        if isinstance(value, dict) and value:
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value if isinstance(value, str) else json.dumps(value, default=str)))
    return rows


def _write_csv(header: list[str], rows) -> None:
    import csv
    import sys

    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


@app.command()
def histories(fmt: Format = typer.Option(Format.table, "--format", "-f")) -> None:
    """List the shipped fine-tuning histories."""
    import pandas as pd

    from fennec.data.shipped import DEFAULT_HISTORY

    rows = []
    for h in load_histories("all", None):
        s = h.summary()
        rows.append({"history": h.name, "models": s["n_models"], "tasks": s["n_tasks"], "cells": s["n_cells"],
                     "observed": s["observed_fraction"], "metrics": ",".join(s["metrics"]),
                     "default": "yes" if h.name == DEFAULT_HISTORY else ""})
    emit(pd.DataFrame(rows), fmt, float_format="{:.2f}")


@app.command()
def version(fmt: Format = typer.Option(Format.json, "--format", "-f", help="json, table or csv.")) -> None:
    """Print the versions of Fennec and of the libraries it depends on (fennec --version: Fennec's alone)."""
    from fennec.artifacts import library_versions

    versions = library_versions()
    if fmt == Format.table:
        typer.echo("\n".join(f"{k:<16}{v}" for k, v in versions.items()))
    elif fmt == Format.csv:
        _write_csv(["library", "version"], versions.items())
    else:
        typer.echo(json.dumps(versions, indent=2))
