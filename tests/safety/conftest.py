"""Fixtures of the data-safety tests (issue 12): a small synthetic history and a warm forking CLI runner
(the helpers the test modules import are in safety_helpers.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from safety_helpers import write_history

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def history_csv(tmp_path) -> Path:
    return write_history(tmp_path / "hist.csv")


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
