"""Smoke test of benchmarks/bench_cli.py (the command line's whole-process latency): it runs and prints
its table. Not timed: the numbers are the benchmark's to report, never a test's to assert."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fennec.cli import main

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_cli.py"


def test_bench_cli_runs_and_prints_both_commands(tmp_path):
    art = tmp_path / "sfda"
    assert main(["fit", "sfda", "--out", str(art), "--rank", "2", "--l2", "1"]) == 0
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--runs", "1", "--artifact", str(art)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "== whole-process wall time, median of 1 run(s) =="
    assert lines[1].split()[:3] == ["command", "floor", "s"]
    rows = {line.split(" ")[0]: line.split()[-6:] for line in lines[2:4]}
    assert set(rows) == {"fennec", "archi2vec"}
    for values in rows.values():
        assert all(float(v) > 0 for v in values[:-1])  # seconds and ratios, whatever they are
    assert lines[-1] == "work imports torch: fennec no, archi2vec no"
