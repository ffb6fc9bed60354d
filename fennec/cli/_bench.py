"""Benchmark and plot verbs: ``export-benchmark`` and ``plot ranking|evaluation|subspace``.

(``fennec evaluate --benchmark DIR`` lives in :mod:`fennec.cli._core`'s ``evaluate``.)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from fennec.cli import app
from fennec.errors import SchemaError

logger = logging.getLogger("fennec.cli")


@app.command("export-benchmark")
def export_benchmark(
    out: Annotated[Path, typer.Option("--out", "-o", help="Release directory to write (replaced atomically).")],
    histories: Annotated[str | None, typer.Option(
        "--histories", help="Comma-separated shipped history names (default: all).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the warm-start draws and held-out cells.")] = 0,
    draws: Annotated[int, typer.Option("--draws", help="Warm-start draws per task and k.")] = 10,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace --out even if it is not a Fennec benchmark release (its files are deleted).")] = False,
) -> None:
    """Freeze the shipped histories, tables, task embeddings and protocol splits into a checksummed release."""
    from fennec.release.export import export_benchmark as export

    names = [h.strip() for h in histories.split(",") if h.strip()] if histories else None
    path = export(out, histories=names, seed=seed, n_draws=draws, force=force)
    from fennec.release.export import verify_benchmark

    m = verify_benchmark(path)
    typer.echo(f"wrote benchmark release {path}: {len(m['histories'])} histories "
               f"({', '.join(m['histories'])}), {m['n_models']} models, {m['n_tasks']} tasks, "
               f"{len(m['files'])} checksummed files (seed {seed})", err=True)


plot_app = typer.Typer(help="Write PNG figures (needs matplotlib: the 'plot' extra).", no_args_is_help=True)
app.add_typer(plot_app, name="plot")


def _agg() -> None:
    from fennec.plotting import pyplot

    pyplot()
    import matplotlib

    matplotlib.use("Agg")


def _read_csv(path: Path, what: str, **kwargs):
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(2, f"{what} CSV not found", str(path))
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot be read as CSV ({' '.join(str(exc).split())})") from exc


def _check_png(out: Path) -> None:
    if out.suffix.lower() != ".png":
        raise SchemaError(f"--out {out}: plots are written as PNG; give a path ending in .png")


@plot_app.command("ranking")
def plot_ranking_cmd(
    ranking: Annotated[Path, typer.Argument(help="A ranking CSV ('fennec query ... --format csv').")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Show the first K rows (0: all).")] = 20,
    task: Annotated[str | None, typer.Option("--task", help="The task to plot when the CSV holds several.")] = None,
) -> None:
    """Bar chart of a ranking's scores, coloured by score source."""
    _check_png(out)
    df = _read_csv(ranking, "ranking", dtype={"model_id": str, "task_id": str}, keep_default_na=False,
                   na_values={"score": [""], "std": [""], "measured": [""]})
    if "task_id" in df.columns and df["task_id"].nunique() > 1:
        if task is None:
            raise SchemaError(f"{ranking}: holds {df['task_id'].nunique()} tasks; choose one with --task")
        df = df[df["task_id"].astype(str) == task]
        if df.empty:
            raise SchemaError(f"{ranking}: no rows for task {task!r}")
    _agg()
    from fennec.plotting import plot_ranking, save_figure

    save_figure(plot_ranking(df, top_k=top_k or None), out)
    typer.echo(f"wrote {out}", err=True)


@plot_app.command("evaluation")
def plot_evaluation_cmd(
    results: Annotated[Path, typer.Argument(help="Per-task results CSV ('fennec evaluate ... --out FILE').")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")],
    protocol: Annotated[str, typer.Option("--protocol", help="loto, warm, lomo, cells, xgroup:G, ...")] = "loto",
    metric: Annotated[str, typer.Option("--metric", help="kendall_tau, weighted_tau_scipy, "
                                        "weighted_tau_truth, regret_at_1, ...")] = "kendall_tau",
    k: Annotated[int, typer.Option("--k", help="Warm start: the number of revealed models.")] = 0,
    history: Annotated[str | None, typer.Option("--history", help="With a benchmark's results: which history.")] = None,
) -> None:
    """Per-task metric of every method side by side, for one protocol."""
    _check_png(out)
    df = _read_csv(results, "results")
    need = {"protocol", "task_id", "method", metric}
    if need - set(df.columns):
        raise SchemaError(f"{results}: not an evaluation results CSV (missing {sorted(need - set(df.columns))})")
    if protocol == "warm" and k == 0:
        k = int(df.loc[df["protocol"] == "warm", "k"].dropna().min()) if (df["protocol"] == "warm").any() else 0
    _agg()
    from fennec.plotting import plot_per_task, save_figure

    save_figure(plot_per_task(df, protocol=protocol, metric=metric, k=k, history=history), out)
    typer.echo(f"wrote {out}", err=True)


@plot_app.command("subspace")
def plot_subspace_cmd(
    artifact: Annotated[Path, typer.Argument(help="Artifact directory written by 'fennec fit'.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")],
    label_models: Annotated[int, typer.Option("--label-models", help="Label the N best models.")] = 8,
) -> None:
    """2-D map (PCA) of the artifact's model vectors and task directions."""
    _check_png(out)
    from fennec.query.recommender import Recommender

    rec = Recommender.load(artifact)
    _agg()
    from fennec.plotting import plot_subspace, save_figure

    save_figure(plot_subspace(rec, label_models=label_models), out)
    typer.echo(f"wrote {out}", err=True)
