"""Reading a campaign spec: the TOML file, its top-level keys, the budget and the resources.

Every problem is one :class:`~fennec.errors.SchemaError` line naming the file and the key; relative paths
are relative to the spec file's folder. The entries of ``models``, ``tasks`` and ``recipes`` are validated
by :mod:`fennec.campaign.specparts`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fennec.campaign.spec import BUDGET_DEFAULTS, Budget, CampaignSpec, Resources, safe_name
from fennec.campaign.specparts import parse_models, parse_recipes, parse_tasks
from fennec.errors import SchemaError

__all__ = ["load_spec", "parse_spec"]

_TOP_KEYS = {
    "name",
    "out",
    "seeds",
    "recipes",
    "max_retries",
    "budget",
    "resources",
    "models",
    "tasks",
}


def load_spec(path: str | os.PathLike[str], *, registry=None) -> CampaignSpec:
    """Read and validate a TOML campaign spec (relative paths are relative to its folder)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        from fennec._optional import require

        tomllib = require("tomli", "tomli", purpose="reading a campaign spec on Python 3.10")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "campaign spec not found", str(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise SchemaError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return parse_spec(
        data, where=str(path), base=path.parent, default_name=path.stem, registry=registry
    )


def parse_spec(
    data: Mapping[str, Any],
    *,
    where: str = "<spec>",
    base: str | os.PathLike[str] = ".",
    default_name: str = "campaign",
    registry=None,
) -> CampaignSpec:
    """Validate a spec given as a mapping (the parsed TOML)."""
    base = Path(base)
    if not isinstance(data, Mapping):
        raise SchemaError(f"{where}: a spec is a table of keys; got {type(data).__name__}")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise SchemaError(
            f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(_TOP_KEYS))}"
        )
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip() or safe_name(name) != name.strip():
        raise SchemaError(
            f"{where}: name: a campaign name of letters, digits and ._+- ; got {name!r}"
        )
    out = data.get("out", f"runs/{name}")
    if not isinstance(out, str) or not out.strip():
        raise SchemaError(f"{where}: out: a folder path (string); got {out!r}")
    seeds = data.get("seeds", [0])
    if (
        not isinstance(seeds, list)
        or not seeds
        or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise SchemaError(f"{where}: seeds: a non-empty list of distinct integers; got {seeds!r}")
    retries = data.get("max_retries", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise SchemaError(f"{where}: max_retries: an integer >= 0; got {retries!r}")
    models = parse_models(data.get("models"), where, base, registry)
    tasks = parse_tasks(data.get("tasks"), where, base)
    return CampaignSpec(
        name=name.strip(),
        out=_resolve(base, out),
        seeds=tuple(seeds),
        max_retries=retries,
        budget=_budget(data.get("budget", {}), where),
        resources=_resources(data.get("resources", {}), where),
        models=models,
        tasks=tasks,
        recipes=parse_recipes(data.get("recipes"), where, [t.task_id for t in tasks]),
        path=where,
    )


def _resolve(base: Path, text: str) -> Path:
    p = Path(os.path.expanduser(text))
    # relative to the spec's folder, written without '..' segments (data/campaigns/../../runs/x -> runs/x)
    return p if p.is_absolute() else Path(os.path.normpath(base / p))


def _budget(raw: Any, where: str) -> Budget:
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{where}: budget: a table; got {raw!r}")
    unknown = sorted(set(raw) - set(BUDGET_DEFAULTS))
    if unknown:
        raise SchemaError(
            f"{where}: budget.{unknown[0]}: unknown key; valid keys: {', '.join(BUDGET_DEFAULTS)}"
        )
    values = {**BUDGET_DEFAULTS, **raw}
    lows = {
        "images": 4,
        "epochs": 1,
        "batch_size": 2,
        "threads": 1,
        "data_seed": 0,
        "image_size": 16,
    }
    for key, low in lows.items():
        v = values[key]
        if key == "image_size" and v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise SchemaError(f"{where}: budget.{key}: an integer >= {low}; got {v!r}")
    tf = values["test_fraction"]
    if isinstance(tf, bool) or not isinstance(tf, (int, float)) or not 0 < tf < 1:
        raise SchemaError(f"{where}: budget.test_fraction: a number in (0, 1); got {tf!r}")
    return Budget(**{**values, "test_fraction": float(tf)})


def _resources(raw: Any, where: str) -> Resources:
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{where}: resources: a table; got {raw!r}")
    unknown = sorted(set(raw) - {"num_cpus", "num_gpus"})
    if unknown:
        raise SchemaError(
            f"{where}: resources.{unknown[0]}: unknown key; valid keys: num_cpus, num_gpus"
        )
    out = {}
    for key, default, low in (("num_cpus", 1.0, 0.0), ("num_gpus", 0.0, 0.0)):
        v = raw.get(key, default)
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or v < low
            or (key == "num_cpus" and v == 0)
        ):
            raise SchemaError(
                f"{where}: resources.{key}: a number {'> 0' if key == 'num_cpus' else '>= 0'}; "
                f"got {v!r}"
            )
        out[key] = float(v)
    return Resources(**out)
