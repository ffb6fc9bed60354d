"""The model registry: one identity per set of weights, every name a user or a history gives it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fennec.data.shipped import list_histories, load_history
from fennec.errors import SchemaError, UnknownIdError
from fennec.zoo.registry import ModelRegistry, read_user_models


@pytest.fixture(scope="module")
def reg():
    return ModelRegistry.load()


@pytest.mark.parametrize(("name", "model_id", "how"), [
    ("resnet50.a1_in1k", "resnet50.a1_in1k", "id"),                                  # a timm tag
    ("convnext_tiny", "convnext_tiny.in12k_ft_in1k", "timm default tag"),            # a bare architecture
    ("hf-hub:timm/resnet50.a1_in1k", "resnet50.a1_in1k", "id"),                      # timm's own hub repo
    ("hf-hub:google/vit-base-patch16-224", "vit_base_patch16_224.orig_in21k_ft_in1k", "alias"),  # same weights
    ("google/vit-base-patch16-224", "vit_base_patch16_224.orig_in21k_ft_in1k", "alias"),
    ("resnet50", "resnet50.tv_in1k", "alias"),                                        # sfda / logme's name
    ("sfda/resnet50", "resnet50.tv_in1k", "alias"),
    ("mobilenet_v2", "torchvision/mobilenet_v2.IMAGENET1K_V1", "alias"),            # torchvision weights
    ("torchvision/resnet50", "resnet50.tv2_in1k", "alias"),                          # torchvision's DEFAULT
    ("alexnet", "torchvision/alexnet.IMAGENET1K_V1", "torchvision default"),
    ("efficientnet-lite0", "tf_efficientnet_lite0.in1k", "alias"),                   # packaged weights
    ("byol", "byol", "id"),                                                            # history-local
    ("DeiT_Small", "deit_small_patch16_224.fb_in1k", "alias"),                      # case-insensitive retry
])
def test_names_resolve(reg, name, model_id, how):
    res = reg.resolve(name)
    assert (res.model_id, res.how) == (model_id, how)


def test_history_alias_says_what_timm_would_pick(reg):
    res = reg.resolve("resnet50")
    assert "resnet50.a1_in1k" in res.note


def test_same_architecture_other_weights_is_another_model_linked_by_architecture(reg):
    timm_mnv2, tv_mnv2 = reg.resolve("mobilenetv2_100").model_id, reg.resolve("mobilenet_v2").model_id
    assert timm_mnv2 == "mobilenetv2_100.ra_in1k" and timm_mnv2 != tv_mnv2
    assert reg.arch_of(timm_mnv2) == reg.arch_of(tv_mnv2) == "mobilenetv2_100"


@pytest.mark.parametrize("history", list_histories())
def test_every_history_model_resolves_to_its_registry_row(reg, history):
    local = reg.history_models(history)
    h = load_history(history)
    assert set(local) == set(h.model_ids)
    for lid, mid in local.items():
        assert reg.resolve(lid).model_id == mid
        assert reg.resolve(f"{history}/{lid}").model_id == mid


def test_the_same_weights_in_two_histories_are_one_id(reg):
    sfda, tg = reg.history_models("sfda"), reg.history_models("transfergraph")
    assert sfda["deit_small"] == tg["facebook/deit-small-patch16-224"] == "deit_small_patch16_224.fb_in1k"
    assert reg.history_models("logme")["mobilenet_v2"] == sfda["mobilenet_v2"]


def test_weights_file_is_a_new_model_of_the_architecture(reg):
    res = reg.resolve("resnet50@/tmp/mine.pth")
    assert res.how == "weights file" and res.model_id == "resnet50@/tmp/mine.pth" and res.weights == "/tmp/mine.pth"
    side = reg.side_table([res.model_id]).iloc[0]
    assert side["arch"] == "resnet50" and side["params_m"] == pytest.approx(25.56, abs=0.1)
    assert np.isnan(side["top1"])  # the weights' top-1 is unknown


def test_unresolved_names_say_why(reg):
    res = reg.resolve("resnet5000")
    assert not res.resolved and "did you mean" in res.note
    assert "no pretrained weights" in reg.resolve("botnet50ts_256").note
    with pytest.raises(UnknownIdError, match="unknown model 'resnet5000'"):
        reg.resolve_many(["resnet50", "resnet5000"], strict=True)


def test_side_information_comes_from_the_published_tables(reg):
    s = reg.side_table(["resnet50.a1_in1k", "torchvision/mobilenet_v2.IMAGENET1K_V1", "nope"]).set_index("model_id")
    assert s.loc["resnet50.a1_in1k", "top1"] == pytest.approx(80.382)  # timm results-imagenet.csv
    assert s.loc["torchvision/mobilenet_v2.IMAGENET1K_V1", "top1"] == pytest.approx(71.878)  # torchvision meta
    assert np.isnan(s.loc["nope", "top1"]) and s.loc["nope", "arch"] == ""


def test_user_table(reg, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("model_id,top1,params_m,pretraining,timm_arch\nkeras_net,81.5,25,in1k_supervised,resnet50\n")
    mine = reg.with_models(path)
    assert mine.resolve("keras_net").how == "id" and mine.arch_of("keras_net") == "resnet50"
    assert mine.side_table(["keras_net"]).iloc[0]["top1"] == 81.5
    bad = tmp_path / "bad.csv"
    bad.write_text("model_id,top1\nx,high\n")
    with pytest.raises(SchemaError, match=r"bad.csv: column 'top1' must be a number; got 'high' on line 2"):
        read_user_models(bad)
    bad.write_text("model_id,colour\nx,red\n")
    with pytest.raises(SchemaError, match=r"unknown column\(s\) \['colour'\]"):
        read_user_models(bad)
    with pytest.raises(SchemaError, match="repeated model_id"):
        read_user_models(pd.DataFrame({"model_id": ["a", "a"]}))
