"""Run a campaign's missing jobs in this process (``local``) or as Ray tasks (``ray``), the same way.

:func:`execute_job` is what runs where the job runs (a Ray worker, or here): it loads the task, calls the
recipe and returns the job's row. :func:`run_campaign` is the driver: it plans, sends the pending jobs to
:func:`fennec.campaign.executor.map_jobs` and writes every finished row as it arrives (one locked, atomic
append), failures included, with a progress bar over finished jobs. Running it again runs only what is
missing; a job that failed is tried again with ``retry_failed``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fennec.campaign.executor import Outcome
from fennec.campaign.jobs import Job, plan
from fennec.campaign.provenance import host, now_utc, versions
from fennec.campaign.spec import CampaignSpec
from fennec.errors import SchemaError

logger = logging.getLogger(__name__)

__all__ = ["RUNNERS", "RunReport", "execute_job", "run_campaign"]

RUNNERS = ("local", "ray")
OUTCOME_COLUMNS = [
    "job_id",
    "model_id",
    "task_id",
    "recipe",
    "seed",
    "state",
    "score",
    "metric",
    "wall_s",
    "error",
]


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def execute_job(job: Job, out: str) -> dict[str, Any]:
    """Run one job and return its results row (history columns plus provenance)."""
    from fennec.campaign.data import load_task
    from fennec.campaign.recipes import ModelHandle, recipe_function

    t0 = time.perf_counter()
    fn, params = recipe_function(job.recipe)
    with _torch_threads(job.budget.threads):
        task = load_task(job.task, job.budget, job.seed)
        model = ModelHandle(job.model, job.task, task, job.budget, Path(out))
        result = fn(model, task, {**params, "budget": job.budget.to_dict()}, job.seed)
    score = result.get("score") if isinstance(result, dict) else None
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise SchemaError(f"recipe {job.recipe.kind} returned no finite score ({result!r:.200})")
    extra = {k: v for k, v in result.items() if k not in ("score", "metric")}
    return {
        "model_id": job.model.model_id,
        "task_id": job.task.task_id,
        "score": round(float(score), 6),
        "metric": str(result.get("metric", "top1")),
        "source": job.recipe.label,
        "campaign": "",
        "job_id": job.job_id,
        "recipe": job.recipe.kind,
        "recipe_hash": job.recipe_hash,
        "seed": job.seed,
        "model": job.model.name,
        "n_train": extra.pop("n_train", ""),
        "n_test": extra.pop("n_test", ""),
        "extra": ";".join(f"{k}={v}" for k, v in sorted(extra.items())),
        "wall_s": round(time.perf_counter() - t0, 3),
        "host": host(),
        "versions": versions(),
        "finished_utc": now_utc(),
    }


@dataclass(frozen=True)
class RunReport:
    """What one ``run`` did: ``outcomes`` has one row per job it ran (state ``done`` or ``failed``)."""

    name: str
    out: Path
    runner: str
    n_jobs: int
    n_skipped: int
    outcomes: pd.DataFrame
    wall_s: float

    @property
    def n_done(self) -> int:
        return int((self.outcomes["state"] == "done").sum())

    @property
    def n_failed(self) -> int:
        return int((self.outcomes["state"] == "failed").sum())


def run_campaign(
    spec: CampaignSpec,
    *,
    runner: str = "local",
    address: str | None = None,
    workers: int | None = None,
    retry_failed: bool = False,
    progress: bool = True,
) -> RunReport:
    """Run the jobs of ``spec`` not done yet; see the module docstring."""
    from fennec.campaign.executor import import_ray, start_ray
    from fennec.campaign.results import prepare_out

    if runner not in RUNNERS:
        raise SchemaError(f"unknown runner {runner!r}; choose from {', '.join(RUNNERS)}")
    if runner == "ray":
        import_ray()  # without Ray: one error line, before any file is written
    out = prepare_out(spec.out, spec.name, spec.path)
    p = plan(spec)
    todo = p.pending(retry_failed=retry_failed)
    logger.info(
        "campaign %s: %d jobs, %d to run (%s)", spec.name, len(p.jobs), len(todo), p.counts()
    )
    t0 = time.perf_counter()
    started = bool(todo) and runner == "ray" and start_ray(address=address, workers=workers)
    try:
        rows = _run_jobs(spec, out, todo, ray=runner == "ray", address=address, workers=workers,
                         progress=progress)
    finally:
        if started:
            import_ray().shutdown()
    frame = pd.DataFrame(rows, columns=OUTCOME_COLUMNS)
    return RunReport(
        spec.name,
        out,
        runner,
        len(p.jobs),
        len(p.jobs) - len(todo),
        frame,
        time.perf_counter() - t0,
    )


def _run_jobs(spec: CampaignSpec, out: Path, todo: list[Job], *, ray: bool, address: str | None,
              workers: int | None, progress: bool) -> list[dict[str, Any]]:
    """Run ``todo`` through :func:`~fennec.campaign.executor.map_jobs`, writing each row as it finishes
    (a progress bar over finished jobs); the run's outcome lines."""
    from tqdm.auto import tqdm

    from fennec.campaign.executor import map_jobs

    rows: list[dict[str, Any]] = []
    outcomes = map_jobs(
        execute_job,
        todo,
        shared=str(out),
        ray=ray,
        address=address,
        workers=workers,
        num_cpus=spec.resources.num_cpus,
        num_gpus=spec.resources.num_gpus,
        max_retries=spec.max_retries,
    )
    with tqdm(
        total=len(todo),
        desc=f"campaign {spec.name}",
        unit="job",
        disable=None if progress else True,
    ) as bar:
        for o in outcomes:
            rows.append(_record(spec, out, todo[o.index], o))
            bar.update(1)
            bar.set_postfix(failed=sum(r["state"] == "failed" for r in rows), refresh=False)
    return rows


def _record(spec: CampaignSpec, out: Path, job: Job, outcome: Outcome) -> dict[str, Any]:
    """Write one finished job's row (or its failure); returns its line of the run's outcomes."""
    from fennec.campaign.results import write_failure, write_result
    from fennec.history.table import KNOWN_METRICS

    base = job.describe()
    if outcome.ok:
        row = {**outcome.value, "campaign": spec.name}
        to_history = not job.recipe.kind.startswith("metric:") and row["metric"] in KNOWN_METRICS
        try:
            write_result(out, row, to_history=to_history)
        except SchemaError as exc:  # e.g. a score outside its metric's range: the job failed
            outcome = Outcome(outcome.index, error=f"SchemaError: {' '.join(str(exc).split())}")
        else:
            return {
                **base,
                "state": "done",
                "score": row["score"],
                "metric": row["metric"],
                "wall_s": row["wall_s"],
                "error": "",
            }
    logger.warning(
        "job %s (%s on %s, %s, seed %d) failed: %s",
        job.job_id,
        job.model.model_id,
        job.task.task_id,
        job.recipe.label,
        job.seed,
        outcome.error,
    )
    write_failure(
        out,
        {
            **base,
            "recipe_kind": job.recipe.kind,
            "error": outcome.error,
            "campaign": spec.name,
            "finished_utc": now_utc(),
        },
    )
    return {
        **base,
        "state": "failed",
        "score": float("nan"),
        "metric": "",
        "wall_s": float("nan"),
        "error": outcome.error,
    }
