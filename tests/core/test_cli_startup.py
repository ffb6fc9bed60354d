"""Start-up of the command line (issue 14 item 2): what a run imports, and the console scripts' exit.

Not timed (benchmarks/bench_cli.py measures the latency): these tests check the properties that make it
fast -- no torch, timm, open_clip, faiss, scikit-learn or pandas on the warm-start query path, no torch for
a catalogued ``archi2vec encode`` -- and that ending the process without the interpreter's teardown loses no
output and keeps the exit codes (0 done, 1 bad input or internal error, 2 usage).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "torch",
    "torchvision",
    "timm",
    "open_clip",
    "faiss",
    "sklearn",
    "networkx",
    "scipy.sparse",
)
OBSERVED = "resnet50=84.6,deit_small=73.1,byol=82.1"

# runs a CLI's main() in a child process, then reports which modules the run imported
PROBE = """
import json, sys
from {module} import main
code = main(json.loads(sys.argv[1]))
sys.stdout.flush()
print(json.dumps({{"code": code, "modules": sorted(sys.modules)}}), file=sys.stderr)
"""


def _probe(module: str, args: list[str]) -> tuple[int, set[str], str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"]), proc.stdout


def _script(name: str) -> list[str]:
    """The console script installed beside this interpreter (the real entry point), else ``python -m``."""
    path = Path(sys.executable).with_name(name)
    if path.is_file():
        return [str(path)]
    return (
        [sys.executable, "-m", "fennec"]
        if name == "fennec"
        else [sys.executable, "-c", "from archi2vec.cli import run; run()"]
    )


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    from fennec.cli import main

    art = tmp_path_factory.mktemp("startup") / "sfda"
    assert main(["fit", "sfda", "--out", str(art), "--rank", "2", "--l2", "1"]) == 0
    return art


def test_importing_the_cli_imports_no_library():
    code = (
        "import sys, json, fennec, fennec.cli, archi2vec.cli; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numpy', 'pandas', 'scipy', 'torch', 'timm', 'faiss', 'sklearn'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(out.stdout) == []


def test_warm_start_query_imports_no_heavy_library(artifact):
    code, modules, out = _probe(
        "fennec.cli", ["query", str(artifact), "--observed", OBSERVED, "-k", "5"]
    )
    assert code == 0 and "warm_start" in out
    assert not [m for m in HEAVY if m in modules]
    # only the verb's own module is registered
    assert (
        "fennec.cli._core" in modules and not {"fennec.cli._score", "fennec.cli._btune"} & modules
    )


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_warm_start_query_imports_no_pandas(artifact, fmt):
    """The artifact, the registry and the ranking are read, ranked and printed without pandas (most of the
    import time a query had left)."""
    code, modules, out = _probe(
        "fennec.cli", ["query", str(artifact), "--observed", OBSERVED, "-k", "5", "--format", fmt]
    )
    assert code == 0 and "warm_start" in out
    assert "pandas" not in modules


def test_ranking_builds_its_dataframe_on_first_access(artifact):
    code = (
        "import json, sys; from fennec import Recommender; "
        f"r = Recommender.load({str(artifact)!r}).query(observed={{'resnet50': 84.6, 'byol': 82.1}}, top_k=3); "
        "before = 'pandas' in sys.modules; import pandas as pd; "
        "print(json.dumps([before, isinstance(r.frame, pd.DataFrame), r.frame['model_id'].tolist() == r.model_ids]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(out.stdout) == [False, True, True]


def test_catalogued_encode_imports_no_torch():
    code, modules, out = _probe("archi2vec.cli", ["encode", "resnet50"])
    assert code == 0 and out.split() == [
        "arch",
        "kind",
        "nodes",
        "edges",
        "resnet50",
        "fx",
        "209",
        "224",
    ]
    assert "torch" not in modules and "timm" not in modules and "pandas" not in modules


def test_encode_answers_catalogued_archs_as_tracing_would(tmp_path, capsys):
    """The catalogue's answer (graph sizes and vectors) is what tracing here gives, bit for bit."""
    import numpy as np

    from archi2vec import embed_timm, to_networkx, trace_model
    from archi2vec.cli import main

    out = tmp_path / "v.npz"
    assert main(["encode", "resnet18", "test_vit", "-o", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    graph = to_networkx(trace_model("resnet18"))
    assert table[1].split() == [
        "resnet18",
        "fx",
        str(graph.number_of_nodes()),
        str(graph.number_of_edges()),
    ]
    with np.load(out) as saved:
        np.testing.assert_array_equal(
            saved["vectors"], np.stack([embed_timm("resnet18"), embed_timm("test_vit")])
        )
        assert json.loads(str(saved["meta"]))["config"]["n_features"] == 256


def test_console_script_output_is_complete_and_exit_codes_kept(artifact):
    ok = _run([*_script("fennec"), "query", str(artifact), "--format", "csv", "--top-k", "100"])
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert (
        lines[0].startswith("task_id,rank,model_id")
        and len(lines) == 1 + 36
        and ok.stdout.endswith("\n")
    )
    doc = _run(
        [*_script("fennec"), "query", str(artifact), "--observed", OBSERVED, "--format", "json"]
    )
    assert doc.returncode == 0 and json.loads(doc.stdout)["placement"] == "warm_start"
    bad = _run([*_script("fennec"), "query", "/no/such/artifact"])
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        "error: /no/such/artifact: artifact directory not found"
    ]
    for usage in (["query"], ["nosuchverb"], ["query", str(artifact), "--top-k", "zero"]):
        proc = _run([*_script("fennec"), *usage])
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, usage
    version = _run([*_script("fennec"), "--version"])
    assert version.returncode == 0 and version.stdout.startswith("fennec ")


def test_archi2vec_console_script_exit_codes():
    ok = _run([*_script("archi2vec"), "encode", "resnet50", "resnet18"])
    assert ok.returncode == 0 and "cosine similarity" in ok.stdout and ok.stdout.endswith("\n")
    bad = _run([*_script("archi2vec"), "encode", "resnt50"])
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert _run([*_script("archi2vec"), "encode"]).returncode == 2
    version = _run([*_script("archi2vec"), "--version"])
    assert version.returncode == 0 and version.stdout.startswith("archi2vec ")
