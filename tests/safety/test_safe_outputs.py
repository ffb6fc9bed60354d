"""Output directories (issue 12, cases 1-3 and 6): Fennec replaces only what it wrote, never its own input,
never the current directory; the swap always leaves one complete copy; a second writer gets a clear error."""

from __future__ import annotations

import json
import logging
import os
import shutil

import pytest
from safety_helpers import fennec_process, run_cli, write_history

import fennec.outputs
from fennec.artifacts import read_ids, read_manifest
from fennec.errors import ArtifactError
from fennec.outputs import atomic_directory, check_output, path_lock
from fennec.query.recommender import Recommender


def fit(history, out, *extra):
    return ["fit", history, "--out", out, "--rank", "1", "--l2", "1", *extra]


def test_fit_refuses_a_directory_fennec_did_not_write(tmp_path, history_csv, capsys):
    user = tmp_path / "userdir"
    user.mkdir()
    (user / "thesis.tex").write_text("x")
    code, _, err = run_cli(fit(history_csv, user), capsys)
    assert code == 1
    assert err.strip() == (f"error: {user}: exists and is not a Fennec artifact (no readable manifest.json; 1 file(s) "
                           "in it); refusing to replace it: choose another --out, empty it, or pass --force")
    assert (user / "thesis.tex").read_text() == "x"
    code, _, err = run_cli(fit(history_csv, user, "--force"), capsys)
    assert code == 0, err
    assert not (user / "thesis.tex").exists() and Recommender.load(user).model_ids


def test_fit_replaces_an_empty_directory_and_its_own_artifact(tmp_path, history_csv, capsys):
    out = tmp_path / "art"
    out.mkdir()
    assert run_cli(fit(history_csv, out), capsys)[0] == 0
    first = read_manifest(out)["created_utc"]
    other = write_history(tmp_path / "other.csv", seed=5)
    code, _, err = run_cli(fit(other, out), capsys)
    assert code == 0, err
    assert read_manifest(out)["inputs"]["history"] == str(other) and first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "hist.csv", "other.csv"]  # no leftovers


def test_an_artifact_holding_a_users_file_is_not_replaced(tmp_path, history_csv, capsys):
    out = tmp_path / "art"
    assert run_cli(fit(history_csv, out), capsys)[0] == 0
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(fit(history_csv, out), capsys)
    assert code == 1 and "holds file(s) Fennec did not write (notes.txt)" in err
    assert (out / "notes.txt").read_text() == "mine"


def test_fit_does_not_replace_a_benchmark_release(tmp_path, history_csv, capsys):
    out = tmp_path / "release"
    out.mkdir()
    (out / "tasks.csv").write_text("task_id\n")
    (out / "manifest.json").write_text(json.dumps({"format": "fennec-benchmark", "files": {"tasks.csv": "0"}}))
    code, _, err = run_cli(fit(history_csv, out), capsys)
    assert code == 1 and "is not a Fennec artifact (its manifest says format 'fennec-benchmark'" in err


def test_fit_refuses_an_output_that_contains_its_input(tmp_path, capsys):
    proj = tmp_path / "proj"
    proj.mkdir()
    history = write_history(proj / "my_history.csv")
    for extra in ([], ["--force"]):
        code, _, err = run_cli(fit(history, proj, *extra), capsys)
        assert code == 1
        assert err.strip() == (f"error: --out {proj} contains the input {history}; writing there would delete it: "
                               "choose another output folder")
    assert history.is_file()
    code, _, err = run_cli(fit(history, tmp_path, "--force"), capsys)  # a parent of the input too
    assert code == 1 and "contains the input" in err


@pytest.mark.parametrize("out", ["", "."])
def test_out_empty_or_dot_is_refused(tmp_path, history_csv, monkeypatch, capsys, out):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(fit(history_csv, out, "--force"), capsys)
    assert code == 1
    assert err.strip() == "error: --out '.': refusing to replace the current directory; name a new folder (e.g. runs/sfda)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hist.csv"]


def test_parents_of_the_current_directory_are_refused(tmp_path, history_csv, monkeypatch, capsys):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code, _, err = run_cli(fit(history_csv, tmp_path / "a", "--force"), capsys)
    assert code == 1 and "refusing to replace the current directory" in err
    assert work.is_dir()


def test_export_benchmark_refuses_a_foreign_directory_before_any_work(tmp_path, capsys):
    user = tmp_path / "userdir"
    user.mkdir()
    (user / "thesis.tex").write_text("x")
    code, _, err = run_cli(["export-benchmark", "--out", user, "--histories", "logme"], capsys)
    assert code == 1
    assert err.strip() == (f"error: {user}: exists and is not a Fennec benchmark release (no readable manifest.json; "
                           "1 file(s) in it); refusing to replace it: choose another --out, empty it, or pass --force")
    assert (user / "thesis.tex").read_text() == "x"
    code, _, err = run_cli(["export-benchmark", "--out", "data", "--histories", "logme"], capsys)
    assert code == 1 and "refusing to replace the shipped data" in err


def test_check_output_accepts_a_release_with_its_results_file(tmp_path):
    rel = tmp_path / "rel"
    (rel / "histories").mkdir(parents=True)
    (rel / "histories" / "a.csv").write_text("x")
    (rel / "RESULTS.md").write_text("written by fennec evaluate --markdown")
    (rel / "manifest.json").write_text(json.dumps({"format": "fennec-benchmark", "files": {"histories/a.csv": "0"}}))
    assert check_output(rel, format="fennec-benchmark") == rel
    (rel / "histories" / "mine.csv").write_text("x")
    with pytest.raises(ArtifactError, match=r"holds file\(s\) Fennec did not write \(histories/mine.csv\)"):
        check_output(rel, format="fennec-benchmark")


def test_a_symlinked_output_is_followed(tmp_path, history_csv, capsys):
    real = tmp_path / "v1"
    link = tmp_path / "latest"
    link.symlink_to(real, target_is_directory=True)
    assert run_cli(fit(history_csv, link), capsys)[0] == 0
    assert run_cli(fit(history_csv, link), capsys)[0] == 0
    assert link.is_symlink() and (real / "manifest.json").is_file()
    assert Recommender.load(link).model_ids == Recommender.load(real).model_ids


def test_a_crash_between_the_two_renames_is_repaired_by_the_next_load(tmp_path, history_csv, capsys,
                                                                       monkeypatch, caplog):
    """Where the atomic exchange is unavailable, the swap is two renames; kill between them, then load."""
    out = tmp_path / "art"
    assert run_cli(fit(history_csv, out), capsys)[0] == 0
    before = read_manifest(out)["files"]
    monkeypatch.setattr(fennec.outputs, "_exchange", lambda a, b: False)
    real_rename, calls = os.rename, []

    def rename(src, dst):
        calls.append(src)
        if len(calls) == 2:  # target -> .old done; the new copy is not in place yet
            raise KeyboardInterrupt
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        Recommender.load(out).save(out)
    monkeypatch.setattr(os, "rename", real_rename)
    assert not out.exists() and any(p.name.startswith(".art.old-") for p in tmp_path.iterdir())
    with caplog.at_level(logging.WARNING, logger="fennec"):
        rec = Recommender.load(out)
    assert rec.model_ids and read_manifest(out)["files"] == before
    assert "restored the previous copy left by an interrupted write" in caplog.text


def test_stale_leftovers_of_killed_writes_are_removed(tmp_path, history_csv, capsys):
    out = tmp_path / "art"
    assert run_cli(fit(history_csv, out), capsys)[0] == 0
    for name in (".art.tmp-k1ll3d", ".art.old-12345"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "subspace.safetensors").write_bytes(b"half")
    (tmp_path / ".art.lock").write_text("999999\n")  # a killed writer's lock file (no lock held)
    assert run_cli(fit(history_csv, out), capsys)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "hist.csv"]


def test_a_second_writer_gets_a_clear_message(tmp_path, history_csv, capsys):
    out = tmp_path / "art"
    assert run_cli(fit(history_csv, out), capsys)[0] == 0
    before = read_manifest(out)["created_utc"]
    with path_lock(out, timeout=0):
        code, _, err = run_cli(fit(history_csv, out), capsys)
    assert code == 1
    assert err.strip() == (f"error: {out}: process {os.getpid()} is writing this directory right now; try again "
                           "when it has finished, or write to another path")
    assert read_manifest(out)["created_utc"] == before


def test_two_concurrent_fits_leave_one_complete_artifact(tmp_path, history_csv):
    out = tmp_path / "art"
    procs = [fennec_process(fit(history_csv, out)) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for code, err in results:
        assert "Traceback" not in err
        assert code == 0 or (code == 1 and "is writing this directory right now" in err), err
    assert any(code == 0 for code, _ in results)
    assert Recommender.load(out).model_ids
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "hist.csv"]


def test_every_file_the_loader_reads_must_be_listed(tmp_path, history_csv, capsys):
    out = tmp_path / "art"
    assert run_cli(fit(history_csv, out), capsys)[0] == 0  # fixed rank: no cv_results.csv
    shutil.copy(history_csv, out / "cv_results.csv")  # the loader would read it, unverified
    with pytest.raises(ArtifactError, match=r"cv_results.csv: not listed in the manifest, so it cannot be verified"):
        Recommender.load(out)


def test_a_manifest_cannot_point_outside_its_directory(tmp_path):
    d = tmp_path / "art"
    d.mkdir()
    (tmp_path / "secret").write_text("x")
    (d / "manifest.json").write_text(json.dumps({"format": "fennec-artifact", "format_version": 1,
                                                 "files": {"../secret": "0"}}))
    with pytest.raises(ArtifactError, match=r"corrupt manifest \(file name '../secret' leaves the artifact\)"):
        read_manifest(d)


def test_library_writes_are_safe_too(tmp_path):
    user = tmp_path / "userdir"
    user.mkdir()
    (user / "data.bin").write_bytes(b"1")
    with pytest.raises(ArtifactError, match=r"refusing to replace it \(pass force=True / --force to override\)"):
        with atomic_directory(user):
            pass
    assert (user / "data.bin").read_bytes() == b"1"


def test_id_tables_name_their_file(tmp_path):
    path = tmp_path / "model_ids.csv"
    path.write_text("model_id\nbyol\nresnet50\nbyol\n")
    with pytest.raises(ArtifactError, match=rf"^{path}: column 'model_id' must hold unique ids; repeated: \['byol'\]$"):
        read_ids(path, "model_id")
    path.write_text("model_id\nbyol\n\"\"\n")
    with pytest.raises(ArtifactError, match=r"model_ids.csv: column 'model_id' is empty on line\(s\) \[3\]$"):
        read_ids(path, "model_id")
    path.write_text("model_id\nbyol\nresnet50\n")
    assert read_ids(path, "model_id") == ["byol", "resnet50"]
