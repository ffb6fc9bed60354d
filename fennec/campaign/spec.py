"""A campaign spec: which models, tasks, recipes and seeds to run, with what budget, written where.

A spec is a TOML file (read with the standard library's ``tomllib``); every problem is one
:class:`~fennec.errors.SchemaError` line naming the file and the key (``spec.toml: models[2].name: ...``).
Relative paths in a spec are relative to the spec file's folder. See ``docs/campaigns.md`` for the reference;
in short::

    name = "digits"                      # campaign name (default: the file name)
    out = "runs/digits"                  # output folder
    seeds = [0, 1, 2]
    recipes = ["linear_probe", "metric:logme", {kind = "finetune", lr_backbone = 0.01}]
    max_retries = 2                      # a killed worker's job is retried this often (Ray)

    [budget]                             # images per task, held-out fraction, image size, epochs, ...
    images = 200
    image_size = 64

    [resources]                          # per job (Ray)
    num_cpus = 1
    num_gpus = 0

    [[models]]
    name = "efficientnet-lite0"          # any name the model registry resolves, or NAME@WEIGHTS_FILE
    [[models]]
    name = "resnet18"
    pretrained = false                   # a timm architecture with random weights (a control)

    [[tasks]]
    example = "sklearn_digits"           # or folder = "DIR" (ImageFolder) or csv = "FILE" (path,label)
    subsets = {classes = 5, count = 2, seed = 0}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BUDGET_DEFAULTS",
    "Budget",
    "CampaignSpec",
    "ModelSpec",
    "RecipeSpec",
    "Resources",
    "TaskSpec",
    "safe_name",
    "stable_hash",
]

ACCURACY_RECIPES = ("linear_probe", "finetune", "btune")
BUDGET_DEFAULTS: dict[str, Any] = {
    "images": 500,
    "test_fraction": 0.3,
    "image_size": None,
    "epochs": 1,
    "batch_size": 32,
    "threads": 1,
    "data_seed": 0,
}
_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def stable_hash(obj: Any, n: int = 16) -> str:
    """The first ``n`` hex digits of the sha256 of ``obj``'s canonical JSON."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def safe_name(text: str) -> str:
    """``text`` as a file-name part (characters outside ``[A-Za-z0-9._+-]`` become ``_``)."""
    return _SAFE.sub("_", text).strip("_") or "_"


@dataclass(frozen=True)
class ModelSpec:
    """One model: ``name`` as written, its history id, what the backbone loader is given, and whether its
    weights are random (``pretrained = false``: a timm architecture built with a fixed seed)."""

    name: str
    model_id: str
    load: str
    pretrained: bool = True
    args: Mapping[str, Any] = field(default_factory=dict)
    weights_sha256: str = ""

    def key(self) -> dict[str, Any]:
        return {
            "load": self.load,
            "pretrained": self.pretrained,
            "args": dict(self.args),
            "weights": self.weights_sha256,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_id": self.model_id,
            "load": self.load,
            "pretrained": self.pretrained,
            "args": dict(self.args),
            "weights_sha256": self.weights_sha256,
        }


@dataclass(frozen=True)
class TaskSpec:
    """One task: an offline example task, an ImageFolder or a ``path,label`` CSV, optionally a class subset
    (``classes`` chosen with ``subset_seed``; ``subset_index`` tells the draws of one base task apart)."""

    task_id: str
    kind: str  # "example", "folder" or "csv"
    source: str  # the example name or the absolute path
    classes: int | None = None
    subset_seed: int = 0
    subset_index: int = 0

    def key(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "classes": self.classes,
            "subset_seed": self.subset_seed,
            "subset_index": self.subset_index,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, **self.key()}


@dataclass(frozen=True)
class RecipeSpec:
    """One recipe: ``kind`` (``linear_probe``, ``finetune``, ``btune``, ``metric:<name>`` or ``py:MODULE:FUNCTION``),
    its ``label`` (the history's ``source`` column), parameters, and the tasks it runs on."""

    kind: str
    label: str
    params: Mapping[str, Any] = field(default_factory=dict)
    tasks: tuple[str, ...] | None = (
        None  # task ids (or fnmatch patterns) the recipe runs on; None: all
    )

    def applies_to(self, task_id: str) -> bool:
        from fnmatch import fnmatchcase

        return self.tasks is None or any(fnmatchcase(task_id, p) for p in self.tasks)

    @property
    def writes_history(self) -> bool:
        """Whether its results are accuracies that go to a history (metrics go to ``scores.csv``)."""
        return not self.kind.startswith("metric:")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "params": dict(self.params),
            "tasks": list(self.tasks) if self.tasks is not None else None,
        }


@dataclass(frozen=True)
class Budget:
    """``images`` per task (class-balanced, drawn with ``data_seed``), the held-out ``test_fraction``,
    ``image_size`` (None: each model's own), fine-tuning ``epochs`` and ``batch_size``, torch ``threads``."""

    images: int = 500
    test_fraction: float = 0.3
    image_size: int | None = None
    epochs: int = 1
    batch_size: int = 32
    threads: int = 1
    data_seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in BUDGET_DEFAULTS}


@dataclass(frozen=True)
class Resources:
    """What one job asks of a Ray cluster."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0


@dataclass(frozen=True)
class CampaignSpec:
    """A validated campaign spec (build it with :func:`load_spec` or :func:`parse_spec`)."""

    name: str
    out: Path
    models: tuple[ModelSpec, ...]
    tasks: tuple[TaskSpec, ...]
    recipes: tuple[RecipeSpec, ...]
    seeds: tuple[int, ...] = (0,)
    budget: Budget = field(default_factory=Budget)
    resources: Resources = field(default_factory=Resources)
    max_retries: int = 2
    path: str = "<spec>"

    def with_out(self, out: str | os.PathLike[str]) -> CampaignSpec:
        from dataclasses import replace

        return replace(self, out=Path(out))
