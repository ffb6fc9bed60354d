"""The archi2vec CLI: encode, nearest, error lines and exit codes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from archi2vec.cli import main


def test_help(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "encode" in out and "nearest" in out and "build-catalogue" in out


def test_encode_writes_csv_and_npz(tmp_path, capsys):
    csv = tmp_path / "v.csv"
    assert main(["encode", "test_resnet", "test_vit", "--out", str(csv), "--n-features", "16"]) == 0
    out = capsys.readouterr().out
    assert "test_resnet" in out and "cosine similarity" in out
    frame = pd.read_csv(csv)
    assert list(frame["arch"]) == ["test_resnet", "test_vit"] and frame.shape == (2, 17)
    npz = tmp_path / "v.npz"
    assert (
        main(
            ["encode", "test_resnet", "--out", str(npz), "--n-features", "16", "--iterations", "2"]
        )
        == 0
    )
    with np.load(npz, allow_pickle=False) as data:
        assert data["vectors"].shape == (1, 16) and list(data["names"]) == ["test_resnet"]
        meta = json.loads(str(data["meta"]))
    assert meta["config"]["iterations"] == 2 and "networkx" in meta["environment"]


def test_unknown_arch_is_one_error_line(capsys):
    assert main(["encode", "resnet18", "resnt50"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: Unknown timm architecture 'resnt50'; close matches: resnet50, resnet50t, resnet50s, resnet50d, resnet50c"
    ] or (
        len(err) == 1
        and err[0].startswith("error: Unknown timm architecture 'resnt50'; close matches: resnet50")
    )


def test_bad_out_suffix_and_usage_error(capsys):
    assert main(["encode", "test_resnet", "--out", "x.txt"]) == 1
    assert capsys.readouterr().err.strip() == "error: --out must end in .csv or .npz. Got 'x.txt'."
    assert main(["encode"]) == 2


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_nearest(fmt, capsys):
    assert main(["nearest", "resnet50", "--k", "3", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert "arch" in out and "cosine" in out and len(out.strip().splitlines()) == 4


def test_verbose_adds_the_traceback(capsys):
    assert main(["-v", "encode", "resnt50"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith(
        "error: Unknown timm architecture 'resnt50'"
    )
