from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from fennec.cli import main

VERBS = ["fit", "query", "evaluate", "info", "histories", "version"]


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("verb", VERBS)
def test_help_for_every_verb(verb, capsys):
    code, out, _ = run([verb, "--help"], capsys)
    assert code == 0 and "Usage" in out


def test_fit_query_info_end_to_end_on_shipped_history(tmp_path, capsys):
    art = tmp_path / "sfda"
    code, _, err = run(["fit", "sfda", "--out", str(art), "--rank", "2", "--l2", "1"], capsys)
    assert code == 0, err
    assert "fitted 36 models x 13 tasks (416 cells" in err
    code, out, _ = run(["query", str(art), "--task", "cifar10", "--top-k", "3", "--format", "csv"], capsys)
    assert code == 0
    df = pd.read_csv(pd.io.common.StringIO(out))
    assert list(df.columns) == ["task_id", "rank", "model_id", "score", "source", "measured", "std"]
    # measured cifar10 leaders, by their registry ids
    assert df["model_id"].tolist() == ["deit_base_patch16_224.fb_in1k", "pvt_v2_b3.in1k", "vit_base_patch16_224.dino"]
    code, out, _ = run(["query", str(art), "--observed", "resnet50=84.6,deit_small=73.1", "-k", "5", "-f", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["placement"] == "warm_start" and doc["resolved"]["resnet50"] == "resnet50.tv_in1k"
    assert len(doc["ranking"]) == 5 and doc["ranking"][0]["rank"] == 1
    code, out, _ = run(["info", str(art)], capsys)
    assert code == 0 and "36 models x 13 columns (13 tasks)" in out


def test_evaluate_prints_method_beside_baselines(capsys, tmp_path):
    out_csv = tmp_path / "res.csv"
    code, out, err = run(["evaluate", "logme", "--protocol", "loto,warm", "--draws", "2", "--out", str(out_csv)], capsys)
    assert code == 0, err
    for method in ("fennec", "history_prior", "imagenet_top1", "params", "random"):
        assert method in out
    res = pd.read_csv(out_csv)
    assert set(res["protocol"]) == {"loto", "warm"} and res["task_id"].nunique() == 8
    # one block per protocol: every method on the same models
    assert (res.groupby(["protocol", "task_id", "k", "draw"], dropna=False)["n_models"].nunique() == 1).all()


@pytest.mark.parametrize("args, message", [
    (["fit", "nosuch", "--out", "x"], "error: unknown shipped history 'nosuch'; available: logme, model_spider"),
    (["fit", "/no/such/file.csv", "--out", "x"], "error: history file not found: /no/such/file.csv"),
    (["query", "/no/such/artifact"], "error: /no/such/artifact: artifact directory not found"),
    (["fit", "sfda", "--out", "x", "--rank", "two"], "error: --rank must be a number or 'auto', got 'two'"),
])
def test_bad_input_one_line_exit_1(args, message, capsys):
    code, out, err = run(args, capsys)
    assert code == 1
    assert err.strip().startswith(message)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_observed_one_line(tmp_path, capsys):
    art = tmp_path / "a"
    assert run(["fit", "logme", "--out", str(art), "--rank", "1", "--l2", "1"], capsys)[0] == 0
    code, _, err = run(["query", str(art), "--observed", "resnet50:84"], capsys)
    assert code == 1 and err.strip() == "error: --observed: expected MODEL=SCORE pairs separated by commas, got 'resnet50:84'"
    code, _, err = run(["query", str(art), "--task", "cifar"], capsys)
    assert code == 1 and "did you mean cifar10, cifar100" in err


def test_verbose_shows_traceback(capsys):
    code, _, err = run(["-v", "query", "/no/such/artifact"], capsys)
    assert code == 1 and "Traceback" in err


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "fennec", "histories", "--format", "csv"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(pd.io.common.StringIO(proc.stdout))
    assert set(df["history"]) == {"sfda", "logme", "parc", "model_spider", "shift_vtab", "transfergraph"}
    assert df.set_index("history").loc["sfda", "default"] == "yes"


def test_query_candidates_by_any_name(tmp_path, capsys):
    art = tmp_path / "a"
    assert run(["fit", "sfda", "--out", str(art), "--rank", "2", "--l2", "1"], capsys)[0] == 0
    code, out, err = run(["query", str(art), "--task", "pets", "--candidates", "resnet50,convnext_tiny,notanet",
                          "-f", "csv"], capsys)
    assert code == 0, err
    df = pd.read_csv(pd.io.common.StringIO(out), dtype={"note": str}, keep_default_na=False)
    assert dict(zip(df["input"], df["source"], strict=True)) == {"resnet50": "measured", "convnext_tiny": "cold",
                                                                 "notanet": "unresolved"}
    assert "not in the model registry" in df.set_index("input").loc["notanet", "note"]
    code, _, err = run(["query", str(art), "--candidates", "notanet", "--strict"], capsys)
    assert code == 1 and err.strip().startswith("error: unknown candidate 'notanet': not in the model registry")
    code, _, err = run(["query", str(art), "--observed", "resnet50=1,resnet50=2"], capsys)
    assert code == 1 and err.strip() == "error: --observed: 'resnet50' is given twice (1 and 2); give it once"


def test_fallback_needs_images_and_candidates(tmp_path, capsys):
    art = tmp_path / "a"
    assert run(["fit", "logme", "--out", str(art), "--rank", "1", "--l2", "1"], capsys)[0] == 0
    code, _, err = run(["query", str(art), "--task", "dtd", "--fallback", "logme"], capsys)
    assert code == 1
    assert err.strip() == ("error: fallback='logme' scores candidates with weights on labelled images: give both "
                           "candidates and images")


def test_internal_error_is_one_line_naming_its_type(monkeypatch, capsys):
    """A bug deep in the library (here a KeyError) ends the run with one line and exit 1; -v shows where."""
    from fennec.query.recommender import Recommender

    def broken(*args, **kwargs):
        raise KeyError("model_id")

    monkeypatch.setattr(Recommender, "load", broken)
    code, out, err = run(["query", "anywhere"], capsys)
    assert code == 1 and out == ""
    assert err.strip().splitlines() == ["error: KeyError: 'model_id' (run with -v for the traceback)"]
    code, _, err = run(["query", "anywhere", "-v"], capsys)  # -v after the verb counts
    assert code == 1 and "Traceback" in err and err.strip().splitlines()[-1] == "error: KeyError: 'model_id'"


def test_verbose_after_the_verb_and_values_that_look_like_it(capsys):
    code, _, err = run(["query", "/no/such/artifact", "-vv"], capsys)
    assert code == 1 and "Traceback" in err
    code, _, err = run(["query", "/no/such/artifact", "--task", "-v"], capsys)  # a value, not the flag
    assert code == 1 and "Traceback" not in err and err.startswith("error: /no/such/artifact")
    code, _, err = run(["query", "/no/such/artifact", "--", "-v"], capsys)  # after --: an argument
    assert code == 2 and "Traceback" not in err


def test_version_option_and_formats(capsys):
    from importlib import metadata

    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"fennec {metadata.version('fennec')}"
    code, out, _ = run(["version", "--format", "csv"], capsys)
    rows = pd.read_csv(pd.io.common.StringIO(out))
    assert code == 0 and list(rows.columns) == ["library", "version"] and "numpy" in set(rows["library"])


def test_info_formats(tmp_path, capsys):
    art = tmp_path / "a"
    assert run(["fit", "logme", "--out", str(art), "--rank", "1", "--l2", "1"], capsys)[0] == 0
    code, out, _ = run(["info", str(art), "--format", "csv"], capsys)
    fields = pd.read_csv(pd.io.common.StringIO(out), dtype=str).set_index("field")["value"]
    assert code == 0 and fields["format"] == "fennec-artifact" and fields["fit.n_components"] == "1"
    code, out, _ = run(["info", str(art), "--format", "json", "--models"], capsys)
    doc = json.loads(out)
    assert code == 0 and len(doc["models"]) == doc["inputs"]["n_models"] and "dtd" in doc["columns"]


def test_help_is_not_cut_at_80_columns(monkeypatch, capsys):
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("TERMINAL_WIDTH", raising=False)
    code, out, _ = run(["query", "--help"], capsys)
    widths = [len(line) for line in out.splitlines()]
    assert code == 0 and 80 < max(widths) <= 120
