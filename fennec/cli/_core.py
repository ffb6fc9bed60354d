"""Core verbs: ``fit``, ``query``, ``evaluate``, ``info``, ``histories``, ``version``."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from fennec.cli import app
from fennec.errors import FennecError, SchemaError

logger = logging.getLogger("fennec.cli")


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def emit(df, fmt: Format, *, float_format: str = "{:.4g}") -> None:
    """Write a DataFrame to stdout as an aligned table, CSV or JSON records."""
    import pandas as pd

    if fmt == Format.csv:
        df.to_csv(sys.stdout, index=False)
    elif fmt == Format.json:
        sys.stdout.write(df.to_json(orient="records", indent=None) + "\n")
    else:
        with pd.option_context("display.max_rows", 500, "display.max_columns", 50, "display.width", 200):
            shown = df.copy()
            for col in shown.columns:
                if pd.api.types.is_float_dtype(shown[col]):
                    shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else float_format.format(v))
            sys.stdout.write(shown.to_string(index=False) + "\n")


def _load_history(history: str, metric: str | None):
    from fennec.data.shipped import load_history

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HistoryWarning is also logged
        return load_history(history, metric=metric)


def parse_observed(text: str) -> dict[str, float]:
    """``"resnet50=84.6,deit_small=73.1"`` -> ``{"resnet50": 84.6, "deit_small": 73.1}``."""
    out: dict[str, float] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        if "=" not in part:
            raise SchemaError(f"--observed: expected MODEL=SCORE pairs separated by commas, got {part!r}")
        model, _, value = part.rpartition("=")
        try:
            out[model.strip()] = float(value)
        except ValueError:
            raise SchemaError(f"--observed: score of {model.strip()!r} is not a number: {value!r}") from None
    if not out:
        raise SchemaError("--observed: no MODEL=SCORE pair given")
    return out


@app.command()
def fit(
    out: Annotated[Path, typer.Option("--out", "-o", help="Artifact directory to write (replaced atomically).")],
    history: Annotated[str, typer.Argument(
        help="A shipped history name (see 'fennec histories') or a long CSV path.")] = "sfda",
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
    """Fit the transfer subspace on a history and write an artifact directory."""
    from fennec.artifacts import check_output
    from fennec.query.recommender import Recommender, RecommenderConfig

    check_output(out, inputs=[history, task_embeddings], force=force, format="fennec-artifact")

    def parse(value: str, name: str, kind):
        if value == "auto":
            return "auto"
        try:
            return kind(value)
        except ValueError:
            raise SchemaError(f"--{name} must be a number or 'auto', got {value!r}") from None

    if task_embeddings is not None and text_proxy:
        raise SchemaError("give either --task-embeddings or --text-proxy, not both")
    cfg = RecommenderConfig(n_components=parse(rank, "rank", int), l2=parse(l2, "l2", float), seed=seed,
                            index_backend=backend, projector=projector)
    hist = _load_history(history, metric)
    emb = None
    if text_proxy:
        from fennec.cli._proxy import text_proxy_embeddings

        emb = text_proxy_embeddings(hist.task_ids)
    elif task_embeddings is not None:
        from fennec.proxy import TaskEmbeddings

        emb = TaskEmbeddings.load(task_embeddings)
    rec = Recommender(cfg).fit(hist, emb)
    rec.save(out)
    s = hist.summary()
    typer.echo(f"fitted {s['n_models']} models x {s['n_tasks']} tasks ({s['n_cells']} cells, "
               f"{s['observed_fraction']:.0%} observed) from {hist.name}: rank {rec.subspace_.n_components_}, "
               f"l2 {rec.subspace_.l2_:g}; wrote {out}", err=True)
    if rec.projector_ is not None:
        p = rec.projector_
        typer.echo(f"task projector: {p.method} {p.params_} on {len(p.task_ids_)} embedded tasks "
                   f"({rec.proxy_identity['kind']} {rec.proxy_identity['arch']}); far-query threshold "
                   f"{p.max_distance_:.3f} cosine distance", err=True)


@app.command()
def query(
    artifact: Annotated[Path, typer.Argument(help="Artifact directory written by 'fennec fit'.")],
    task: Annotated[str | None, typer.Option(
        "--task", help="A task of the history, or a benchmark with known class names (placed by the text "
        "proxy).")] = None,
    observed: Annotated[str | None, typer.Option(
        "--observed", help="Warm start: measured MODEL=SCORE pairs, comma separated.")] = None,
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
        "--cache", help="Embedding cache folder (default ~/.cache/fennec/embeddings).")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="How many models to show.")] = 10,
    suggest: Annotated[int, typer.Option(
        "--suggest", help="With --observed: also list the N models to fine-tune next.")] = 0,
    candidates: Annotated[str | None, typer.Option(
        "--candidates", help="Rank only these models (comma separated): history model ids or timm "
        "architecture names; models without history are placed by their architecture (source archi2vec).")] = None,
    fallback: Annotated[str | None, typer.Option(
        "--fallback", help="With --images (labelled ImageFolder) and --candidates: score candidates without "
        "history by this transferability metric (e.g. logme) on the probe, calibrated onto the ranking.")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table, csv or json.")] = Format.table,
) -> None:
    """Rank models for a task: a known task id, a new task's images or class names, a warm-start task
    (--observed), or with none of these, the prior."""
    from fennec.query.recommender import Recommender

    given = [name for name, v in (("--task", task), ("--observed", observed), ("--images", images),
                                  ("--classnames", classnames)) if v]
    if len(given) > 1:
        raise SchemaError(f"give only one of --task, --observed, --images, --classnames (got {', '.join(given)})")
    if proxy and not images:
        raise SchemaError("--proxy applies to --images only")
    rec = Recommender.load(artifact)
    top_k = min(top_k, len(rec.model_ids)) if top_k > 0 else top_k
    shown_k = top_k
    if candidates:
        if suggest:
            raise SchemaError("--suggest cannot be combined with --candidates")
        top_k = None  # rank everything, then restrict to the candidates
    if images or classnames or (task and task not in rec.task_ids and rec.proxy_identity is not None):
        from fennec.cli._proxy import embed_query

        emb, how = embed_query(rec, images=images, classnames=classnames, task=task, proxy=proxy,
                               max_images=max_images, seed=seed, cache=cache)
        ranking = rec.rank_embedding(emb, top_k=top_k)
        a = ranking.attrs
        typer.echo(f"task {emb.task_id}: placed by {how}; nearest historical task {a['nearest_task']} "
                   f"(cosine distance {a['nearest_distance']:.3f}, threshold {a['max_distance']:.3f}); "
                   f"scores: {'history prior (too far)' if a['fallback'] else a['projector'] + ' projector'}, "
                   "standardised units", err=True)
    elif task:
        ranking = rec.rank_task(task, top_k=top_k)
    elif observed:
        obs = parse_observed(observed)
        ranking = rec.rank_observed(obs, top_k=top_k)
        if suggest:
            nxt = rec.suggest_next(obs, n=suggest)
            emit(ranking, fmt)
            if fmt == Format.table:
                typer.echo("\nfine-tune next (upper confidence bound):")
            emit(nxt[["rank", "model_id", "score", "std", "ucb"]], fmt)
            return
    else:
        logger.warning("no --task or --observed: ranking by general transfer quality (the prior)")
        ranking = rec.rank_prior(top_k=top_k)
    if fallback and not (candidates and images):
        raise SchemaError("--fallback needs --candidates and --images (a labelled ImageFolder)")
    if candidates and fallback:
        from fennec.query.candidates import metric_fallback
        from fennec.transferability.scoring import load_image_folder

        probe, labels, _ = load_image_folder(images, n_per_class=max(1, max_images // 2), random_state=seed)
        ranking = metric_fallback(rec, ranking, candidates.split(","), probe, labels, metric=fallback,
                                  top_k=shown_k, cache_dir=cache)
        info = ranking.attrs["metric_fallback"]
        typer.echo(f"{fallback} fallback: {info['calibration']} calibration on {info['n_models']} model(s) "
                   "with both a ranking score and weights", err=True)
    elif candidates:
        ranking = rec.rank_candidates(ranking, candidates.split(","), top_k=shown_k)
    emit(ranking, fmt)


@app.command()
def evaluate(
    history: str = typer.Argument(None, help="A shipped history name or a long CSV path (default sfda)."),
    protocol: str = typer.Option("loto,warm,lomo,cells", help="Comma-separated: loto, proxy (text proxy of class names), warm, lomo, xgroup, cells."),
    metric: str = typer.Option(None, help="Keep only rows of this metric."),
    draws: int = typer.Option(10, help="Random draws per warm-start k (with --benchmark: the first N stored draws)."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the per-task results to this CSV."),
    per_task: bool = typer.Option(False, "--per-task", help="Also print per-task Kendall tau tables."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json (the summary)."),
    benchmark: Path = typer.Option(None, "--benchmark", help="Evaluate on a benchmark release (fennec "
                                   "export-benchmark) and its stored splits, instead of a history."),
    histories: str = typer.Option(None, "--histories", help="With --benchmark: comma-separated history names "
                                  "(default: all of the release's)."),
    markdown: Path = typer.Option(None, "--markdown", help="Also write the summary as markdown tables to this file."),
) -> None:
    """Evaluate Fennec beside the baselines on a history or a benchmark release (per task, then averaged)."""
    from fennec.data.shipped import model_side_table
    from fennec.evaluation import EvalConfig, evaluate_history, per_task_table, summarize

    protocols = tuple(p.strip() for p in protocol.split(",") if p.strip())
    cfg = EvalConfig(protocols=protocols, n_draws=draws, seed=seed)
    if benchmark is not None:
        from fennec.release.evaluate import evaluate_benchmark, summarize_benchmark
        from fennec.release.export import load_benchmark

        if history is not None or metric is not None:
            raise SchemaError("--benchmark evaluates the release's own histories: give --histories NAMES, "
                              "not a HISTORY argument or --metric")
        cfg.validate()
        release = load_benchmark(benchmark)  # verifies every checksum first
        names = [h.strip() for h in histories.split(",") if h.strip()] if histories else None
        results = evaluate_benchmark(release, histories=names, config=cfg, n_draws=draws)
        summary = summarize_benchmark(results)
    else:
        if histories is not None:
            raise SchemaError("--histories applies to --benchmark only")
        hist = _load_history(history or "sfda", metric)
        try:
            side = model_side_table(hist.model_ids)  # unknown ids get NaN rows
        except FennecError:  # no shipped models table (FENNEC_DATA_DIR elsewhere)
            side = None
        emb = None
        if "proxy" in protocols:
            from fennec.proxy import load_shipped_text_embeddings

            emb = load_shipped_text_embeddings()
        results = evaluate_history(hist, side=side, config=cfg, task_embeddings=emb)
        summary = summarize(results)
    if out is not None:
        from fennec.artifacts import atomic_path

        with atomic_path(out) as tmp:
            results.to_csv(tmp, index=False)
    if markdown is not None:
        from fennec.release.evaluate import results_markdown

        title = (f"Results of benchmark release {benchmark.name or benchmark}" if benchmark is not None
                 else f"Results on {history or 'sfda'}")
        text = results_markdown(results, title=title)
        if benchmark is not None:
            text = text.replace("\n", "\n\n" + _benchmark_note(cfg, draws, benchmark), 1)
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(text, encoding="utf-8")
    cols = ["protocol", "k", "method", "n_tasks", "kendall_tau", "weighted_tau_scipy", "weighted_tau_truth",
            "spearman", "pearson", "regret_at_1", "regret_at_3", "rel_at_1"]
    cols = (["history"] if "history" in summary.columns else []) + cols
    emit(summary[cols], fmt, float_format="{:.3f}")
    if per_task and fmt == Format.table:
        groups = results.groupby("history", sort=False) if "history" in results.columns else [(None, results)]
        for name, res in groups:
            for p in res["protocol"].drop_duplicates():
                ks = sorted(res.loc[res["protocol"] == p, "k"].fillna(0).astype(int).unique())
                for k in ks:
                    typer.echo(f"\nper-task Kendall tau, {name + ', ' if name else ''}protocol {p}"
                               + (f", k={k}" if k else ""))
                    table = per_task_table(res.drop(columns="history", errors="ignore"), protocol=p, k=k).reset_index()
                    emit(table, Format.table, float_format="{:.3f}")


def _benchmark_note(cfg, draws: int, benchmark: Path) -> str:
    return (f"Written by `fennec evaluate --benchmark {benchmark} --protocol {','.join(cfg.protocols)} --draws "
            f"{draws} --seed {cfg.seed}` on the release's stored splits (every checksum verified first). Means over "
            "tasks of per-task metrics (draws averaged within a task); regret@1 in accuracy points. The random "
            "baseline is the mean over seeded random scorings.\n")


@app.command()
def info(
    artifact: Path = typer.Argument(..., help="Artifact directory written by 'fennec fit'."),
    models: bool = typer.Option(False, "--models", help="Also list the model ids."),
) -> None:
    """Show what an artifact holds: history, size, rank, config, library versions."""
    from fennec.artifacts import read_manifest

    m = read_manifest(artifact)
    inputs, fit_ = m.get("inputs", {}), m.get("fit", {})
    lines = [
        f"artifact      {artifact} ({m['format']} v{m['format_version']}, {m.get('kind')}, created {m.get('created_utc')})",
        f"history       {inputs.get('history')} (sha256 {str(inputs.get('history_sha256'))[:12]})",
        f"size          {inputs.get('n_models')} models x {inputs.get('n_tasks')} tasks, {inputs.get('n_cells')} cells "
        f"({inputs.get('observed_fraction', 0):.0%} observed)",
        f"subspace      rank {fit_.get('n_components')}, l2 {fit_.get('l2')}, {fit_.get('n_iter')} ALS iterations",
        f"index         {m.get('index', {}).get('backend')} {m.get('index', {}).get('factory')} (inner product)",
        "environment   " + ", ".join(f"{k} {v}" for k, v in m.get("environment", {}).items()),
    ]
    proxy = m.get("proxy")
    if proxy:
        ident = proxy.get("identity") or {}
        lines.insert(-1, f"task proxy    {ident.get('kind', '?')} {ident.get('arch') or ident.get('model', '')} "
                         f"({proxy.get('n_embedded_tasks')} tasks embedded, {proxy.get('dim')}-d), projector "
                         f"{((proxy.get('projector') or {}).get('params') or {}).get('method', '?')}")
    placer = m.get("placer")
    lines.insert(-1, "cold models   " + (f"placed by archi2vec + side information (ridge l2 {placer.get('l2')})"
                                         if placer else "not available (models not in the shipped models table)"))
    typer.echo("\n".join(lines))
    if models:
        import pandas as pd

        typer.echo("models        " + ", ".join(pd.read_csv(Path(artifact) / "model_ids.csv", dtype=str)["model_id"]))
        typer.echo("tasks         " + ", ".join(pd.read_csv(Path(artifact) / "task_ids.csv", dtype=str)["task_id"]))


@app.command()
def histories(fmt: Format = typer.Option(Format.table, "--format", "-f")) -> None:
    """List the shipped fine-tuning histories."""
    import pandas as pd

    from fennec.data.shipped import DEFAULT_HISTORY, list_histories, load_history

    rows = []
    for name in list_histories():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = load_history(name).summary()
        rows.append({"history": name, "models": s["n_models"], "tasks": s["n_tasks"], "cells": s["n_cells"],
                     "observed": s["observed_fraction"], "metrics": ",".join(s["metrics"]),
                     "default": "yes" if name == DEFAULT_HISTORY else ""})
    emit(pd.DataFrame(rows), fmt, float_format="{:.2f}")


@app.command()
def version() -> None:
    """Print Fennec's version and the versions of the libraries it depends on."""
    from fennec.artifacts import library_versions

    typer.echo(json.dumps(library_versions(), indent=2))
