"""Teachers: weights = softmax(LogME / T), distillation targets, rankings, label-space and id errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.special

from fennec.backbone.features import extract_features
from fennec.errors import SchemaError, UnknownIdError
from fennec.train import Teacher, btune, teacher_weights, teachers_from_ranking
from fennec.train.data import stratified_split
from fennec.train.teachers import fit_teachers
from fennec.transferability.logme import LogME, logme

TEACHERS = ["test_resnet", "test_convnext", "test_efficientnet"]  # tiny timm models, random weights


@pytest.mark.parametrize("temperature", [0.01, 0.1, 1.0, 10.0])
def test_teacher_weights_equal_scipy_softmax(temperature):
    scores = np.array([0.31, -0.2, 0.29, 1.5])
    np.testing.assert_allclose(teacher_weights(scores, temperature), scipy.special.softmax(scores / temperature),
                               rtol=1e-12)
    # shift invariance and stability with large gaps (no overflow)
    np.testing.assert_allclose(teacher_weights(scores + 1e4, temperature), teacher_weights(scores, temperature))
    assert teacher_weights(np.array([0.0, 500.0]), 0.01).tolist() == [0.0, 1.0]


def test_btune_teacher_weights_are_softmax_of_independent_logme(task, small_config):
    cfg = small_config.replace(epochs=1, temperature=0.05)
    res = btune("test_efficientnet", TEACHERS, task, config=cfg, progress=False)
    # independent computation: the same seeded split, each teacher's own features, LogME, scipy softmax
    train_idx, _ = stratified_split(task.labels, cfg.val_fraction, seed=cfg.seed)
    scores = [logme(extract_features(name, task.images[train_idx], progress=False,
                                     data_config={"input_size": 32}).features, task.labels[train_idx])
              for name in TEACHERS]
    got = [t["weight"] for t in res.teachers]
    assert [t["model_id"] for t in res.teachers] == TEACHERS
    np.testing.assert_allclose([t["logme"] for t in res.teachers], scores, rtol=1e-10)
    np.testing.assert_allclose(got, scipy.special.softmax(np.array(scores) / 0.05), rtol=1e-10)
    assert abs(sum(got) - 1) < 1e-12


def test_distillation_targets_are_the_weighted_posterior_predictions():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    feats = [rng.normal(size=(30, 5)) + y[:, None], rng.normal(size=(30, 8))]
    fitted = fit_teachers([("a", feats[0], "ka"), ("b", feats[1], "kb")], y, ["x", "y", "z"], temperature=0.1)
    means = [LogME().fit(f, y).weights_ for f in feats]
    pi = scipy.special.softmax(np.array([LogME().fit(f, y).score_ for f in feats]) / 0.1)
    expected = pi[0] * feats[0] @ means[0].T + pi[1] * feats[1] @ means[1].T
    np.testing.assert_allclose(fitted.targets, expected.astype(np.float32), rtol=1e-5, atol=1e-6)
    assert fitted.targets.shape == (30, 3) and fitted.weights[0] > fitted.weights[1]


def test_ranking_gives_top_k_by_rank(tmp_path):
    path = tmp_path / "ranking.csv"
    pd.DataFrame({"task_id": "t", "rank": [2, 1, 3, 4], "model_id": ["b", "efficientnet_lite1", "c", "d"],
                  "score": [0.5, 0.9, 0.2, 0.1]}).to_csv(path, index=False)
    got = teachers_from_ranking(path, 3)
    assert [t.model for t in got] == ["efficientnet-lite1", "b", "c"]  # alias of the packaged model
    assert [t.rank for t in got] == [1, 2, 3] and got[0].ranking_score == 0.9


@pytest.mark.parametrize(("frame", "top_k", "message"), [
    (pd.DataFrame({"model_id": ["a", "b"], "rank": [1, 2]}), 3,
     "the ranking has 2 rows but top_k=3; lower top_k or rank more models"),
    (pd.DataFrame({"model": ["a"]}), 1, "a ranking needs a 'model_id' column; found ['model']"),
    (pd.DataFrame({"model_id": ["a", "b"], "task_id": ["t1", "t2"]}), 1, "the ranking holds 2 tasks (['t1', 't2'])"),
    (pd.DataFrame({"model_id": ["a", "a"]}), 1, "model(s) ['a'] appear more than once"),
])
def test_bad_rankings(frame, top_k, message):
    with pytest.raises(SchemaError) as err:
        teachers_from_ranking(frame, top_k)
    assert message in str(err.value)


def test_ranking_with_fewer_rows_than_top_k_in_btune(task, small_config, tmp_path):
    path = tmp_path / "r.csv"
    pd.DataFrame({"model_id": TEACHERS[:2], "rank": [1, 2]}).to_csv(path, index=False)
    with pytest.raises(SchemaError, match=r"r\.csv: the ranking has 2 rows but top_k=3"):
        btune("test_efficientnet", path, task, config=small_config, progress=False)


def test_teacher_for_another_label_space_is_refused(task, small_config):
    n = len(task)
    feats = np.random.default_rng(0).normal(size=(n, 6))
    wrong_count = Teacher("precomputed", features=feats, posterior_mean=np.zeros((5, 6)),
                          classes=[str(i) for i in range(5)])
    with pytest.raises(SchemaError, match=r"teacher 'precomputed' maps to 5 classes but the task has 10; "
                                          r"its posterior mean must be computed on the task's own labels"):
        btune("test_efficientnet", [wrong_count], task, config=small_config, progress=False)
    other_names = [f"animal{i}" for i in range(10)]
    wrong_names = Teacher("precomputed", features=feats, posterior_mean=np.zeros((10, 6)), classes=other_names)
    with pytest.raises(SchemaError, match=r"teacher 'precomputed' has a different label space: its classes "
                                          r"\['animal0', .* differ from the task's \['0', '1'"):
        btune("test_efficientnet", [wrong_names], task, config=small_config, progress=False)
    wrong_rows = Teacher("precomputed", features=feats[:5])
    with pytest.raises(SchemaError, match=r"teacher 'precomputed' \(#1\): pre-computed features have shape "
                                          r"\(5, 6\); expected \(40, D\), one row per training image"):
        btune("test_efficientnet", [wrong_rows], task, config=small_config, progress=False)


def test_validation_labels_outside_the_training_label_space(task, small_config):
    val = (task.images[:4], np.array([0, 1, 2, 42]))
    with pytest.raises(SchemaError, match=r"val_data: label\(s\) \['42'\] are not in the training label space "
                                          r"\(10 classes"):
        btune("test_efficientnet", TEACHERS, task, val_data=val, config=small_config, progress=False)


def test_unknown_models_are_named(task, small_config):
    with pytest.raises(UnknownIdError, match=r"teacher 'no_such_model_xyz' \(rank 2\): unknown timm model "
                                             r"'no_such_model_xyz'"):
        btune("test_efficientnet", ["test_resnet", "no_such_model_xyz"], task, config=small_config, progress=False)
    with pytest.raises(UnknownIdError, match=r"target: unknown timm model 'resnet_nope'"):
        btune("resnet_nope", TEACHERS, task, config=small_config, progress=False)


def test_btune_config_checks(task):
    with pytest.raises(SchemaError, match="config must be a BTuningConfig; got dict"):
        btune("test_efficientnet", TEACHERS, task, config={"epochs": 1}, progress=False)  # type: ignore[arg-type]


def test_teacher_with_local_weights_file(task, small_config, tmp_path):
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(5)
    src = timm.create_model("test_resnet", pretrained=False)
    path = tmp_path / "resnet_weights.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    res = btune("test_efficientnet", [f"test_resnet@{path}", "test_convnext"], task,
                config=small_config.replace(epochs=1), progress=False)
    assert [t["model_id"] for t in res.teachers] == ["test_resnet@resnet_weights.safetensors", "test_convnext"]
    # the file's weights are used (not the seeded random ones): features differ from the plain spec's
    plain = btune("test_efficientnet", ["test_resnet", "test_convnext"], task,
                  config=small_config.replace(epochs=1), progress=False)
    assert res.teachers[0]["logme"] != plain.teachers[0]["logme"]
