"""A campaign's output folder: results streamed in as jobs finish, failures, status.

Layout of ``out/``::

    campaign.json            marks a Fennec campaign folder (name, first spec); nothing else is written
                             into a non-empty folder without it
    histories/<label>.csv    one history per accuracy recipe (linear_probe, finetune, py:...): the rows
                             ``fennec fit`` reads (model_id, task_id, score, metric, source, campaign) plus
                             provenance (job_id, recipe_hash, seed, versions, wall_s, host, ...); one row
                             per job, so seeds repeat a cell (a fit averages them)
    scores.csv               transferability-metric jobs (metric:<name>): same columns, the metric's value
    failures.csv             jobs that failed for good, with their error line (never silently dropped)
    features/                pre-logits features per (model, task, image size), shared by the recipes

Every append takes the file's lock and rewrites it atomically (:func:`fennec.history.append.append_rows`
for histories; :func:`append_records` for the others), so a killed driver leaves complete files, and a
job's id in any results file marks it done.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fennec.errors import ArtifactError, SchemaError
from fennec.outputs import atomic_path, path_lock

logger = logging.getLogger(__name__)

__all__ = [
    "CAMPAIGN_FORMAT",
    "CampaignStatus",
    "append_records",
    "done_job_ids",
    "export_history",
    "failed_job_ids",
    "history_paths",
    "prepare_out",
    "read_results",
    "status_of",
    "write_failure",
    "write_result",
]

CAMPAIGN_FORMAT = "fennec-campaign"
MARKER = "campaign.json"
SCORES = "scores.csv"
FAILURES = "failures.csv"
HISTORIES = "histories"


def prepare_out(out: str | os.PathLike[str], name: str, spec_path: str) -> Path:
    """Create or check the output folder: missing, empty, or a campaign folder of the same name."""
    out = Path(out)
    marker = out / MARKER
    if out.exists() and not out.is_dir():
        raise ArtifactError(
            f"{out}: exists and is not a folder; choose another out = ... (or --out)"
        )
    if marker.is_file():
        try:
            meta = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{marker}: unreadable campaign marker ({exc})") from None
        if meta.get("format") != CAMPAIGN_FORMAT or meta.get("name") != name:
            raise ArtifactError(
                f"{out}: holds campaign {meta.get('name')!r}, not {name!r}; choose another out"
            )
        return out
    if out.is_dir() and any(out.iterdir()):
        raise ArtifactError(
            f"{out}: exists, is not empty and is not a Fennec campaign folder (no {MARKER}); "
            "choose another out = ... (or --out)"
        )
    out.mkdir(parents=True, exist_ok=True)
    from fennec.campaign.provenance import now_utc

    with atomic_path(marker) as tmp:
        tmp.write_text(
            json.dumps(
                {
                    "format": CAMPAIGN_FORMAT,
                    "name": name,
                    "spec": spec_path,
                    "created_utc": now_utc(),
                },
                indent=1,
            )
            + "\n",
            encoding="utf-8",
        )
    return out


def history_paths(out: str | os.PathLike[str]) -> list[Path]:
    folder = Path(out) / HISTORIES
    return sorted(folder.glob("*.csv")) if folder.is_dir() else []


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot be read as CSV ({' '.join(str(exc).split())})") from None


def read_results(out: str | os.PathLike[str]) -> pd.DataFrame:
    """Every finished job's row (histories and scores), with a ``file`` column; empty when none."""
    frames = []
    for path in [*history_paths(out), Path(out) / SCORES]:
        df = _read(path)
        if len(df):
            if "job_id" not in df.columns:
                raise SchemaError(f"{path}: no job_id column; not a campaign results file")
            frames.append(df.assign(file=str(path.relative_to(out))))
    return (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["job_id", "file"])
    )


def done_job_ids(out: str | os.PathLike[str]) -> set[str]:
    return set(read_results(out)["job_id"])


def failed_job_ids(out: str | os.PathLike[str]) -> set[str]:
    df = _read(Path(out) / FAILURES)
    return set(df["job_id"]) if len(df) else set()


def append_records(
    path: str | os.PathLike[str],
    rows: Iterable[Mapping[str, Any]],
    *,
    key: str = "job_id",
    replace: bool = False,
) -> pd.DataFrame:
    """Append rows to a CSV under its lock, rewriting it atomically; a row whose ``key`` is in the file
    already replaces it with ``replace``, else is refused."""
    path = Path(path)
    new = pd.DataFrame([{k: ("" if v is None else v) for k, v in r.items()} for r in rows])
    if new.empty:
        return new
    with path_lock(path, what="campaign results"):
        old = _read(path)
        if len(old):
            clash = old[key].isin(new[key].astype(str))
            if clash.any() and not replace:
                raise SchemaError(f"{path}: already has {key} {old.loc[clash, key].iloc[0]!r}")
            old = old[~clash]
        frame = pd.concat([old, new.astype(str)], ignore_index=True) if len(old) else new
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    return frame


def write_result(out: Path, row: Mapping[str, Any], *, to_history: bool) -> None:
    """One finished job: to ``histories/<source>.csv`` (an accuracy) or ``scores.csv`` (a metric)."""
    if to_history:
        from fennec.history.append import append_rows

        path = out / HISTORIES / f"{row['source']}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        append_rows(path, [row], key=("job_id",), replace=True)
    else:
        append_records(out / SCORES, [row], replace=True)


def write_failure(out: Path, row: Mapping[str, Any]) -> None:
    append_records(out / FAILURES, [row], replace=True)


def export_history(plan, label: str) -> pd.DataFrame:
    """The history of recipe ``label`` with each cell's seeds averaged (only this plan's jobs): columns
    ``model_id, task_id, score, metric, source, campaign``, sorted like the shipped histories."""
    labels = [r.label for r in plan.spec.recipes if r.writes_history]
    if label not in labels:
        raise SchemaError(
            f"{plan.spec.path}: no accuracy recipe labelled {label!r}; these write histories: "
            f"{', '.join(labels) or 'none'}"
        )
    df = _read(Path(plan.spec.out) / HISTORIES / f"{label}.csv")
    ids = {j.job_id for j in plan.jobs}
    df = df[df["job_id"].isin(ids)] if len(df) else df
    if df.empty:
        raise SchemaError(
            f"{plan.spec.out}: no finished {label} job yet (fennec campaign run first)"
        )
    df = df.assign(score=pd.to_numeric(df["score"]))
    out = (
        df.groupby(["model_id", "task_id", "metric"], as_index=False)["score"]
        .mean()
        .assign(source=label, campaign=plan.spec.name)
    )
    cols = ["model_id", "task_id", "score", "metric", "source", "campaign"]
    return out[cols].sort_values(["task_id", "model_id"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class CampaignStatus:
    """Where a campaign stands: ``jobs`` (one row per job with its state), ``by_recipe`` (counts of done,
    failed and pending per recipe) and ``failures`` (the failed jobs' error lines)."""

    name: str
    out: Path
    jobs: pd.DataFrame
    by_recipe: pd.DataFrame
    failures: pd.DataFrame

    def counts(self) -> dict[str, int]:
        vc = self.jobs["state"].value_counts()
        return {s: int(vc.get(s, 0)) for s in ("done", "failed", "pending")}


def status_of(plan) -> CampaignStatus:
    """The status of a :class:`~fennec.campaign.jobs.Plan`."""
    frame = plan.frame
    by = (
        frame.groupby(["recipe", "state"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=["done", "failed", "pending"], fill_value=0)
    )
    by = by.reindex([r.label for r in plan.spec.recipes]).fillna(0).astype(int).reset_index()
    fails = _read(Path(plan.spec.out) / FAILURES)
    failed_ids = set(frame.loc[frame["state"] == "failed", "job_id"])
    fails = (
        fails[fails["job_id"].isin(failed_ids)]
        if len(fails)
        else pd.DataFrame(columns=["job_id", "error"])
    )
    return CampaignStatus(
        plan.spec.name, Path(plan.spec.out), frame, by, fails.reset_index(drop=True)
    )
