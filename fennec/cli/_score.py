"""``fennec score``: rank models on a labelled probe set by a transferability metric alone."""

from __future__ import annotations

import contextlib
import enum
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from fennec.cli import app


class OutputFormat(str, enum.Enum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command("score")
def score(
    models: Annotated[str, typer.Option(
        "--models", "-m",
        help="Comma-separated model specs: timm name (random weights), name@weights.pth, or efficientnet-lite0/1/2.",
    )],
    images: Annotated[Path | None, typer.Option(
        "--images", help="ImageFolder-style directory: one sub-folder of images per class.")] = None,
    example_task: Annotated[str | None, typer.Option(
        "--example-task", help="Offline example task instead of --images (sklearn_digits, mnist, ...).")] = None,
    metric: Annotated[str, typer.Option(
        "--metric", help="Transferability metric (logme, sfda, parc, leep, ...).")] = "logme",
    n_per_class: Annotated[int | None, typer.Option(
        "--n-per-class", min=1, help="Class-balanced probe: at most this many images per class.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the class-balanced subsample.")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 64,
    cache_dir: Annotated[Path | None, typer.Option(
        "--cache-dir", help="Feature cache directory (default: $FENNEC_CACHE_DIR/features, else "
        "$XDG_CACHE_HOME/fennec/features, else ~/.cache/fennec/features).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write cached features.")] = False,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = OutputFormat.table,
    progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", help="Progress on stderr: bars on a terminal, one line per model elsewhere."
    )] = True,
    ray: Annotated[bool, typer.Option("--ray", help="Score the models as Ray tasks (pip install \"fennec[ray]\").")] = False,
    address: Annotated[str | None, typer.Option(
        "--address", help="With --ray: the cluster to join (default $RAY_ADDRESS, else a local one).")] = None,
) -> None:
    """Rank models by a transferability metric on labelled images (no history needed)."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from fennec.cachedir import cache_dir as default_cache
    from fennec.transferability.scoring import load_image_folder, score_models

    if no_cache and cache_dir is not None:
        raise typer.BadParameter("give --cache-dir or --no-cache, not both")
    cache = None if no_cache else cache_dir or default_cache("features")
    if (images is None) == (example_task is None):
        raise typer.BadParameter("give exactly one of --images DIR or --example-task NAME")
    specs = [s.strip() for s in models.split(",") if s.strip()]
    if not specs:
        raise typer.BadParameter("--models needs at least one model name")
    if images is not None:
        probe, labels, _ = load_image_folder(images, n_per_class=n_per_class, random_state=seed)
    else:
        from fennec.data.examples import load_example_task

        task = load_example_task(example_task, n_per_class=n_per_class, random_state=seed)
        probe, labels = task.images, task.labels
    with logging_redirect_tqdm(), _per_model_lines(progress):
        table = score_models(specs, probe, labels, metric=metric, batch_size=batch_size,
                             progress=progress, cache_dir=cache, ray=ray, address=address)
    if fmt is OutputFormat.csv:
        typer.echo(table.to_csv(index=False), nl=False)
    elif fmt is OutputFormat.json:
        typer.echo(table.to_json(orient="records", indent=2))
    else:
        typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    sys.stdout.flush()


@contextlib.contextmanager
def _per_model_lines(progress: bool):
    """Off a terminal no bar shows: there, with progress on, score_models' per-model INFO lines do."""
    lines = logging.getLogger("fennec.transferability.scoring")
    if not progress or sys.stderr.isatty() or lines.getEffectiveLevel() <= logging.INFO:
        yield
        return
    level = lines.level
    lines.setLevel(logging.INFO)
    try:
        yield
    finally:
        lines.setLevel(level)
