"""NCE, LEEP, N-LEEP: hand-computed values and the keyword-only source/target arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fennec.errors import SchemaError
from fennec.transferability import leep, nce, nleep


def test_nce_hand_computed():
    z = np.array([0, 0, 1, 1, 1, 2])  # hard source labels
    y = np.array([0, 1, 1, 1, 0, 1])  # target labels
    # joint counts (y, z): (0,0)=1 (1,0)=1 (1,1)=2 (0,1)=1 (1,2)=1; P(z) = 2/6, 3/6, 1/6
    expected = (1 / 6) * math.log(1 / 2) + (1 / 6) * math.log(1 / 2) + (2 / 6) * math.log(2 / 3) \
        + (1 / 6) * math.log(1 / 3) + (1 / 6) * math.log(1)
    assert nce(source_labels=z, target_labels=y) == pytest.approx(expected, rel=1e-12)


def test_leep_hand_computed():
    theta = np.array([[0.8, 0.2], [0.3, 0.7], [0.5, 0.5]])
    y = np.array([0, 1, 1])
    # P(y,z) = [[0.8, 0.2], [0.8, 1.2]] / 3; P(z) = [1.6, 1.4] / 3
    # P(y|z) = [[1/2, 1/7], [1/2, 6/7]]
    eep = [0.8 / 2 + 0.2 / 7, 0.3 / 2 + 0.7 * 6 / 7, 0.5 / 2 + 0.5 * 6 / 7]
    expected = float(np.mean(np.log(eep)))
    assert leep(source_probs=theta, target_labels=y) == pytest.approx(expected, rel=1e-12)
    assert leep(source_probs=theta, target_labels=np.array(["a", "b", "b"])) == pytest.approx(expected, rel=1e-12)


def test_asymmetric_fixture_source_and_target_cannot_be_crossed():
    """y is a function of z: NCE(z → y) = 0, but crossing the arguments gives −log 2."""
    z = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert nce(source_labels=z, target_labels=y) == pytest.approx(0.0, abs=1e-15)
    assert nce(source_labels=y, target_labels=z) == pytest.approx(-math.log(2), rel=1e-12)
    with pytest.raises(TypeError):
        nce(z, y)  # type: ignore[misc]  # keyword-only on purpose
    with pytest.raises(TypeError):
        leep(np.eye(2)[[0, 1]], np.array([0, 1]))  # type: ignore[misc]


def test_leep_and_nce_errors():
    with pytest.raises(SchemaError, match=r"^source_labels has 3 entries but target_labels has 2$"):
        nce(source_labels=[0, 1, 1], target_labels=[0, 1])
    with pytest.raises(SchemaError, match=r"^source_probs has 2 rows but target_labels has 3$"):
        leep(source_probs=np.full((2, 2), 0.5), target_labels=[0, 1, 1])
    with pytest.raises(SchemaError, match=r"source_probs rows must sum to 1 \(softmax outputs\); 1 rows do not \(first: row 1 sums to 0\.9\)"):
        leep(source_probs=np.array([[0.5, 0.5], [0.5, 0.4]]), target_labels=[0, 1])
    with pytest.raises(SchemaError, match=r"source_probs must be non-negative; got 1 negative entries"):
        leep(source_probs=np.array([[1.5, -0.5], [0.5, 0.5]]), target_labels=[0, 1])


def test_nleep_ranks_signal_above_noise(make_task):
    f, y = make_task(120, 10, 3, signal=1.5, seed=0)
    noise = np.random.default_rng(0).standard_normal(f.shape)
    assert nleep(f, y) > nleep(noise, y)
    assert nleep(f, y) <= 0.0
    with pytest.raises(SchemaError, match=r"The 'n_components_pca' parameter of nleep must be a float in \(0, 1\) or an int >= 1\. Got 0 instead\."):
        nleep(f, y, n_components_pca=0)
