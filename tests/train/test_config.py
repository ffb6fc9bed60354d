"""BTuningConfig: the paper's defaults, round trip, validation messages."""

from __future__ import annotations

import json

import pytest

from fennec.errors import SchemaError
from fennec.train import BTuningConfig


def test_defaults_are_the_papers():
    cfg = BTuningConfig()
    assert (cfg.top_k, cfg.temperature, cfg.tradeoff) == (3, 0.1, 100.0)
    assert (cfg.lr_backbone, cfg.lr_head, cfg.momentum, cfg.nesterov, cfg.weight_decay) == (1e-3, 1e-2, 0.9, True, 5e-4)


def test_round_trip_through_json():
    cfg = BTuningConfig(epochs=3, patience=2, image_size=64, nesterov=False, tradeoff=0.0)
    assert BTuningConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(SchemaError, match=r"unknown BTuningConfig key\(s\) \['lambda'\]; valid keys: top_k"):
        BTuningConfig.from_dict({"lambda": 100})


@pytest.mark.parametrize(("changes", "message"), [
    ({"temperature": 0.0}, "The 'temperature' parameter of BTuningConfig must be a finite float > 0. Got 0.0 instead."),
    ({"top_k": 0}, "The 'top_k' parameter of BTuningConfig must be an int >= 1. Got 0 instead."),
    ({"val_fraction": 1.0}, "The 'val_fraction' parameter of BTuningConfig must be a float in the open interval (0, 1)."),
    ({"tradeoff": float("nan")}, "The 'tradeoff' parameter of BTuningConfig must be a finite float >= 0."),
    ({"patience": 0}, "The 'patience' parameter of BTuningConfig must be an int >= 1 or None. Got 0 instead."),
    ({"momentum": 0.0}, "The 'nesterov' parameter of BTuningConfig needs momentum > 0."),
])
def test_invalid_values_name_the_parameter(changes, message):
    with pytest.raises(SchemaError) as err:
        BTuningConfig(**changes)
    assert message in str(err.value)


def test_frozen_and_replace_validates():
    cfg = BTuningConfig()
    with pytest.raises(AttributeError):
        cfg.epochs = 5  # type: ignore[misc]
    assert cfg.replace(epochs=5).epochs == 5
    with pytest.raises(SchemaError, match="'epochs'"):
        cfg.replace(epochs=0)
