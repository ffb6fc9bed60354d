"""Helpers shared by the data-safety tests (issue 12), imported as a plain module: a small synthetic
history and two CLI runners (in process, and as a child process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from fennec.cli import main


def write_history(path: Path, *, seed: int = 0, n_models: int = 12, n_tasks: int = 6) -> Path:
    """A complete synthetic history of models unknown to the shipped tables (no cold-start placer: fast)."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=n_models)
    rows = [(f"net{i:02d}", f"task{j}", float(np.clip(70 + 5 * quality[i] + rng.normal(), 1, 99)))
            for i in range(n_models) for j in range(n_tasks)]
    pd.DataFrame(rows, columns=["model_id", "task_id", "score"]).to_csv(path, index=False)
    return path


def run_cli(args, capsys) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def fennec_process(args, **kwargs) -> subprocess.Popen:
    """``python -m fennec ARGS`` as a child process (stdout/stderr piped, text)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "fennec", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kwargs)
