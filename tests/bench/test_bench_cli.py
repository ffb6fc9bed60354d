"""CLI end to end: export-benchmark, evaluate --benchmark, plot; errors are one line, exit 1."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from fennec.cli import main


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, err, *needles):
    assert code == 1
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0]


@pytest.mark.parametrize("args", [["export-benchmark", "--help"], ["plot", "--help"], ["plot", "ranking", "--help"],
                                  ["plot", "evaluation", "--help"], ["plot", "subspace", "--help"]])
def test_help(args, capsys):
    code, out, _ = run(args, capsys)
    assert code == 0 and "Usage" in out


def test_export_evaluate_plot_end_to_end(tmp_path, capsys):
    rel = tmp_path / "rel"
    code, _, err = run(["export-benchmark", "--out", str(rel), "--histories", "logme", "--draws", "2"], capsys)
    assert code == 0, err
    assert "1 histories (logme)" in err and (rel / "manifest.json").is_file()
    res, md = tmp_path / "res.csv", tmp_path / "RESULTS.md"
    code, out, err = run(["evaluate", "--benchmark", str(rel), "--protocol", "loto,warm", "--draws", "1",
                          "--out", str(res), "--markdown", str(md), "--format", "csv"], capsys)
    assert code == 0, err
    summary = pd.read_csv(pd.io.common.StringIO(out))
    assert set(summary["history"]) == {"logme"} and {"loto", "warm"} == set(summary["protocol"])
    assert {"fennec", "history_prior", "imagenet_top1", "params", "random"} <= set(summary["method"])
    assert "## logme" in md.read_text() and "stored splits" in md.read_text()
    png = tmp_path / "eval.png"
    code, _, err = run(["plot", "evaluation", str(res), "--out", str(png), "--protocol", "warm"], capsys)
    assert code == 0, err
    assert png.read_bytes()[:4] == b"\x89PNG"

    # one changed byte of the release: evaluation refuses it, naming the file and the checksum
    bad = tmp_path / "bad"
    shutil.copytree(rel, bad)
    with open(bad / "splits.json", "r+b") as fh:
        fh.seek(10)
        b = fh.read(1)
        fh.seek(10)
        fh.write(bytes([b[0] ^ 1]))
    code, _, err = run(["evaluate", "--benchmark", str(bad)], capsys)
    _one_line_error(code, err, "splits.json", "checksum")
    code, _, err = run(["evaluate", "sfda", "--benchmark", str(rel)], capsys)
    _one_line_error(code, err, "--histories")
    code, _, err = run(["evaluate", "--benchmark", str(rel), "--histories", "parc"], capsys)
    _one_line_error(code, err, "parc", "logme")


def test_plot_ranking_and_subspace(tmp_path, capsys):
    art = tmp_path / "art"
    assert run(["fit", "logme", "--out", str(art), "--rank", "2", "--l2", "1", "--backend", "numpy"], capsys)[0] == 0
    code, out, _ = run(["query", str(art), "--observed", "resnet50=84.6,densenet121=83.1", "-k", "8", "-f", "csv"],
                       capsys)
    assert code == 0
    ranking = tmp_path / "ranking.csv"
    ranking.write_text(out)
    for args in (["plot", "ranking", str(ranking), "--out", str(tmp_path / "r.png")],
                 ["plot", "subspace", str(art), "--out", str(tmp_path / "s.png")]):
        code, _, err = run(args, capsys)
        assert code == 0, err
    assert (tmp_path / "r.png").stat().st_size > 5000 and (tmp_path / "s.png").stat().st_size > 5000
    code, _, err = run(["plot", "ranking", str(ranking), "--out", str(tmp_path / "r.jpg")], capsys)
    _one_line_error(code, err, "PNG")
    code, _, err = run(["plot", "ranking", str(tmp_path / "none.csv"), "--out", str(tmp_path / "r.png")], capsys)
    _one_line_error(code, err, "none.csv")
    code, _, err = run(["plot", "evaluation", str(ranking), "--out", str(tmp_path / "e.png")], capsys)
    _one_line_error(code, err, "not an evaluation results CSV")


def test_export_unknown_history_is_one_line(tmp_path, capsys):
    code, _, err = run(["export-benchmark", "--out", str(tmp_path / "x"), "--histories", "sfdaa"], capsys)
    _one_line_error(code, err, "sfdaa", "did you mean sfda")
    assert not (tmp_path / "x").exists()
