"""Checkpoints: safetensors + JSON metadata (no pickle); optimizer state restores bit for bit."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from fennec.errors import ArtifactError
from fennec.train import load_checkpoint, save_checkpoint


def _net_and_opt(seed=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    opt = torch.optim.SGD([{"params": list(net[0].parameters()) + list(net[1].parameters()), "lr": 1e-3},
                           {"params": net[3].parameters(), "lr": 1e-2}], lr=1e-2, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    return net, opt


def _steps(net, opt, n, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_round_trip_continues_training_identically(tmp_path):
    net, opt = _net_and_opt()
    _steps(net, opt, 3, seed=1)
    path = save_checkpoint(tmp_path / "c.safetensors", model=net, optimizer=opt, rng_state=torch.get_rng_state(),
                           meta={"epoch": 3, "note": "x"})
    _steps(net, opt, 2, seed=2)  # the uninterrupted continuation

    net2, opt2 = _net_and_opt(seed=99)  # fresh objects, other weights
    ckpt = load_checkpoint(path)
    net2.load_state_dict(ckpt.model_state)
    opt2.load_state_dict(ckpt.optimizer_state)
    assert ckpt.meta == {"epoch": 3, "note": "x"} and ckpt.rng_state.dtype == torch.uint8
    _steps(net2, opt2, 2, seed=2)
    for (k, a), b in zip(net.state_dict().items(), net2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


def test_layout_is_documented_tensors_and_json(tmp_path):
    net, opt = _net_and_opt()
    _steps(net, opt, 1, seed=0)
    path = save_checkpoint(tmp_path / "c.safetensors", model=net, optimizer=opt, meta={"a": 1})
    with safe_open(str(path), framework="pt") as fh:
        keys, meta = set(fh.keys()), fh.metadata()
    assert "model.1.running_mean" in keys and "model.1.num_batches_tracked" in keys
    assert "optimizer.state.0.momentum_buffer" in keys and "optimizer.state.5.momentum_buffer" in keys
    assert meta["format"] == "fennec-train-checkpoint" and meta["format_version"] == "1"
    groups = json.loads(meta["optimizer"])["param_groups"]
    assert [g["lr"] for g in groups] == [1e-3, 1e-2] and groups[0]["nesterov"] is True
    assert json.loads(meta["optimizer"])["state"]["0"] == {"momentum_buffer": {"tensor": "optimizer.state.0.momentum_buffer"}}
    assert path.read_bytes()[:8] != b"\x80\x02\x8a\x0al\xfc\x9cF"  # not a torch pickle


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ArtifactError, match=r"junk.safetensors: cannot be read as safetensors"):
        load_checkpoint(junk)
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(ArtifactError, match=r"other.safetensors: not a Fennec training checkpoint \(format='something-else'\)"):
        load_checkpoint(other)
