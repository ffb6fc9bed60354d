"""Fault injection: SIGKILL ``fennec fit`` and ``fennec history add`` at seeded random moments, over and over;
the artifact or history at the path is always the old or the new complete one."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
from safety_helpers import write_history

import fennec.subspace.progress as progress
from fennec.artifacts import read_manifest
from fennec.history import History
from fennec.query.recommender import Recommender
from fennec.subspace.factorization import TransferSubspace

KILLS = 20


def _timed(zygote, args) -> float:
    start = time.monotonic()
    assert zygote.run(args) == 0
    return time.monotonic() - start


def _kill_loop(zygote, runs, check, seed):
    """SIGKILL ``runs(i)`` at seeded random moments until KILLS runs were killed; ``check`` after each."""
    full = _timed(zygote, runs(0))
    rng = np.random.default_rng(seed)
    kills = attempts = 0
    while kills < KILLS and attempts < 4 * KILLS:
        attempts += 1
        code = zygote.run(runs(attempts), kill_after=rng.uniform(0.0, 1.1) * full)
        assert code in (None, 0)
        kills += code is None
        check(attempts)
    assert kills >= KILLS, f"only {kills} of {attempts} runs were killed"


def test_killing_fit_leaves_the_old_or_the_new_artifact(tmp_path, zygote):
    histories = [write_history(tmp_path / f"h{i}.csv", seed=i, n_models=40, n_tasks=12) for i in range(2)]
    digests = {History.from_csv(h).sha256 for h in histories}
    out = tmp_path / "art"

    def runs(i):
        return ["fit", histories[i % 2], "--out", out, "--rank", "2", "--l2", "1"]

    def check(_):
        manifest = read_manifest(out)  # every checksum, no unlisted file
        assert manifest["inputs"]["history_sha256"] in digests
        assert Recommender.load(out).model_ids

    _kill_loop(zygote, runs, check, seed=20240612)
    assert zygote.run(runs(0)) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "h0.csv", "h1.csv"]  # leftovers cleaned


def test_killing_history_add_leaves_the_old_or_the_new_table(tmp_path, zygote):
    path = tmp_path / "h.csv"
    pd.DataFrame({"model_id": [f"base{i}" for i in range(20000)], "task_id": "t", "score": 50.0}).to_csv(
        path, index=False)
    state = {}

    def runs(i):
        state["before"], state["model"] = (path.read_bytes() if path.exists() else b""), f"new{i}"
        return ["history", "add", path, "--model", f"new{i}", "--task", "t", "--score", "61"]

    def check(_):
        after, before = path.read_bytes(), state["before"]
        if after != before:
            assert after.startswith(before) and after[len(before):] == f"{state['model']},t,61.0,top1,btune,\n".encode()

    _kill_loop(zygote, runs, check, seed=20240613)
    assert zygote.run(["history", "add", path, "--model", "last", "--task", "t", "--score", "62"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.csv"]
    assert pd.read_csv(path)["model_id"].iloc[-1] == "last"


def test_a_long_rank_search_says_how_long_it_will_take(monkeypatch, caplog):
    clock = iter(range(0, 10**6, 20))  # every fit "takes" 20 s

    class FakeTime:
        @staticmethod
        def monotonic():
            return float(next(clock))

    monkeypatch.setattr(progress, "time", FakeTime)
    Z = np.random.default_rng(0).normal(size=(12, 6))
    with caplog.at_level(logging.WARNING, logger="fennec.subspace.factorization"):
        TransferSubspace(candidate_ranks=(1, 2), candidate_l2=(1.0, 3.0), n_folds=3).fit(Z)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == ("choosing rank and L2 by held-out cells on 12 x 6: 12 fits, about 4 min left; pass --rank "
                        "and --l2 (n_components=, l2=) to skip the search")
    assert lines[1:] and all(m.startswith("rank/L2 search: ") and m.endswith(" left") for m in lines[1:])
