"""Weights files and caches (issue 12) and weights through the Hugging Face hub cache (issue 11, item 8).

No network here: every hub call is mocked (``huggingface_hub.hf_hub_download``).
"""

from __future__ import annotations

import logging
import os
import pickle  # only to write hostile files; Fennec never unpickles

import numpy as np
import pytest
from PIL import Image
from safety_helpers import run_cli

from fennec._torch_compat import ensure_torchvision

ensure_torchvision()

import huggingface_hub  # noqa: E402
import torch  # noqa: E402
from huggingface_hub.errors import LocalEntryNotFoundError  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from fennec.backbone.features import extract_features  # noqa: E402
from fennec.backbone.loading import WeightsError, read_state_dict, resolve_model  # noqa: E402
from fennec.errors import FennecError, UnknownIdError  # noqa: E402

SMALL = {"input_size": 32}


class Payload:
    """Unpickling this runs os.mkdir(marker): a stand-in for arbitrary code in a hostile checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.fixture(scope="module")
def resnet_state():
    torch.manual_seed(0)
    import timm

    return timm.create_model("test_resnet", pretrained=False).state_dict()


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(4, 20, 24), dtype=np.uint8)


def _hostile(tmp_path, resnet_state):
    marker = tmp_path / "code-ran"
    torch.save({**resnet_state, "extra": Payload(marker)}, tmp_path / "evil.pth")
    with open(tmp_path / "evil.bin", "wb") as fh:
        pickle.dump({"w": Payload(marker)}, fh)
    np.savez(tmp_path / "objects.npz", w=np.array([{"a": 1}], dtype=object))
    with open(tmp_path / "pickle.npz", "wb") as fh:
        pickle.dump(Payload(marker), fh)
    return marker


@pytest.mark.parametrize(("name", "reason"), [
    ("evil.pth", "refused: the file holds pickled Python objects besides tensors (loading them could run code; "
                 "Fennec loads with weights_only=True)"),
    ("evil.bin", "refused: the file holds pickled Python objects besides tensors"),
    ("objects.npz", "refused: the .npz holds pickled Python objects (loading them could run code)"),
    ("pickle.npz", "refused: the .npz holds pickled Python objects"),
])
def test_pickled_weights_are_refused_and_never_run(tmp_path, resnet_state, name, reason):
    marker = _hostile(tmp_path, resnet_state)
    with pytest.raises(WeightsError) as err:
        resolve_model(f"test_resnet@{tmp_path / name}")
    assert str(err.value).startswith(f"{tmp_path / name}: {reason}")
    assert "\n" not in str(err.value) and not marker.exists()


def test_truncated_and_empty_files_are_one_line(tmp_path, resnet_state):
    save_file(dict(resnet_state), tmp_path / "w.safetensors")
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    torch.save(resnet_state, tmp_path / "w.pth")
    data = (tmp_path / "w.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pth").write_bytes(b"")
    cases = {"cut.safetensors": "not a complete safetensors file (Error while deserializing header",
             "cut.pth": "not a complete PyTorch weights file (RuntimeError: PytorchStreamReader failed",
             "empty.pth": "the weights file is empty (0 bytes)"}
    for name, reason in cases.items():
        with pytest.raises(WeightsError) as err:
            read_state_dict(tmp_path / name)
        assert str(err.value).startswith(f"{tmp_path / name}: {reason}") and "\n" not in str(err.value)


def test_an_empty_weights_file_on_the_command_line(tmp_path, capsys):
    data = tmp_path / "task"
    for cls in ("a", "b"):
        (data / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((16, 16), 40 * i, np.uint8)).save(data / cls / f"{i}.png")
    (tmp_path / "empty.pth").write_bytes(b"")
    code, _, err = run_cli(["btune", "--out", tmp_path / "run", "--target", f"test_resnet@{tmp_path / 'empty.pth'}",
                            "--baseline", "--data", data, "--epochs", "1"], capsys)
    assert code == 1
    assert err == f"error: {tmp_path / 'empty.pth'}: the weights file is empty (0 bytes)\n"  # was 'Aborted.'


def test_weights_of_another_architecture(tmp_path, resnet_state):
    torch.save(resnet_state, tmp_path / "resnet.pth")
    with pytest.raises(WeightsError, match=rf"^{tmp_path / 'resnet.pth'}: does not fit the timm architecture "
                                           r"'test_efficientnet' \(\d+ tensor\(s\) missing, e.g. 'conv_stem.weight'; "
                                           r"\d+ unexpected, e.g. 'conv1.0.weight'; \d+ of another shape, "
                                           r"e.g. 'bn1.weight': file \(32,\), model \(24,\)\)$"):
        resolve_model(f"test_efficientnet@{tmp_path / 'resnet.pth'}")


def test_a_checkpoint_with_another_head_size_keeps_its_head(tmp_path, resnet_state):
    import timm

    torch.manual_seed(1)
    tuned = timm.create_model("test_resnet", pretrained=False, num_classes=7)
    torch.save({"state_dict": {f"module.{k}": v for k, v in tuned.state_dict().items()}}, tmp_path / "tuned.pth")
    net, model_id, identity = resolve_model(f"test_resnet@{tmp_path / 'tuned.pth'}")
    assert net.get_classifier().out_features == 7 and model_id == "test_resnet@tuned.pth"
    for k, v in tuned.state_dict().items():
        torch.testing.assert_close(net.state_dict()[k], v)


# ---------------------------------------------------------------------------------------------- the hub
def test_a_pretrained_tag_comes_through_the_hub_cache(tmp_path, resnet_state, monkeypatch):
    cached = tmp_path / "hub" / "model.safetensors"
    cached.parent.mkdir()
    save_file(dict(resnet_state), cached)
    calls = []

    def download(repo_id, filename, **kwargs):
        calls.append((repo_id, filename))
        return str(cached)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    net, model_id, identity = resolve_model("test_resnet.r160_in1k")
    assert calls == [("timm/test_resnet.r160_in1k", "model.safetensors")]
    assert model_id == "test_resnet.r160_in1k" and identity.startswith("timm:test_resnet.r160_in1k:hub:")
    for k, v in resnet_state.items():
        torch.testing.assert_close(net.state_dict()[k], v)


def test_offline_without_the_file_names_it_and_where_to_put_it(monkeypatch):
    from huggingface_hub import constants

    def offline(repo_id, filename, **kwargs):
        raise LocalEntryNotFoundError("Cannot find the requested files in the disk cache")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(FennecError) as err:
        resolve_model("test_resnet.r160_in1k")
    assert str(err.value) == (
        f"timm weights test_resnet.r160_in1k: timm/test_resnet.r160_in1k/model.safetensors is not in the Hugging "
        f"Face cache ({constants.HF_HUB_CACHE}) and cannot be downloaded (HF_HUB_OFFLINE is set); fetch it where "
        "there is a network (hf download timm/test_resnet.r160_in1k model.safetensors, or "
        "https://huggingface.co/timm/test_resnet.r160_in1k/resolve/main/model.safetensors) into that cache, or "
        "give a local file as test_resnet@/path/to/model.safetensors")


def test_an_unknown_pretrained_tag(monkeypatch):
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("no download expected"))
    with pytest.raises(UnknownIdError, match=r"timm has no Hugging Face weights for 'test_resnet.nosuch'; known: "
                                             r"test_resnet.r160_in1k"):
        resolve_model("test_resnet.nosuch")


def test_open_clip_tags_come_through_the_hub_and_are_checked(tmp_path, monkeypatch, resnet_state):
    pytest.importorskip("open_clip")
    from fennec.proxy import OpenCLIPProxy

    good = tmp_path / "open_clip_model.safetensors"
    save_file({"w": torch.zeros(3)}, good)
    served = {"file": good}
    calls = []

    def download(repo_id, filename, **kwargs):
        calls.append((repo_id, filename))
        return str(served["file"])

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    path, ident = OpenCLIPProxy("ViT-B-32", "laion2b_s34b_b79k")._weights
    assert path == str(good) and ident == "tag:laion2b_s34b_b79k"
    assert calls == [("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_model.safetensors")]
    _hostile(tmp_path, resnet_state)
    served["file"] = tmp_path / "evil.bin"
    with pytest.raises(WeightsError, match=r"evil.bin: refused: the file holds pickled Python objects"):
        _ = OpenCLIPProxy("ViT-B-32", "laion2b_s34b_b79k")._weights


# ---------------------------------------------------------------------------------------------- caches
@pytest.mark.parametrize("corrupt", [b"", b"not a zip at all", "cut", "shape"])
def test_a_corrupt_feature_cache_entry_is_recomputed(tmp_path, images, caplog, corrupt):
    first = extract_features("test_resnet", images, progress=False, cache_dir=tmp_path, data_config=SMALL)
    entry = tmp_path / f"{first.cache_key}.npz"
    if corrupt == "cut":
        entry.write_bytes(entry.read_bytes()[:100])
    elif corrupt == "shape":
        np.savez(entry, features=np.zeros((2, 3), np.float32))
    else:
        entry.write_bytes(corrupt)
    with caplog.at_level(logging.WARNING, logger="fennec.backbone.features"):
        again = extract_features("test_resnet", images, progress=False, cache_dir=tmp_path, data_config=SMALL)
    assert not again.from_cache and "ignoring" in caplog.text and str(entry) in caplog.text
    np.testing.assert_array_equal(again.features, first.features)
    third = extract_features("test_resnet", images, progress=False, cache_dir=tmp_path, data_config=SMALL)
    assert third.from_cache  # the entry was rewritten


def test_a_corrupt_embedding_cache_entry_is_ignored(tmp_path, caplog):
    from fennec.proxy.base import TaskEmbedding
    from fennec.proxy.cache import EmbeddingCache

    cache = EmbeddingCache(tmp_path)
    ident = {"kind": "test", "arch": "x", "weights": "w", "preprocessing": {}, "versions": {}}
    cache.put("k", TaskEmbedding(np.ones(4, np.float32) / 2, ident, "t", 3, {}))
    assert cache.get("k", ident) is not None
    cache.path("k").write_bytes(cache.path("k").read_bytes()[:50])
    with caplog.at_level(logging.WARNING, logger="fennec.proxy.cache"):
        assert cache.get("k", ident) is None
    assert "ignoring unreadable cache entry" in caplog.text
