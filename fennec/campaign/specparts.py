"""The ``models``, ``tasks`` and ``recipes`` lists of a campaign spec, validated one entry at a time."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fennec.campaign.spec import ModelSpec, RecipeSpec, TaskSpec, safe_name
from fennec.errors import SchemaError

__all__ = ["BTUNE_PARAMS", "FINETUNE_PARAMS", "LINEAR_PROBE_PARAMS", "parse_models", "parse_recipes", "parse_tasks"]

#: Parameters a ``finetune`` recipe may set (the budget sets epochs, batch size, image size, threads, seed).
FINETUNE_PARAMS = ("lr_backbone", "lr_head", "momentum", "nesterov", "weight_decay")
#: B-Tuning's own parameters, beside the fine-tune's (``teachers`` is required)
BTUNE_PARAMS = ("teachers", "tradeoff", "temperature")
LINEAR_PROBE_PARAMS = ("C", "max_iter")
RANDOM_SUFFIX = "random-init"


def _entries(raw: Any, key: str, where: str) -> list[Any]:
    if raw is None:
        raise SchemaError(f"{where}: {key}: missing (a non-empty list)")
    if not isinstance(raw, list) or not raw:
        raise SchemaError(f"{where}: {key}: a non-empty list; got {raw!r}")
    return raw


def _check_keys(entry: Mapping[str, Any], allowed: set[str], at: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise SchemaError(
            f"{at}.{unknown[0]}: unknown key; valid keys: {', '.join(sorted(allowed))}"
        )


# ------------------------------------------------------------------------------------------------ models
def parse_models(raw: Any, where: str, base: Path, registry=None) -> tuple[ModelSpec, ...]:
    """Resolve every model through the registry (``pretrained = false``: a timm architecture)."""
    if registry is None:
        from fennec.zoo.registry import ModelRegistry

        registry = ModelRegistry.load()
    out: list[ModelSpec] = []
    for i, entry in enumerate(_entries(raw, "models", where)):
        at = f"{where}: models[{i}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping):
            raise SchemaError(f"{at}: a model name or a table with name = ...; got {entry!r}")
        _check_keys(entry, {"name", "pretrained", "args"}, at)
        name, pretrained, args = (
            entry.get("name"),
            entry.get("pretrained", True),
            entry.get("args", {}),
        )
        if not isinstance(name, str) or not name.strip():
            raise SchemaError(f"{at}.name: a model name (string); got {name!r}")
        if not isinstance(pretrained, bool):
            raise SchemaError(f"{at}.pretrained: true or false; got {pretrained!r}")
        if not isinstance(args, Mapping) or (args and pretrained):
            raise SchemaError(
                f"{at}.args: a table of timm.create_model arguments, only with pretrained = false; "
                f"got {args!r}"
            )
        spec = (
            _random_model(name.strip(), dict(args), at, registry)
            if not pretrained
            else _named_model(name.strip(), at, base, registry)
        )
        if any(m.model_id == spec.model_id for m in out):
            raise SchemaError(f"{at}.name: model {spec.model_id!r} is listed twice")
        out.append(spec)
    return tuple(out)


def _random_model(name: str, args: dict[str, Any], at: str, registry) -> ModelSpec:
    res = registry.resolve(name)
    is_arch = res.resolved and registry.arch_of(res.model_id) == name
    if not is_arch:
        from fennec.backbone.preprocess import import_timm

        is_arch = "." not in name and "@" not in name and import_timm().is_model(name)
    if not is_arch:
        raise SchemaError(
            f"{at}.name: pretrained = false needs a timm architecture (e.g. resnet18); got {name!r}"
        )
    shown = ",".join(f"{k}={args[k]}" for k in sorted(args))
    model_id = f"{name}@{RANDOM_SUFFIX}" + (f"({shown})" if shown else "")
    return ModelSpec(name=name, model_id=model_id, load=name, pretrained=False, args=args)


def _named_model(name: str, at: str, base: Path, registry) -> ModelSpec:
    from fennec.backbone.loading import PACKAGED_MODELS

    if "@" in name and not name.startswith("hf-hub:"):
        from fennec.artifacts import sha256_file

        arch, _, file = name.partition("@")
        path = Path(file).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise SchemaError(f"{at}.name: weights file not found: {path}")
        res = registry.resolve(f"{arch}@{path}")
        if not res.resolved:
            raise SchemaError(f"{at}.name: {res.note}")
        return ModelSpec(
            name=name,
            model_id=f"{arch}@{path.name}",
            load=f"{arch}@{path}",
            weights_sha256=sha256_file(path),
        )
    res = registry.resolve(name)
    if not res.resolved:
        raise SchemaError(f"{at}.name: {name!r}: {res.note}")
    if name.lower() in PACKAGED_MODELS:
        return ModelSpec(name=name, model_id=res.model_id, load=name.lower())
    kind = str(registry.side_table([res.model_id])["kind"].iloc[0])
    if kind != "timm":
        raise SchemaError(
            f"{at}.name: {name!r} is {res.model_id} ({kind} weights), which a campaign cannot load; "
            "give a timm tag, a packaged model or NAME@WEIGHTS_FILE"
        )
    return ModelSpec(name=name, model_id=res.model_id, load=res.model_id)


# ------------------------------------------------------------------------------------------------- tasks
def parse_tasks(raw: Any, where: str, base: Path) -> tuple[TaskSpec, ...]:
    """Every task, then its class-subset tasks (``subsets = {classes, count, seed}``)."""
    from fennec.data.examples import list_example_tasks

    out: list[TaskSpec] = []
    for i, entry in enumerate(_entries(raw, "tasks", where)):
        at = f"{where}: tasks[{i}]"
        if isinstance(entry, str):
            entry = {"example": entry}
        if not isinstance(entry, Mapping):
            raise SchemaError(f"{at}: a table with example, folder or csv = ...; got {entry!r}")
        _check_keys(entry, {"example", "folder", "csv", "id", "subsets", "full"}, at)
        given = [k for k in ("example", "folder", "csv") if k in entry]
        if len(given) != 1:
            raise SchemaError(
                f"{at}: give exactly one of example, folder or csv; got {given or 'none'}"
            )
        kind, value = given[0], entry[given[0]]
        if not isinstance(value, str) or not value.strip():
            raise SchemaError(f"{at}.{kind}: a name or path (string); got {value!r}")
        if kind == "example":
            if value not in list_example_tasks():
                raise SchemaError(
                    f"{at}.example: unknown example task {value!r}; valid: "
                    f"{', '.join(list_example_tasks())}"
                )
            source, default_id = value, value
        else:
            path = Path(value).expanduser()
            path = path if path.is_absolute() else base / path
            if not (path.is_dir() if kind == "folder" else path.is_file()):
                raise SchemaError(
                    f"{at}.{kind}: {'folder' if kind == 'folder' else 'file'} not found: {path}"
                )
            source, default_id = str(path.resolve()), path.stem if kind == "csv" else path.name
        task_id = entry.get("id", default_id)
        if not isinstance(task_id, str) or safe_name(task_id) != task_id:
            raise SchemaError(f"{at}.id: a task id of letters, digits and ._+- ; got {task_id!r}")
        full = entry.get("full", True)
        if not isinstance(full, bool):
            raise SchemaError(f"{at}.full: true or false; got {full!r}")
        made = ([TaskSpec(task_id, kind, source)] if full else []) + _subsets(
            entry.get("subsets"), at, task_id, kind, source
        )
        if not made:
            raise SchemaError(f"{at}.full: false without subsets leaves no task")
        for t in made:
            if any(o.task_id == t.task_id for o in out):
                raise SchemaError(f"{at}.id: task {t.task_id!r} is listed twice")
            out.append(t)
    return tuple(out)


def _subsets(raw: Any, at: str, task_id: str, kind: str, source: str) -> list[TaskSpec]:
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        raise SchemaError(
            f"{at}.subsets: a table {{classes = N, count = K, seed = S}}; got {raw!r}"
        )
    _check_keys(raw, {"classes", "count", "seed"}, f"{at}.subsets")
    values = {
        "classes": raw.get("classes"),
        "count": raw.get("count", 1),
        "seed": raw.get("seed", 0),
    }
    for key, low in (("classes", 2), ("count", 1), ("seed", 0)):
        v = values[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise SchemaError(f"{at}.subsets.{key}: an integer >= {low}; got {v!r}")
    c, s = values["classes"], values["seed"]
    return [
        TaskSpec(
            f"{task_id}_{c}cls_s{s}k{k}", kind, source, classes=c, subset_seed=s, subset_index=k
        )
        for k in range(values["count"])
    ]


# ----------------------------------------------------------------------------------------------- recipes
def parse_recipes(
    raw: Any, where: str, task_ids: list[str] | None = None
) -> tuple[RecipeSpec, ...]:
    """``linear_probe``, ``finetune``, ``btune``, ``metric:<name>`` or ``py:MODULE:FUNCTION``, as strings or tables
    ``{kind = ..., label = ..., tasks = [...], <params>}`` (``tasks``: ids or fnmatch patterns of the tasks
    the recipe runs on; each must match one of ``task_ids``)."""
    out: list[RecipeSpec] = []
    for i, entry in enumerate(_entries(raw, "recipes", where)):
        at = f"{where}: recipes[{i}]"
        if isinstance(entry, str):
            entry = {"kind": entry}
        if not isinstance(entry, Mapping) or not isinstance(entry.get("kind"), str):
            raise SchemaError(f"{at}: a recipe name or a table with kind = ...; got {entry!r}")
        kind = entry["kind"].strip()
        params = {k: v for k, v in entry.items() if k not in ("kind", "label", "tasks")}
        _check_recipe(kind, params, at)
        tasks = _recipe_tasks(entry.get("tasks"), at, task_ids)
        label = entry.get("label", kind.replace(":", "_"))
        if not isinstance(label, str) or safe_name(label) != label:
            raise SchemaError(f"{at}.label: letters, digits and ._+- ; got {label!r}")
        if any(r.label == label for r in out):
            raise SchemaError(
                f"{at}.label: recipe label {label!r} is used twice (give each a label = ...)"
            )
        out.append(RecipeSpec(kind=kind, label=label, params=params, tasks=tasks))
    return tuple(out)


def _recipe_tasks(raw: Any, at: str, task_ids: list[str] | None) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(p, str) and p for p in raw):
        raise SchemaError(f"{at}.tasks: a non-empty list of task ids or patterns; got {raw!r}")
    from fnmatch import fnmatchcase

    for pattern in raw:
        if task_ids is not None and not any(fnmatchcase(t, pattern) for t in task_ids):
            raise SchemaError(
                f"{at}.tasks: {pattern!r} matches no task; tasks: {', '.join(task_ids)}"
            )
    return tuple(raw)


def _check_recipe(kind: str, params: dict[str, Any], at: str) -> None:
    if kind == "linear_probe":
        _check_keys(params, set(LINEAR_PROBE_PARAMS), at)
        if "C" in params and (
            isinstance(params["C"], bool)
            or not isinstance(params["C"], (int, float))
            or params["C"] <= 0
        ):
            raise SchemaError(f"{at}.C: a number > 0; got {params['C']!r}")
        if "max_iter" in params and (
            not isinstance(params["max_iter"], int) or params["max_iter"] < 1
        ):
            raise SchemaError(f"{at}.max_iter: an integer >= 1; got {params['max_iter']!r}")
    elif kind in ("finetune", "btune"):
        extra = set(BTUNE_PARAMS) if kind == "btune" else set()
        _check_keys(params, set(FINETUNE_PARAMS) | extra, at)
        if kind == "btune":
            _check_teachers(params.get("teachers"), at)
        from fennec.train.config import BTuningConfig

        try:
            BTuningConfig.from_dict({k: v for k, v in params.items() if k != "teachers"})
        except SchemaError as exc:
            raise SchemaError(f"{at}: {exc}") from None
    elif kind.startswith("metric:"):
        from fennec.transferability import METRICS, SOURCE_METRICS

        name = kind.partition(":")[2]
        if name not in METRICS and name not in SOURCE_METRICS:
            raise SchemaError(
                f"{at}.kind: unknown metric {name!r}; valid: "
                f"{', '.join(sorted({*METRICS, *SOURCE_METRICS}))}"
            )
        _check_keys(params, set(), at)
    elif kind.startswith("py:"):
        module, _, func = kind[3:].partition(":")
        if not module or not func.isidentifier():
            raise SchemaError(f"{at}.kind: expected py:MODULE:FUNCTION; got {kind!r}")
    else:
        raise SchemaError(
            f"{at}.kind: unknown recipe {kind!r}; valid: linear_probe, finetune, btune, metric:<name>, "
            "py:MODULE:FUNCTION"
        )


def _check_teachers(raw: Any, at: str) -> None:
    if not isinstance(raw, list) or not raw or not all(isinstance(t, str) and t.strip() for t in raw):
        raise SchemaError(f"{at}.teachers: btune needs a non-empty list of teacher model names; got {raw!r}")
