"""Tuning a target model: B-Tuning with ranked teachers, plain fine-tuning, and closing the loop.

>>> from fennec.train import BTuningConfig, btune, finetune          # doctest: +SKIP
>>> res = btune("efficientnet-lite0", "runs/ranking.csv", "runs/animals", config=BTuningConfig(epochs=5),
...             run_dir="runs/animals-btune")                          # doctest: +SKIP
>>> res.val_accuracy, res.teachers[0]["weight"]                        # doctest: +SKIP

torch and timm are imported lazily (on the first call), so importing this package is cheap.
"""

from __future__ import annotations

from fennec.history.append import add_history_row as add_history_row
from fennec.history.append import row_from_run as row_from_run
from fennec.train.btuning import BTuningResult as BTuningResult
from fennec.train.btuning import btune as btune
from fennec.train.btuning import finetune as finetune
from fennec.train.btuning import load_run as load_run
from fennec.train.btuning import load_tuned_model as load_tuned_model
from fennec.train.checkpoint import load_checkpoint as load_checkpoint
from fennec.train.checkpoint import save_checkpoint as save_checkpoint
from fennec.train.config import BTuningConfig as BTuningConfig
from fennec.train.teachers import Teacher as Teacher
from fennec.train.teachers import teacher_weights as teacher_weights
from fennec.train.teachers import teachers_from_ranking as teachers_from_ranking

__all__ = [
    "BTuningConfig",
    "BTuningResult",
    "Teacher",
    "add_history_row",
    "btune",
    "finetune",
    "load_checkpoint",
    "load_run",
    "load_tuned_model",
    "row_from_run",
    "save_checkpoint",
    "teacher_weights",
    "teachers_from_ranking",
]
