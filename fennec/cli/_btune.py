"""``fennec btune`` (B-Tuning / plain fine-tuning) and ``fennec history add`` (close the loop)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from fennec.cli import app
from fennec.errors import SchemaError

history_app = typer.Typer(
    help="Edit fine-tuning histories (long CSV: model_id,task_id,score,metric,source,campaign).",
    no_args_is_help=True,
)
app.add_typer(history_app, name="history")


@app.command("btune")
def btune_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (checkpoints, history.json, summary.json).")],
    target: Annotated[str | None, typer.Option(
        "--target", help="Model to tune: timm name, ARCH@weights.pth, or efficientnet-lite0/1/2 (packaged weights).",
    )] = None,
    teachers_from: Annotated[Path | None, typer.Option(
        "--teachers-from", help="Ranking CSV (model_id column; 'fennec query' or 'fennec score' output).")] = None,
    teachers: Annotated[str | None, typer.Option(
        "--teachers", help="Comma-separated teacher specs instead of --teachers-from.")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, help="Teachers taken from the ranking (default: 3).")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="ImageFolder directory: one sub-folder per class.")] = None,
    example_task: Annotated[str | None, typer.Option(
        "--example-task", help="Offline example task instead of --data (animal_mnist, mnist, sklearn_digits, ...).",
    )] = None,
    per_class: Annotated[int | None, typer.Option(
        "--per-class", min=1, help="Class-balanced subset: at most N images per class.")] = None,
    data_seed: Annotated[int, typer.Option("--data-seed", help="Seed of the --per-class subset.")] = 0,
    task_id: Annotated[str | None, typer.Option("--task-id", help="Task name in the summary and history.")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", help="T in softmax(LogME/T) (default: 0.1).")] = None,
    tradeoff: Annotated[float | None, typer.Option("--tradeoff", help="lambda, weight of the MSE term (default: 100).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Maximum epochs (default: 10).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help="Batch size (default: 32).")] = None,
    lr_backbone: Annotated[float | None, typer.Option("--lr-backbone", help="Backbone learning rate (default: 1e-3).")] = None,
    lr_head: Annotated[float | None, typer.Option("--lr-head", help="Head learning rate (default: 1e-2).")] = None,
    momentum: Annotated[float | None, typer.Option("--momentum", help="SGD momentum (default: 0.9).")] = None,
    weight_decay: Annotated[float | None, typer.Option("--weight-decay", help="Weight decay (default: 5e-4).")] = None,
    nesterov: Annotated[bool | None, typer.Option("--nesterov/--no-nesterov", help="Nesterov momentum (default: on).")] = None,
    val_fraction: Annotated[float | None, typer.Option("--val-fraction", help="Held-out share per class (default: 0.2).")] = None,
    patience: Annotated[int | None, typer.Option("--patience", min=1, help="Early stopping patience (default: off).")] = None,
    image_size: Annotated[int | None, typer.Option(
        "--image-size", min=8, help="Square input size for all models (default: each model's own).")] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="torch CPU threads (default: torch's default).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, help="Split, head init, shuffles, dropout (default: 0).")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue an interrupted run in --out (its inputs and settings are reused).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing run directory.")] = False,
    baseline: Annotated[bool, typer.Option(
        "--baseline", help="Plain fine-tuning (no teachers, lambda = 0) with the same budget.")] = False,
    cache_dir: Annotated[Path | None, typer.Option(
        "--cache-dir", help="Teachers' feature cache (default: OUT/feature_cache).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars on stderr.")] = True,
) -> None:
    """Fine-tune a target model with the top-K ranked models as teachers (B-Tuning), or plainly (--baseline)."""
    given = {"top_k": top_k, "temperature": temperature, "tradeoff": tradeoff, "lr_backbone": lr_backbone,
             "lr_head": lr_head, "momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay,
             "epochs": epochs, "batch_size": batch_size, "val_fraction": val_fraction, "seed": seed,
             "patience": patience, "image_size": image_size, "num_threads": threads}
    inputs: dict[str, Any] = {"target": target, "teachers_from": str(teachers_from) if teachers_from else None,
                              "teachers": teachers, "data": str(data.resolve()) if data else None,
                              "example_task": example_task, "per_class": per_class, "data_seed": data_seed,
                              "task_id": task_id, "baseline": baseline}
    config, inputs = _settings(out, resume, {k: v for k, v in given.items() if v is not None}, inputs)
    common = {"config": config, "run_dir": out, "resume": resume, "overwrite": overwrite,
              "task_id": inputs["task_id"], "progress": progress, "inputs": inputs}
    _report(_run(out, inputs, _load_data(inputs), cache_dir, common))


def _settings(out: Path, resume: bool, given: dict[str, Any], inputs: dict[str, Any]):
    """The run's configuration and inputs (a resumed run's saved ones where not given again), checked."""
    from fennec.train import BTuningConfig

    base = BTuningConfig()
    if resume:
        saved = _saved_run(out)
        for key in ("target", "teachers_from", "teachers", "data", "example_task", "per_class", "data_seed",
                    "task_id", "baseline"):
            default = {"data_seed": 0, "baseline": False}.get(key)
            if inputs[key] in (None, default) and saved["inputs"].get(key) is not None:
                inputs[key] = saved["inputs"][key]
        base = BTuningConfig.from_dict(saved["config"])
    if not inputs["target"]:
        raise typer.BadParameter("--target is required (a timm name, ARCH@weights.pth or efficientnet-lite0/1/2)")
    if (inputs["data"] is None) == (inputs["example_task"] is None):
        raise typer.BadParameter("give exactly one of --data DIR or --example-task NAME")
    if inputs["baseline"]:
        if inputs["teachers_from"] or inputs["teachers"]:
            typer.echo("note: --baseline fine-tunes without teachers; --teachers-from/--teachers are ignored",
                       err=True)
    elif (inputs["teachers_from"] is None) == (inputs["teachers"] is None):
        raise typer.BadParameter("give exactly one of --teachers-from RANKING.csv or --teachers A,B,C "
                                 "(or --baseline for plain fine-tuning)")
    return base.replace(**given), inputs


def _run(out: Path, inputs: dict[str, Any], train_data: Any, cache_dir: Path | None, common: dict[str, Any]):
    """The tuning itself; Ctrl-C says what was saved and exits 130."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with logging_redirect_tqdm():
            return _call(inputs["target"], bool(inputs["baseline"]), inputs, train_data, cache_dir, common)
    except KeyboardInterrupt:
        if (out / "checkpoints" / "last.safetensors").is_file():
            typer.echo(f"the last finished epoch is saved; continue with: fennec btune --out {out} --resume",
                       err=True)
        else:
            typer.echo("stopped before the first epoch finished; nothing saved", err=True)
        raise typer.Exit(130) from None


def _call(target: str, baseline: bool, inputs: dict[str, Any], train_data: Any, cache_dir: Path | None,
          common: dict[str, Any]):
    from fennec.train import btune, finetune

    if baseline:
        return finetune(target, train_data, **common)
    teacher_arg: Any = Path(inputs["teachers_from"]) if inputs["teachers_from"] else \
        [s.strip() for s in inputs["teachers"].split(",") if s.strip()]
    if isinstance(teacher_arg, list) and not teacher_arg:
        raise typer.BadParameter("--teachers needs at least one model spec")
    return btune(target, teacher_arg, train_data, cache_dir=cache_dir, **common)


def _saved_run(out: Path) -> dict[str, Any]:
    path = out / "config.json"
    if not path.is_file():
        raise SchemaError(f"{out}: nothing to resume (no config.json; start the run without --resume)")
    try:
        saved = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: corrupt JSON ({exc})") from exc
    saved.setdefault("inputs", {})
    return saved


def _load_data(inputs: dict[str, Any]) -> Any:
    if inputs["data"] is not None:
        from fennec.transferability.scoring import load_image_folder

        images, labels, names = load_image_folder(inputs["data"], n_per_class=inputs["per_class"],
                                                  random_state=inputs["data_seed"])
        return _Folder(images, labels, names, Path(inputs["data"]).name)
    from fennec.data.examples import load_example_task

    return load_example_task(inputs["example_task"], n_per_class=inputs["per_class"],
                             random_state=inputs["data_seed"])


class _Folder:
    def __init__(self, images, labels, class_names, task_id) -> None:
        self.images, self.labels, self.class_names, self.task_id = images, labels, class_names, task_id


def _report(result) -> None:
    s = result.summary
    lines = [
        f"method      {'B-Tuning' if result.method == 'btuning' else 'plain fine-tuning'}",
        f"target      {result.target_id}",
        f"task        {result.task_id} ({len(result.class_names)} classes, {result.n_train} train / "
        f"{result.n_val} validation images)",
    ]
    for t in result.teachers:
        lines.append(f"teacher     {t['model_id']}: LogME {t['logme']:.4f}, weight {t['weight']:.3f}")
    stop = ", stopped early" if result.stopped_early else ""
    lines.append(f"val top-1   {100 * result.val_accuracy:.2f} % (best epoch {result.best_epoch} of "
                 f"{result.epochs_run}{stop}; last epoch {100 * result.final_val_accuracy:.2f} %)")
    lines.append(f"time        {s['wall_time_s']:.1f} s")
    lines.append(f"run         {result.run_dir}")
    typer.echo("\n".join(lines))


@history_app.command("add")
def history_add(
    history: Annotated[Path, typer.Argument(help="History CSV to append to (created if missing).")],
    model: Annotated[str | None, typer.Option("--model", help="model_id (default with --from-run: the target).")] = None,
    task: Annotated[str | None, typer.Option("--task", help="task_id (default with --from-run: the run's task).")] = None,
    score: Annotated[float | None, typer.Option("--score", help="Measured result, in the metric's unit.")] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="top1 (percent), accuracy, map, neg_error (default: top1).")] = None,
    source: Annotated[str | None, typer.Option("--source", help="Provenance (default: btune).")] = None,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Campaign name (default: run dir name with --from-run).")] = None,
    from_run: Annotated[Path | None, typer.Option(
        "--from-run", help="Take model, task and validation top-1 from a completed 'fennec btune' run.")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite an existing result for the same cell.")] = False,
) -> None:
    """Append a measured fine-tuning result to a history, so the next 'fennec fit' knows it."""
    from fennec.train import add_history_row, row_from_run

    if from_run is not None:
        if score is not None:
            raise typer.BadParameter("--score and --from-run exclude each other (the run gives the score)")
        if metric not in (None, "top1"):
            raise typer.BadParameter("--from-run records validation top-1 (%); --metric must be top1")
        row = row_from_run(from_run)
    else:
        missing = [o for o, v in (("--model", model), ("--task", task), ("--score", score)) if v is None]
        if missing:
            raise typer.BadParameter(f"missing {', '.join(missing)} (or use --from-run RUN_DIR)")
        row = {"model_id": model, "task_id": task, "score": score, "metric": metric or "top1",
               "source": "btune", "campaign": ""}
    for key, value in (("model_id", model), ("task_id", task), ("source", source), ("campaign", campaign)):
        if value is not None:
            row[key] = value
    frame = add_history_row(history, replace=replace, **row)
    typer.echo(f"{history}: {row['model_id']} on {row['task_id']} = {row['score']:.6g} ({row['metric']}); "
               f"{len(frame)} rows")
