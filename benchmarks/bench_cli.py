"""Whole-process latency of the command line, beside its floors and beside the work it does.

Two commands: ``fennec query ART --observed resnet50=84.6,deit_small=73.1,byol=82.1 --top-k 8`` (a warm
start on an artifact of the default history, as in the README) and ``archi2vec encode resnet50`` (an
architecture of the shipped catalogue). For each, in one run:

- ``process``: wall time of the console script, from its start to its exit (median of ``--runs`` runs;
  ``best``, the fastest);
- ``floor``: the same for ``python -c pass`` with the same interpreter (what any Python command costs);
- ``libs``: the same for a process that only imports the libraries the verb cannot run without (numpy,
  typer and the pydantic it validates options with; not pandas, which a warm-start query never imports)
  and exits as the console scripts do (``os._exit``);
- ``work``: the library calls the verb makes (``Recommender.load(ART).query(...)``; the catalogue lookup),
  timed in a fresh process once every module they import is imported (so a first call, as in a CLI run,
  with its caches cold but without import time; median of ``--runs`` processes).

``own = process - libs - work`` is what Fennec's own code adds (its modules, parsing, rendering, exit).
The commands of one case are run in turn, run after run, so that a change of the machine's load shifts
them alike.

    python benchmarks/bench_cli.py [--runs 11] [--artifact DIR]

Without ``--artifact``, the default history is fitted once into a temporary directory (as
``fennec fit sfda --out DIR`` does, a few seconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OBSERVED = {"resnet50": 84.6, "deit_small": 73.1, "byol": 82.1}
ARCH = "resnet50"


def query_work(art: Path) -> str:
    """What ``fennec query ART --observed ... --top-k 8`` asks of the library."""
    return (
        f"from fennec.query.recommender import Recommender\n"
        f"Recommender.load({str(art)!r}).query(observed={OBSERVED!r}, top_k=8)\n"
    )


# what `archi2vec encode ARCH` asks of the library for an architecture of the catalogue
ENCODE_WORK = f"from archi2vec.catalogue import lookup\nlookup([{ARCH!r}], compute_missing=False)\n"

# child: import the given modules, then time the work once; prints the seconds and the modules it loaded
TIMER = """
import importlib, json, sys, time
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception:
        pass
code = compile(sys.argv[2], "<work>", "exec")
t = time.perf_counter()
exec(code, {})
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "modules": sorted(sys.modules)}))
"""


def script(name: str) -> list[str]:
    """The console script beside this interpreter, else ``python -m`` (fennec) / the module's run()."""
    path = Path(sys.executable).with_name(name)
    if path.is_file():
        return [str(path)]
    if name == "fennec":
        return [sys.executable, "-m", "fennec"]
    return [sys.executable, "-c", "from archi2vec.cli import run; run()"]


def walls(cmds: list[list[str]], runs: int) -> list[tuple[float, float]]:
    """Median and best wall time of each command as a whole process (stdout and stderr piped, read to the
    end), the commands run in turn ``runs`` times."""
    times: list[list[float]] = [[] for _ in cmds]
    for _ in range(runs):
        for cmd, out in zip(cmds, times, strict=True):
            t = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            out.append(time.perf_counter() - t)
            if proc.returncode != 0:
                raise SystemExit(
                    f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}"
                )
    return [(statistics.median(t), min(t)) for t in times]


def libs(modules: str) -> list[str]:
    """A process that imports ``modules``, builds one pydantic validator (typer >= 0.2x validates every
    option through one) and exits without the interpreter's teardown, as the CLI does."""
    code = (
        f"import os, {modules}, pydantic; pydantic.TypeAdapter(int).validate_python(1); os._exit(0)"
    )
    return [sys.executable, "-c", code]


def work(code: str, runs: int) -> tuple[float, list[str]]:
    """Median seconds of ``code`` in fresh processes after its imports, and the modules it loads."""
    first = json.loads(
        subprocess.run(
            [sys.executable, "-c", TIMER, "[]", code], capture_output=True, text=True, check=True
        ).stdout
    )
    modules = first["modules"]
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", TIMER, json.dumps(modules), code],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        times.append(json.loads(out)["seconds"])
    return statistics.median(times), modules


def fit_artifact(folder: Path) -> Path:
    from fennec.data.shipped import load_history
    from fennec.query.recommender import Recommender

    art = folder / "sfda"
    Recommender().fit(load_history("sfda")).save(art)
    return art


def measure(runs: int, art: Path) -> list[dict]:
    observed = ",".join(f"{k}={v}" for k, v in OBSERVED.items())
    cases = [
        (
            "fennec query ART --observed ... --top-k 8",
            [*script("fennec"), "query", str(art), "--observed", observed, "--top-k", "8"],
            "numpy, typer.main",
            query_work(art),
        ),
        (
            f"archi2vec encode {ARCH}",
            [*script("archi2vec"), "encode", ARCH],
            "numpy, typer.main",
            ENCODE_WORK,
        ),
    ]
    rows = []
    for label, cmd, needed, code in cases:
        (floor, _), (lib, _), (process, best) = walls(
            [[sys.executable, "-c", "pass"], libs(needed), cmd], runs
        )
        seconds, modules = work(code, runs)
        rows.append(
            {
                "command": label,
                "floor": floor,
                "libs": lib,
                "process": process,
                "best": best,
                "work": seconds,
                "torch": "torch" in modules,
            }
        )
    return rows


def report(rows: list[dict], runs: int) -> str:
    cols = ["floor s", "libs s", "work s", "process s", "(best)", "process/floor", "process/libs"]
    head = f"{'command':<42} " + " ".join(
        f"{c:>{max(len(c), 7)}}" for c in [*cols, "process/work", "own s"]
    )
    lines = [f"== whole-process wall time, median of {runs} run(s) ==", head]
    for r in rows:
        values = [r["floor"], r["libs"], r["work"], r["process"], r["best"]]
        ratios = [r["process"] / r["floor"], r["process"] / r["libs"], r["process"] / r["work"]]
        cells = [f"{v:>7.3f}" for v in values] + [
            f"{v:>{w}.1f}" for v, w in zip(ratios, (13, 12, 12), strict=True)
        ]
        lines.append(
            f"{r['command']:<42} "
            + " ".join(cells)
            + f" {r['process'] - r['libs'] - r['work']:>7.3f}"
        )
    lines.append(
        "(medians; best: the fastest run; floor: python -c pass; libs: importing the libraries the verb needs, "
        "then os._exit; work: the verb's library calls in a fresh process after their imports; "
        "own: process - libs - work)"
    )
    lines.append(
        "work imports torch: "
        + ", ".join(f"{r['command'].split(' ')[0]} {'yes' if r['torch'] else 'no'}" for r in rows)
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=11, help="runs per measurement (median)")
    parser.add_argument(
        "--artifact", type=Path, default=None, help="artifact of `fennec fit sfda` to query"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fennec-bench-cli-") as tmp:
        art = args.artifact if args.artifact is not None else fit_artifact(Path(tmp))
        print(report(measure(max(1, args.runs), art), max(1, args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
