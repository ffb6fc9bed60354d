"""The training loop: lambda = 0 is plain fine-tuning step for step, resume, early stopping, determinism."""

from __future__ import annotations

import json

import pytest
import timm
import torch

from fennec.errors import ArtifactError
from fennec.train import btune, finetune, load_checkpoint, load_run, load_tuned_model

TEACHERS = ["test_resnet", "test_convnext", "test_efficientnet"]  # tiny timm models, random weights


class _Interrupt(Exception):
    pass


def _snapshots(run_dir, store):
    """on_epoch_end callback: keep the parameters, buffers and optimizer state written for every epoch."""
    def hook(record):
        ckpt = load_checkpoint(run_dir / "checkpoints" / "last.safetensors")
        store.append((record, ckpt.model_state, ckpt.optimizer_state["state"]))
    return hook


def _same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _strip_time(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "tradeoff", "train_mse")} for r in history]


def test_tradeoff_zero_equals_plain_finetuning_step_for_step(task, small_config, tmp_path):
    cfg = small_config.replace(epochs=3, tradeoff=0.0)
    b_snaps, f_snaps = [], []
    b = btune("test_efficientnet", TEACHERS, task, config=cfg, run_dir=tmp_path / "b", progress=False,
              on_epoch_end=_snapshots(tmp_path / "b", b_snaps))
    f = finetune("test_efficientnet", task, config=cfg, run_dir=tmp_path / "f", progress=False,
                 on_epoch_end=_snapshots(tmp_path / "f", f_snaps))
    assert len(b_snaps) == len(f_snaps) == 3
    for (rb, mb, ob), (rf, mf, of) in zip(b_snaps, f_snaps, strict=True):
        assert rb["train_ce"] == rf["train_ce"] and rb["train_loss"] == rf["train_loss"]
        assert rb["val_accuracy"] == rf["val_accuracy"] and rb["val_loss"] == rf["val_loss"]
        _same_state(mb, mf)
        assert ob.keys() == of.keys()
        for i in ob:
            assert torch.equal(ob[i]["momentum_buffer"], of[i]["momentum_buffer"])
    _same_state(b.model.state_dict(), f.model.state_dict())
    assert b.history[0]["train_mse"] > 0 and f.history[0]["train_mse"] is None  # the MSE is there, weighted 0
    # with the paper's lambda the teachers change the training
    d = btune("test_efficientnet", TEACHERS, task, config=cfg.replace(tradeoff=100.0), progress=False)
    assert d.history[0]["train_loss"] > d.history[0]["train_ce"]
    assert not torch.equal(d.model.classifier.weight, f.model.classifier.weight)


def _dropout_target():
    torch.manual_seed(0)
    return timm.create_model("test_efficientnet", pretrained=False, drop_rate=0.3)  # dropout: the RNG matters


def test_resumed_run_equals_uninterrupted(task, small_config, tmp_path):
    cfg = small_config.replace(epochs=3)
    target = _dropout_target()
    full = btune(target, TEACHERS, task, config=cfg, run_dir=tmp_path / "full", progress=False)

    def interrupt(record):
        if record["epoch"] == 1:
            raise _Interrupt

    run = tmp_path / "cut"
    with pytest.raises(_Interrupt):
        btune(target, TEACHERS, task, config=cfg, run_dir=run, progress=False, on_epoch_end=interrupt)
    assert not (run / "summary.json").exists()
    assert json.loads((run / "history.json").read_text())[0]["epoch"] == 1
    with pytest.raises(ArtifactError, match=r"cut: no summary.json \(interrupted run: resume it with --resume\)"):
        load_run(run)
    with pytest.raises(ArtifactError, match="cut: already exists and is not empty; resume it"):
        btune(target, TEACHERS, task, config=cfg, run_dir=run, progress=False)
    resumed = btune(target, TEACHERS, task, config=cfg, run_dir=run, resume=True, progress=False)

    _same_state(resumed.model.state_dict(), full.model.state_dict())
    a = load_checkpoint(run / "checkpoints" / "last.safetensors")
    b = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.safetensors")
    _same_state(a.model_state, b.model_state)
    assert torch.equal(a.rng_state, b.rng_state)
    for i in a.optimizer_state["state"]:
        assert torch.equal(a.optimizer_state["state"][i]["momentum_buffer"],
                           b.optimizer_state["state"][i]["momentum_buffer"])
    assert a.optimizer_state["param_groups"] == b.optimizer_state["param_groups"]
    assert _strip_time(resumed.history) == _strip_time(full.history)
    assert [r["train_mse"] for r in resumed.history] == [r["train_mse"] for r in full.history]
    assert load_run(run)["val_accuracy"] == full.val_accuracy

    # resuming with other settings is refused, naming what differs
    with pytest.raises(ArtifactError, match=r"cannot resume with a different configuration \(tradeoff: 100.0 -> 1.0\)"):
        btune(target, TEACHERS, task, config=cfg.replace(tradeoff=1.0), run_dir=run, resume=True, progress=False)
    with pytest.raises(ArtifactError, match=r"cannot resume: 'teachers' differs from the interrupted run "
                                            r"\(\['test_resnet', 'test_convnext', 'test_efficientnet'\] there, "
                                            r"\['test_resnet', 'test_convnext'\] now\)"):
        btune(target, TEACHERS[:2], task, config=cfg, run_dir=run, resume=True, progress=False)


def test_early_stopping_stops_after_patience_epochs(task, small_config):
    torch.manual_seed(0)
    frozen = timm.create_model("test_vit", pretrained=False, img_size=32)  # no BatchNorm: lr 0 changes nothing
    cfg = small_config.replace(epochs=6, patience=2, lr_backbone=0.0, lr_head=0.0)
    res = finetune(frozen, task, config=cfg, progress=False)
    assert res.stopped_early and res.epochs_run == 3 and res.best_epoch == 1
    assert len({r["val_accuracy"] for r in res.history}) == 1


def test_early_stopping_restores_the_best_epoch(task, small_config, tmp_path):
    cfg = small_config.replace(epochs=6, patience=1, lr_backbone=0.5, lr_head=0.5)  # unstable: no steady gain
    res = finetune("test_efficientnet", task, config=cfg, run_dir=tmp_path / "es", progress=False)
    accs = [r["val_accuracy"] for r in res.history]
    assert res.best_epoch == accs.index(max(accs)) + 1 and res.val_accuracy == max(accs)
    if res.stopped_early:
        assert res.epochs_run == res.best_epoch + cfg.patience < 6
    best = load_checkpoint(tmp_path / "es" / "checkpoints" / "best.safetensors")
    _same_state(best.model_state, res.model.state_dict())
    assert best.meta["epoch"] == res.best_epoch
    last = load_checkpoint(tmp_path / "es" / "checkpoints" / "last.safetensors")
    assert last.meta["loop"]["epoch"] == res.epochs_run
    model, info = load_tuned_model(tmp_path / "es")
    _same_state(model.state_dict(), res.model.state_dict())
    assert info["class_names"] == res.class_names and info["architecture"] == "test_efficientnet"
    summary = load_run(tmp_path / "es")
    assert summary["stopped_early"] == res.stopped_early
    assert summary["score"] == pytest.approx(100 * res.val_accuracy)


def test_seeded_runs_are_deterministic_and_leave_global_rng_alone(task, small_config):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = finetune("test_efficientnet", task, config=small_config, progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    b = finetune("test_efficientnet", task, config=small_config, progress=False)
    c = finetune("test_efficientnet", task, config=small_config.replace(seed=1), progress=False)
    _same_state(a.model.state_dict(), b.model.state_dict())
    assert a.history[-1]["train_loss"] == b.history[-1]["train_loss"]
    assert a.history[-1]["train_loss"] != c.history[-1]["train_loss"]
    assert torch.get_num_threads() == 1
