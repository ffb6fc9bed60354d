"""Properties every metric shares: invariances, "higher is better" on clear cases, input errors."""

from __future__ import annotations

import numpy as np
import pytest

from fennec.errors import SchemaError, UnknownIdError
from fennec.transferability import METRICS, check_features_labels, get_metric

ALL = sorted(METRICS)


@pytest.fixture(scope="module")
def small(make_task):
    return make_task(60, 10, 3, signal=0.8, seed=0)


@pytest.mark.parametrize("name", ALL)
def test_invariant_to_relabelling_and_permuting_samples(name, small):
    f, y = small
    metric = METRICS[name]
    base = metric(f, y)
    rng = np.random.default_rng(1)
    relabelled = np.array([2, 0, 1])[y] * 7 + 5  # new ids with gaps and another order
    perm = rng.permutation(len(y))
    assert metric(f, relabelled) == pytest.approx(base, rel=1e-9, abs=1e-12)
    assert metric(f[perm], y[perm]) == pytest.approx(base, rel=1e-9, abs=1e-12)
    assert metric(f, np.array(["b", "c", "a"])[y]) == pytest.approx(base, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_structure_scores_above_noise(name, make_task):
    f, y = make_task(90, 8, 3, signal=1.5, seed=3)
    noise = np.random.default_rng(3).standard_normal(f.shape)
    assert METRICS[name](f, y) > METRICS[name](noise, y)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    ("features", "labels", "message"),
    [
        (np.zeros((10, 3)), np.arange(9) % 2, r"^features has 10 rows but labels has 9$"),
        (np.zeros((1, 3)), np.array([0]), r"^need at least 2 samples; got 1$"),
        (np.ones((4, 3)), np.array([7, 7, 7, 7]), r"^labels contain a single class \(7\); at least 2 classes are needed$"),
        (np.zeros(5), np.arange(5) % 2, r"^features must be a 2-D array \(n_samples, n_features\); got shape \(5,\)$"),
        (np.zeros((4, 0)), np.arange(4) % 2, r"^features must have at least one column; got shape \(4, 0\)$"),
        (np.zeros((4, 2)), np.zeros((4, 2)), r"^labels must be a 1-D array of class labels; got shape \(4, 2\)$"),
    ],
    ids=["lengths", "n<2", "one-class", "1-d", "no-column", "2-d-labels"],
)
def test_input_errors(name, features, labels, message):
    if name == "logme" and labels.ndim == 2:
        pytest.skip("LogME reads a 2-D label matrix as multi-label targets")
    with pytest.raises(SchemaError, match=message):
        METRICS[name](features, labels)


@pytest.mark.parametrize("name", ALL)
def test_nan_features_are_rejected_with_row_count(name):
    f = np.random.default_rng(0).standard_normal((6, 3))
    f[2, 1], f[4, 0] = np.nan, np.inf
    with pytest.raises(SchemaError, match=r"^features contain NaN or inf in 2 of 6 rows \(first: row 2\)$"):
        METRICS[name](f, np.arange(6) % 2)


def test_empty_classes_with_n_classes():
    f = np.zeros((4, 2))
    with pytest.raises(SchemaError, match=r"^2 of n_classes=4 classes have no samples \(empty: \[1, 3\]\)$"):
        check_features_labels(f, [0, 2, 0, 2], n_classes=4)
    with pytest.raises(SchemaError, match=r"labels must be integers in \[0, 3\) when n_classes is given; got values outside: \[5\]"):
        check_features_labels(f, [0, 1, 2, 5], n_classes=3)
    feat, y, c = check_features_labels(f.astype(np.float32), [1, 0, 1, 0], n_classes=2)
    assert feat.dtype == np.float64 and feat.flags.c_contiguous and c == 2 and list(y) == [1, 0, 1, 0]


def test_labels_are_remapped():
    _, y, c = check_features_labels(np.zeros((4, 2)), [10, 30, 10, 50])
    assert c == 3 and list(y) == [0, 1, 0, 2]


def test_registry():
    assert get_metric("LogME") is METRICS["logme"]
    assert get_metric("shrinkage-hscore") is METRICS["shrinkage_hscore"]
    with pytest.raises(UnknownIdError, match=r"unknown metric 'logmee'; valid names: gbc, hscore, logme, nleep, parc, sfda, shrinkage_hscore, transrate\. Did you mean 'logme'\?"):
        get_metric("logmee")
    with pytest.raises(UnknownIdError, match=r"metric 'leep' needs the source classifier's predictions"):
        get_metric("leep")
