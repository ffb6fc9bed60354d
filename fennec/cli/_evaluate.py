"""``fennec evaluate``: Fennec beside the baselines, on a history, several (one zoo), or a benchmark release."""

from __future__ import annotations

from pathlib import Path

import typer

from fennec.cli import app
from fennec.cli._render import Format, emit
from fennec.errors import SchemaError

SUMMARY = ["protocol", "k", "method", "n_tasks", "kendall_tau", "weighted_tau_scipy", "weighted_tau_truth",
           "spearman", "pearson", "regret_at_1", "regret_at_3", "rel_at_1", "n_models"]


@app.command()
def evaluate(
    history: str = typer.Argument(None, help="A shipped history, a long CSV path, a comma list of them, or 'all' "
                                  "(default sfda); loho needs several."),
    protocol: str = typer.Option("loto,warm,lomo,cells", help="Comma-separated: loto, proxy (text proxy of class "
                                 "names), warm, lomo, xgroup, cells, loho (leave-one-history-out)."),
    metric: str = typer.Option(None, help="Keep only rows of this metric."),
    draws: int = typer.Option(10, help="Random draws per warm-start k (with --benchmark: the first N stored draws)."),
    seed: int = typer.Option(0, help="Random seed."),
    union: bool = typer.Option(False, "--union", help="With several histories: fit every fold on all of them "
                               "(one zoo) and evaluate each history's own protocols."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the per-task results to this CSV."),
    per_task: bool = typer.Option(False, "--per-task", help="Also print per-task Kendall tau tables."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv or json (the summary)."),
    benchmark: Path = typer.Option(None, "--benchmark", help="Evaluate on a benchmark release (fennec "
                                   "export-benchmark) and its stored splits, instead of data/."),
    histories: str = typer.Option(None, "--histories", help="With --benchmark: comma-separated history names."),
    markdown: Path = typer.Option(None, "--markdown", help="Also write the summary as markdown tables to this file."),
    task_embeddings: Path = typer.Option(None, "--task-embeddings", help="Task embeddings (fennec embed-tasks) "
                                         "placing the held-out task of --protocol proxy (default: the text proxy)."),
) -> None:
    """Evaluate Fennec beside the baselines, per task then averaged, through Recommender.query."""
    from fennec.evaluation import EvalConfig, summarize
    from fennec.release.evaluate import (
        evaluate_benchmark,
        evaluate_shipped,
        results_markdown,
        summarize_benchmark,
    )

    protocols = tuple(p.strip() for p in protocol.split(",") if p.strip())
    cfg = EvalConfig(protocols=protocols, n_draws=draws, seed=seed)
    cfg.validate()
    if benchmark is not None:
        if history is not None or metric is not None:
            raise SchemaError("--benchmark evaluates the release's own histories: give --histories NAMES, "
                              "not a HISTORY argument or --metric")
        names = [h.strip() for h in histories.split(",") if h.strip()] if histories else None
        results = evaluate_benchmark(benchmark, histories=names, config=cfg, n_draws=draws)
    else:
        if histories is not None:
            raise SchemaError("--histories applies to --benchmark only")
        from fennec.cli._core import load_histories

        emb = None
        if task_embeddings is not None:
            from fennec.proxy import TaskEmbeddings

            emb = TaskEmbeddings.load(task_embeddings)
        results = evaluate_shipped(load_histories(history or "sfda", metric), config=cfg, union=union,
                                   task_embeddings=emb)
    summary = summarize_benchmark(results) if "history" in results.columns else summarize(results)
    if out is not None:
        from fennec.artifacts import atomic_path

        with atomic_path(out) as tmp:
            results.to_csv(tmp, index=False)
    if markdown is not None:
        from fennec.artifacts import atomic_path

        title = f"Results of benchmark release {benchmark}" if benchmark is not None else f"Results on {history or 'sfda'}"
        text = results_markdown(results, title=title)
        if benchmark is not None:
            text = text.replace("\n", "\n\n" + _benchmark_note(cfg, draws, benchmark), 1)
        with atomic_path(markdown) as tmp:
            tmp.write_text(text, encoding="utf-8")
    cols = (["history"] if "history" in summary.columns else []) + [c for c in SUMMARY if c in summary.columns]
    emit(summary[cols], fmt, float_format="{:.3f}")
    if per_task and fmt == Format.table:
        _per_task(results)


def _benchmark_note(cfg, draws: int, benchmark: Path) -> str:
    return (f"Written by `fennec evaluate --benchmark {benchmark} --protocol {','.join(cfg.protocols)} --draws "
            f"{draws} --seed {cfg.seed}` on the release's stored splits (every checksum verified first), through "
            "`Recommender.query`. Means over tasks of per-task metrics (draws averaged within a task); every method "
            "of a block on the same models; regret@1 in accuracy points. The random baseline is the mean over "
            "seeded random scorings.\n")


def _per_task(results) -> None:
    from fennec.evaluation import per_task_table

    groups = results.groupby("history", sort=False) if "history" in results.columns else [(None, results)]
    for name, res in groups:
        for p in res["protocol"].drop_duplicates():
            ks = sorted(res.loc[res["protocol"] == p, "k"].fillna(0).astype(int).unique())
            for k in ks:
                typer.echo(f"\nper-task Kendall tau, {name + ', ' if name else ''}protocol {p}" + (f", k={k}" if k else ""))
                table = per_task_table(res.drop(columns="history", errors="ignore"), protocol=p, k=k).reset_index()
                emit(table, Format.table, float_format="{:.3f}")
