"""The jobs of a campaign: one per (model, task, recipe, seed), identified by a hash of what it computes.

A job id is the hash of the model (what is loaded, its arguments, the weights file's checksum), the task
(source, class subset), the recipe (kind, parameters and the budget it depends on: its *recipe hash*) and
the seed. The campaign's name, the output folder and labels do not enter it: renaming keeps the results,
changing what a job computes makes a new job. A job is done when its id is in the output folder's results
(:mod:`fennec.campaign.results`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from fennec.campaign.spec import Budget, CampaignSpec, ModelSpec, RecipeSpec, TaskSpec, stable_hash

__all__ = ["JOB_COLUMNS", "Job", "Plan", "make_jobs", "plan", "recipe_hash"]

JOB_COLUMNS = ["job_id", "model_id", "task_id", "recipe", "seed", "state"]
_DATA_KEYS = ("images", "test_fraction", "data_seed", "image_size")


def recipe_hash(recipe: RecipeSpec, budget: Budget) -> str:
    """The hash of a recipe's kind, parameters and the budget entries its result depends on."""
    keys = _DATA_KEYS + (("epochs", "batch_size") if recipe.kind in ("finetune", "btune") else ())
    if recipe.kind.startswith("py:"):
        keys = tuple(k for k in budget.to_dict() if k != "threads")
    return stable_hash(
        {
            "kind": recipe.kind,
            "params": dict(recipe.params),
            "budget": {k: getattr(budget, k) for k in keys},
        },
        n=12,
    )


@dataclass(frozen=True)
class Job:
    """One unit of work: a recipe applied to a model on a task with a seed."""

    job_id: str
    model: ModelSpec
    task: TaskSpec
    recipe: RecipeSpec
    seed: int
    budget: Budget
    recipe_hash: str

    def describe(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "model_id": self.model.model_id,
            "task_id": self.task.task_id,
            "recipe": self.recipe.label,
            "seed": self.seed,
        }


def make_jobs(spec: CampaignSpec) -> list[Job]:
    """Every job of ``spec``, in an order that spreads the (model, task) pairs: the first job of every pair,
    then the second of every pair, ... (parallel workers then extract different pairs' features at once)."""
    rounds: list[list[Job]] = []
    for model in spec.models:
        for task in spec.tasks:
            pair = [
                _job(model, task, recipe, seed, spec.budget)
                for seed in spec.seeds
                for recipe in spec.recipes
                if recipe.applies_to(task.task_id)
            ]
            for k, job in enumerate(pair):
                if k == len(rounds):
                    rounds.append([])
                rounds[k].append(job)
    jobs = [j for r in rounds for j in r]
    seen: dict[str, Job] = {}
    for j in jobs:
        if j.job_id in seen:
            from fennec.errors import SchemaError

            other = seen[j.job_id].describe()
            raise SchemaError(
                f"{spec.path}: two entries make the same job ({other} and {j.describe()})"
            )
        seen[j.job_id] = j
    return jobs


def _job(model: ModelSpec, task: TaskSpec, recipe: RecipeSpec, seed: int, budget: Budget) -> Job:
    rh = recipe_hash(recipe, budget)
    jid = stable_hash({"model": model.key(), "task": task.key(), "recipe": rh, "seed": int(seed)})
    return Job(jid, model, task, recipe, int(seed), budget, rh)


@dataclass(frozen=True)
class Plan:
    """The jobs of a campaign and the state of each (``done``, ``failed`` or ``pending``) in ``frame``."""

    spec: CampaignSpec
    jobs: tuple[Job, ...]
    frame: pd.DataFrame

    def pending(self, *, retry_failed: bool = False) -> list[Job]:
        """The jobs to run: pending ones, and failed ones with ``retry_failed``."""
        states = {"pending", "failed"} if retry_failed else {"pending"}
        todo = set(self.frame.loc[self.frame["state"].isin(states), "job_id"])
        return [j for j in self.jobs if j.job_id in todo]

    def counts(self) -> dict[str, int]:
        vc = self.frame["state"].value_counts()
        return {s: int(vc.get(s, 0)) for s in ("done", "failed", "pending")}


def plan(spec: CampaignSpec) -> Plan:
    """The jobs of ``spec`` with their state read from its output folder."""
    from fennec.campaign.results import done_job_ids, failed_job_ids

    jobs = make_jobs(spec)
    done, failed = done_job_ids(spec.out), failed_job_ids(spec.out)
    rows = [
        {
            **j.describe(),
            "state": "done" if j.job_id in done else "failed" if j.job_id in failed else "pending",
        }
        for j in jobs
    ]
    return Plan(spec, tuple(jobs), pd.DataFrame(rows, columns=JOB_COLUMNS))
