"""Shared helpers of the data-safety tests (issue 12): a small synthetic history and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fennec.cli import main

REPO = Path(__file__).resolve().parents[2]


def write_history(path: Path, *, seed: int = 0, n_models: int = 12, n_tasks: int = 6) -> Path:
    """A complete synthetic history of models unknown to the shipped tables (no cold-start placer: fast)."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=n_models)
    rows = [(f"net{i:02d}", f"task{j}", float(np.clip(70 + 5 * quality[i] + rng.normal(), 1, 99)))
            for i in range(n_models) for j in range(n_tasks)]
    pd.DataFrame(rows, columns=["model_id", "task_id", "score"]).to_csv(path, index=False)
    return path


@pytest.fixture
def history_csv(tmp_path) -> Path:
    return write_history(tmp_path / "hist.csv")


def run_cli(args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def fennec_process(args, **kwargs) -> subprocess.Popen:
    """``python -m fennec ARGS`` as a child process (stdout/stderr piped, text)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "fennec", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kwargs)


ZYGOTE = r"""
import json, os, sys
import fennec.cli
import fennec.query.recommender  # noqa: F401 - warm imports, so forked runs start at once
from fennec.cli import main
fennec.cli._register()
print("ready", flush=True)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:  # a fresh process running `fennec ARGS`, killed from outside at some moment
        os.close(1)
        os.open(os.devnull, os.O_WRONLY)
        os._exit(main(json.loads(line)))
    print(pid, flush=True)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


class Zygote:
    """A warm Python process that forks one child per ``fennec ARGS`` run (each child is a separate
    process running the CLI's ``main``), so that tests can SIGKILL runs at chosen moments cheaply."""

    def __init__(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env)
        assert self.proc.stdout.readline().strip() == "ready"

    def run(self, args, *, kill_after: float | None = None) -> int | None:
        """Exit code of ``fennec ARGS``, or None if it was still running after ``kill_after`` s and was killed."""
        import json
        import select
        import signal

        self.proc.stdin.write(json.dumps([str(a) for a in args]) + "\n")
        self.proc.stdin.flush()
        pid = int(self.proc.stdout.readline())
        ready, _, _ = select.select([self.proc.stdout], [], [], 600 if kill_after is None else kill_after)
        if ready:
            return int(self.proc.stdout.readline())
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended (and was reaped) between the timeout and the kill: a finished run
            return int(self.proc.stdout.readline())
        code = int(self.proc.stdout.readline())
        return None if code == -signal.SIGKILL else code

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def zygote():
    z = Zygote()
    yield z
    z.close()
