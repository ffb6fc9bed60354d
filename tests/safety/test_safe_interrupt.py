"""Ctrl-C (SIGINT) during a verb: exit 130 with 'interrupted', no traceback, nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from safety_helpers import fennec_process

from fennec.cli import main

NAP = """
import sys, time
from fennec.cli import app, main

@app.command("nap")
def nap():
    print("ready", flush=True)
    time.sleep(60)

sys.exit(main(sys.argv[1:]))
"""


def _interrupt_after_first_line(proc: subprocess.Popen, stream: str) -> tuple[int, str, str]:
    first = getattr(proc, stream).readline()
    assert first, proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, (first + out) if stream == "stdout" else out, (first + err) if stream == "stderr" else err


def test_sigint_during_a_verb_exits_130_with_one_line():
    proc = subprocess.Popen([sys.executable, "-c", NAP, "nap"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    code, _, err = _interrupt_after_first_line(proc, "stdout")
    assert code == 130
    assert err == "interrupted\n"


def test_sigint_is_honoured_even_when_the_parent_ignored_it():
    """A background job of a script inherits SIGINT ignored; the CLI still stops on it."""
    def ignore_sigint():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen([sys.executable, "-c", NAP, "nap"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=ignore_sigint)
    code, _, err = _interrupt_after_first_line(proc, "stdout")
    assert (code, err) == (130, "interrupted\n")


def test_sigint_during_a_real_evaluate_run(tmp_path):
    proc = fennec_process(["-v", "evaluate", "sfda", "--out", tmp_path / "results.csv"])
    code, _, err = _interrupt_after_first_line(proc, "stderr")
    assert code == 130
    assert err.rstrip().endswith("interrupted") and "Traceback" not in err
    assert os.listdir(tmp_path) == []  # nothing half-written


def test_in_process_main_restores_the_callers_sigint_handler(capsys):
    before = signal.getsignal(signal.SIGINT)
    assert main(["version"]) == 0
    assert signal.getsignal(signal.SIGINT) is before
