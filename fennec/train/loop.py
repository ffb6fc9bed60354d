"""The training loop shared by B-Tuning and plain fine-tuning.

One epoch: a seeded shuffle of the training split (a ``DataLoader`` without workers whose generator
is seeded from ``(seed, epoch)``, so a resumed run shuffles exactly like an uninterrupted one), then
for every batch ::

    phi    = model.forward_head(model.forward_features(x), pre_logits=True)
    loss   = CE(head(phi), y) [+ tradeoff * MSE(phi @ m_t.T, teacher_targets[batch])]

with SGD (Nesterov momentum by default; backbone and head in two parameter groups). After every
epoch: validation accuracy (eval mode), a checkpoint (``checkpoints/last.safetensors``; the best
epoch's weights in ``checkpoints/best.safetensors``), ``history.json``, early stopping. Dropout
draws from torch's global generator, seeded at the start and saved in every checkpoint; the whole
run executes inside ``torch.random.fork_rng`` so the caller's generator state is left untouched.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fennec.artifacts import write_json
from fennec.errors import ArtifactError
from fennec.train.checkpoint import load_checkpoint, save_checkpoint
from fennec.train.config import BTuningConfig

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = ["LoopState", "deterministic_cpu", "run_loop", "write_json"]

LAST = "checkpoints/last.safetensors"
BEST = "checkpoints/best.safetensors"
HISTORY = "history.json"
# Config keys that may differ between an interrupted run and its resumption.
RESUMABLE_CHANGES = frozenset({"epochs", "num_threads"})


@dataclass
class LoopState:
    """Trainer state saved in every checkpoint (``meta["loop"]``)."""

    epoch: int = 0
    best_val_accuracy: float = -1.0
    best_epoch: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


@contextlib.contextmanager
def deterministic_cpu(num_threads: int | None) -> Iterator[None]:
    """Deterministic algorithms and (optionally) a fixed thread count, restored on exit."""
    import torch

    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    old_threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True, warn_only=True)
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        if num_threads is not None:
            torch.set_num_threads(old_threads)


def make_optimizer(net: torch.nn.Module, config: BTuningConfig) -> torch.optim.SGD:
    """SGD over two groups: backbone (``lr_backbone``) and the classifier head (``lr_head``)."""
    import torch

    head_ids = {id(p) for p in net.get_classifier().parameters()}
    backbone = [p for p in net.parameters() if id(p) not in head_ids]
    head = [p for p in net.parameters() if id(p) in head_ids]
    return torch.optim.SGD(
        [{"params": backbone, "lr": config.lr_backbone, "name": "backbone"},
         {"params": head, "lr": config.lr_head, "name": "head"}],
        lr=config.lr_head, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay,
    )


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + 0x2F6B) % (2**63 - 1)


def evaluate(net: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, batch_size: int) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy)`` in eval mode."""
    import torch
    import torch.nn.functional as F

    was_training = net.training
    net.eval()
    correct, loss_sum = 0, 0.0
    try:
        with torch.no_grad():
            for start in range(0, inputs.shape[0], batch_size):
                x, y = inputs[start:start + batch_size], labels[start:start + batch_size]
                logits = net(x)
                loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
                correct += int((logits.argmax(dim=1) == y).sum())
    finally:
        net.train(was_training)
    n = max(int(inputs.shape[0]), 1)
    return correct / n, loss_sum / n


def run_loop(
    net: torch.nn.Module,
    *,
    train_inputs: torch.Tensor,
    train_labels: torch.Tensor,
    val_inputs: torch.Tensor,
    val_labels: torch.Tensor,
    config: BTuningConfig,
    tradeoff: float,
    teacher_targets: torch.Tensor | None = None,
    target_mean: torch.Tensor | None = None,
    run_dir: Path | None = None,
    resume: bool = False,
    static_meta: dict[str, Any] | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[LoopState, dict[str, torch.Tensor]]:
    """Train ``net`` in place; return the loop state and the best epoch's state dict.

    Parameters
    ----------
    teacher_targets, target_mean : Tensor (n_train, C) and (C, D), optional
        Both or neither: with them the loss adds ``tradeoff * MSE(phi @ target_mean.T, targets)``.
    run_dir : Path, optional
        Where checkpoints and ``history.json`` go (none written without it).
    resume : bool
        Continue from ``run_dir/checkpoints/last.safetensors``; its config and ``static_meta`` must
        match (only ``epochs`` and ``num_threads`` may change).
    on_epoch_end : callable, optional
        Called with the epoch's record after its checkpoint is written (an exception raised there
        interrupts the run; the checkpoint stays and the run can be resumed).
    """
    import torch

    if (teacher_targets is not None) != (target_mean is not None):
        raise ValueError("teacher_targets and target_mean go together")
    static_meta = dict(static_meta or {})
    optimizer = make_optimizer(net, config)
    state = LoopState()
    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    data = _LoopData(train_inputs, train_labels, val_inputs, val_labels, tradeoff, teacher_targets, target_mean)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_epoch_seed(config.seed, -1))
        if resume:
            state, best_state = _restore(run_dir, net, optimizer, config, static_meta)
        best_state = _train_epochs(net, optimizer, data, config, state, best_state, run_dir=run_dir,
                                   static_meta=static_meta, progress=progress, on_epoch_end=on_epoch_end)
    return state, best_state


@dataclass
class _LoopData:
    """The tensors of a run: training and validation splits, and the distillation targets (or None)."""

    train_inputs: torch.Tensor
    train_labels: torch.Tensor
    val_inputs: torch.Tensor
    val_labels: torch.Tensor
    tradeoff: float
    teacher_targets: torch.Tensor | None
    target_mean: torch.Tensor | None

    @property
    def distill(self) -> bool:
        return self.teacher_targets is not None


def _train_epochs(net, optimizer, data: _LoopData, config: BTuningConfig, state: LoopState,
                  best_state: dict[str, torch.Tensor], *, run_dir: Path | None, static_meta: dict[str, Any],
                  progress: bool, on_epoch_end) -> dict[str, torch.Tensor]:
    """The epochs after ``state.epoch`` (``state`` updated in place): train, validate, checkpoint, stop
    early; return the best epoch's state dict."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    from tqdm.auto import tqdm

    head = net.get_classifier()
    n_train = int(data.train_inputs.shape[0])
    index = TensorDataset(torch.arange(n_train))
    drop_last = n_train % config.batch_size == 1  # a batch of one breaks BatchNorm in train mode
    eval_bs = max(config.batch_size, 64)
    disable = None if progress else True
    epochs = tqdm(range(state.epoch + 1, config.epochs + 1), desc="epochs", unit="epoch", disable=disable,
                  initial=state.epoch, total=config.epochs)
    try:
        for epoch in epochs:
            if state.stopped_early:
                break
            t0 = time.perf_counter()
            net.train()
            gen = torch.Generator().manual_seed(_epoch_seed(config.seed, epoch))
            loader = DataLoader(index, batch_size=config.batch_size, shuffle=True, generator=gen, num_workers=0,
                                drop_last=drop_last)
            sums = _train_epoch(net, head, optimizer, loader, data.train_inputs, data.train_labels,
                                tradeoff=data.tradeoff, teacher_targets=data.teacher_targets,
                                target_mean=data.target_mean, desc=f"epoch {epoch}", disable=disable)
            val_acc, val_loss = evaluate(net, data.val_inputs, data.val_labels, batch_size=eval_bs)
            improved = val_acc > state.best_val_accuracy
            if improved:
                state.best_val_accuracy, state.best_epoch, state.bad_epochs = val_acc, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                state.bad_epochs += 1
            record = _record(epoch, sums, optimizer, tradeoff=data.tradeoff, distill=data.distill, val_loss=val_loss,
                             val_acc=val_acc, improved=improved, seconds=time.perf_counter() - t0)
            _end_epoch(state, record, config, distill=data.distill)
            epochs.set_postfix(loss=f"{record['train_loss']:.3f}", val_acc=f"{val_acc:.3f}")
            if run_dir is not None:
                _save_epoch(run_dir, net, optimizer, config, state, static_meta, improved=improved)
            if on_epoch_end is not None:
                on_epoch_end(record)
            if state.stopped_early:
                break
    finally:
        epochs.close()
    return best_state


def _end_epoch(state: LoopState, record: dict[str, Any], config: BTuningConfig, *, distill: bool) -> None:
    """Record the epoch in ``state``, stop early after ``patience`` epochs without a better validation
    accuracy, and log the epoch's line."""
    epoch = record["epoch"]
    state.history.append(record)
    state.epoch = epoch
    if config.patience is not None and state.bad_epochs >= config.patience and epoch < config.epochs:
        state.stopped_early = True
        logger.info("early stopping after epoch %d: no better validation accuracy for %d epochs "
                    "(best %.4f at epoch %d)", epoch, state.bad_epochs, state.best_val_accuracy, state.best_epoch)
    logger.info("epoch %d/%d: loss %.4f (ce %.4f%s) train acc %.4f, val acc %.4f, %.1f s", epoch, config.epochs,
                record["train_loss"], record["train_ce"], f", mse {record['train_mse']:.4g}" if distill else "",
                record["train_accuracy"], record["val_accuracy"], record["seconds"])


def _train_epoch(net, head, optimizer, loader, inputs, labels, *, tradeoff: float, teacher_targets, target_mean,
                 desc: str, disable) -> dict[str, float]:
    """One pass over ``loader`` (batches of indices into ``inputs``); the summed losses, hits and count."""
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    sums = {"loss": 0.0, "ce": 0.0, "mse": 0.0, "correct": 0, "n": 0}
    for (bidx,) in tqdm(loader, desc=desc, unit="batch", leave=False, disable=disable):
        x, y = inputs[bidx], labels[bidx]
        phi = net.forward_head(net.forward_features(x), pre_logits=True)
        logits = head(phi)
        ce = F.cross_entropy(logits, y)
        if teacher_targets is not None:
            mse = F.mse_loss(phi @ target_mean.T, teacher_targets[bidx])
            loss = ce + tradeoff * mse
        else:
            mse, loss = None, ce
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        b = int(y.shape[0])
        sums["loss"] += float(loss.detach()) * b
        sums["ce"] += float(ce.detach()) * b
        sums["mse"] += float(mse.detach()) * b if mse is not None else 0.0
        sums["correct"] += int((logits.detach().argmax(dim=1) == y).sum())
        sums["n"] += b
    return sums


def _record(epoch: int, sums: dict[str, float], optimizer, *, tradeoff: float, distill: bool, val_loss: float,
            val_acc: float, improved: bool, seconds: float) -> dict[str, Any]:
    """The epoch's row of ``history.json``."""
    n = max(sums["n"], 1)
    return {
        "epoch": epoch, "train_loss": sums["loss"] / n, "train_ce": sums["ce"] / n,
        "train_mse": sums["mse"] / n if distill else None, "tradeoff": float(tradeoff),
        "train_accuracy": sums["correct"] / n, "val_loss": val_loss, "val_accuracy": val_acc,
        "lr_backbone": optimizer.param_groups[0]["lr"], "lr_head": optimizer.param_groups[1]["lr"],
        "best": improved, "seconds": seconds,
    }


def _save_epoch(run_dir: Path, net, optimizer, config: BTuningConfig, state: LoopState, static_meta: dict[str, Any],
                *, improved: bool) -> None:
    """The last checkpoint (model, optimizer, RNG, loop state), the best one when it improved, the history."""
    import torch

    meta = {**static_meta, "config": config.to_dict(), "loop": asdict(state)}
    save_checkpoint(run_dir / LAST, model=net, optimizer=optimizer, rng_state=torch.get_rng_state(), meta=meta)
    if improved:
        val = state.history[-1]["val_accuracy"]
        save_checkpoint(run_dir / BEST, model=net, meta={**static_meta, "epoch": state.epoch, "val_accuracy": val})
    write_json(run_dir / HISTORY, state.history)


def _restore(
    run_dir: Path | None, net: torch.nn.Module, optimizer: torch.optim.Optimizer, config: BTuningConfig,
    static_meta: dict[str, Any],
) -> tuple[LoopState, dict[str, torch.Tensor]]:
    import torch

    if run_dir is None:
        raise ArtifactError("resume needs a run directory")
    path = run_dir / LAST
    if not path.is_file():
        raise ArtifactError(f"{run_dir}: no checkpoint to resume from ({LAST} is missing)")
    ckpt = load_checkpoint(path)
    saved = ckpt.meta.get("config", {})
    diff = sorted(k for k in set(saved) | set(config.to_dict())
                  if k not in RESUMABLE_CHANGES and saved.get(k) != config.to_dict().get(k))
    if diff:
        shown = ", ".join(f"{k}: {saved.get(k)!r} -> {config.to_dict().get(k)!r}" for k in diff)
        raise ArtifactError(f"{path}: cannot resume with a different configuration ({shown}); "
                            f"only {sorted(RESUMABLE_CHANGES)} may change")
    for key, value in static_meta.items():
        if ckpt.meta.get(key) != value:
            raise ArtifactError(f"{path}: cannot resume: {key!r} differs from the interrupted run "
                                f"({ckpt.meta.get(key)!r} there, {value!r} now)")
    net.load_state_dict(ckpt.model_state, strict=True)
    if ckpt.optimizer_state is None:
        raise ArtifactError(f"{path}: the checkpoint has no optimizer state")
    optimizer.load_state_dict(ckpt.optimizer_state)
    if ckpt.rng_state is not None:
        torch.set_rng_state(ckpt.rng_state)
    state = LoopState(**ckpt.meta["loop"])
    best_path = run_dir / BEST
    if best_path.is_file():
        best_state = load_checkpoint(best_path).model_state
    else:
        best_state = copy.deepcopy(net.state_dict())
    logger.info("resumed %s at epoch %d of %d%s", run_dir, state.epoch, config.epochs,
                " (it had stopped early: nothing left to train)" if state.stopped_early else "")
    return state, best_state
