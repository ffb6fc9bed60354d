"""``fennec campaign plan|run|status|export SPEC``: fine-tuning, probing and scoring campaigns, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fennec.cli import app
from fennec.cli._render import Format, emit, say
from fennec.errors import FennecError

campaign_app = typer.Typer(
    help="Campaigns: run recipes (linear_probe, finetune, btune, metric:NAME) over models x tasks x seeds, in this "
    "process or on Ray, resumable; results stream into histories in the output folder.",
    no_args_is_help=True,
)
app.add_typer(campaign_app, name="campaign")

SpecArg = Annotated[Path, typer.Argument(help="Campaign spec (TOML); see docs/campaigns.md.")]
OutOpt = Annotated[
    Path | None, typer.Option("--out", "-o", help="Output folder (default: the spec's out).")
]
FmtOpt = Annotated[Format, typer.Option("--format", "-f", help="table, csv or json.")]


def _spec(spec: Path, out: Path | None):
    from fennec.campaign import load_spec

    s = load_spec(spec)
    return s.with_out(out) if out is not None else s


def _counts_line(name: str, counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return (
        f"campaign {name}: {total} jobs: {counts['done']} done, {counts['failed']} failed, "
        f"{counts['pending']} pending"
    )


@campaign_app.command("plan")
def plan_cmd(spec: SpecArg, out: OutOpt = None, fmt: FmtOpt = Format.table) -> None:
    """List the jobs of a campaign (job id, model, task, recipe, seed) and which are done."""
    from fennec.campaign import plan

    p = plan(_spec(spec, out))
    emit(p.frame, fmt)
    say(_counts_line(p.spec.name, p.counts()) + f" (results in {p.spec.out})")


@campaign_app.command("run")
def run_cmd(
    spec: SpecArg,
    out: OutOpt = None,
    runner: Annotated[
        str,
        typer.Option(
            "--runner", help="ray (Ray tasks) or local (in this process, one job after another)."
        ),
    ] = "ray",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Join this Ray cluster ('auto': the one started here with 'ray start --head'; "
            "default $RAY_ADDRESS, else a local cluster is started).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="CPUs of the local Ray cluster (jobs at once = workers / resources.num_cpus; "
            "default: all cores).",
        ),
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Run failed jobs again.")
    ] = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")
    ] = True,
) -> None:
    """Run the jobs not done yet; finished rows stream into OUT/histories/*.csv and OUT/scores.csv."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from fennec.campaign import plan, run_campaign

    if runner not in ("ray", "local"):
        raise typer.BadParameter(f"--runner must be ray or local; got {runner!r}")
    if runner == "local" and (address is not None or workers is not None):
        raise typer.BadParameter("--address and --workers apply to --runner ray")
    s = _spec(spec, out)
    with logging_redirect_tqdm():
        report = run_campaign(
            s,
            runner=runner,
            address=address,
            workers=workers,
            retry_failed=retry_failed,
            progress=progress,
        )
    say(
        f"ran {len(report.outcomes)} job(s) with the {runner} runner in {report.wall_s:.1f} s: {report.n_done} done, "
        f"{report.n_failed} failed ({report.n_skipped} of {report.n_jobs} were done already)"
    )
    say(_counts_line(s.name, plan(s).counts()) + f" (results in {s.out})")
    if report.n_failed:
        raise FennecError(
            f"{report.n_failed} job(s) failed; their errors are in {s.out / 'failures.csv'} "
            "(fennec campaign status; rerun with --retry-failed)"
        )


@campaign_app.command("status")
def status_cmd(spec: SpecArg, out: OutOpt = None, fmt: FmtOpt = Format.table) -> None:
    """Done / failed / pending jobs per recipe, and the failed jobs' errors."""
    from fennec.campaign import plan, status_of

    st = status_of(plan(_spec(spec, out)))
    emit(st.by_recipe, fmt)
    say(_counts_line(st.name, st.counts()) + f" (results in {st.out})")
    for row in st.failures.itertuples(index=False):
        say(
            f"failed {row.job_id} ({row.model_id} on {row.task_id}, {row.recipe}, seed {row.seed}): {row.error}"
        )


@campaign_app.command("export")
def export_cmd(
    spec: SpecArg,
    recipe: Annotated[
        str, typer.Option("--recipe", help="The recipe label whose history to export.")
    ],
    to: Annotated[
        Path,
        typer.Option(
            "--to", help="History CSV to write (one row per model x task, the mean over seeds)."
        ),
    ],
    out: OutOpt = None,
) -> None:
    """Write a recipe's history with the seeds averaged (the shipped histories' format)."""
    from fennec.artifacts import atomic_path
    from fennec.campaign import plan
    from fennec.campaign.results import export_history

    frame = export_history(plan(_spec(spec, out)), recipe)
    with atomic_path(to) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.4f")
    say(
        f"wrote {to}: {len(frame)} rows ({frame['model_id'].nunique()} models x {frame['task_id'].nunique()} tasks)"
    )
