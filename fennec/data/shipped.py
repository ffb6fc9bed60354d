"""The shipped data: published fine-tuning histories, the models and tasks tables, class names.

Files live in the repository's ``data/`` folder (see ``data/PROVENANCE.md``); set ``FENNEC_DATA_DIR`` to
use another copy. Every history is a long CSV in ``data/histories/<name>.csv``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from fennec.errors import FennecError, UnknownIdError

if TYPE_CHECKING:
    import pandas as pd

    from fennec.history.table import History

logger = logging.getLogger(__name__)

#: The history used when none is named: the SFDA benchmark family (CNNs, self-supervised ResNet-50s, ViTs).
DEFAULT_HISTORY = "sfda"


def data_dir() -> Path:
    """The folder holding the shipped data (``$FENNEC_DATA_DIR`` or the repository's ``data/``)."""
    env = os.environ.get("FENNEC_DATA_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "data"
    if not (path / "histories").is_dir():
        raise FennecError(
            f"shipped data not found in {path} (expected {path / 'histories'}); "
            "install Fennec from a clone of its repository (pip install -e .) or set FENNEC_DATA_DIR")
    return path


def list_histories() -> list[str]:
    """Names of the shipped histories (``fennec fit NAME`` accepts them in place of a CSV path)."""
    return sorted(p.stem for p in (data_dir() / "histories").glob("*.csv"))


def history_path(name: str) -> Path:
    names = list_histories()
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownIdError(f"unknown shipped history {name!r}; available: {', '.join(names)}{hint}")
    return data_dir() / "histories" / f"{name}.csv"


def load_history(name_or_path: str | os.PathLike[str] = DEFAULT_HISTORY, **kwargs) -> History:
    """A shipped history by name (``"sfda"``, ``"parc"``, ...) or any long CSV by path."""
    from fennec.history.table import History

    text = os.fspath(name_or_path)
    looks_like_path = text.endswith((".csv", ".gz")) or os.sep in text or Path(text).exists()
    path = Path(text) if looks_like_path else history_path(text)
    history = History.from_csv(path, **kwargs)
    return history if looks_like_path else replace(history, name=text)


def load_histories(spec: str | os.PathLike[str], **kwargs) -> list[History]:
    """Histories from a spec: ``all`` (every shipped history), a comma-separated list of names and paths,
    or one name or path."""
    text = os.fspath(spec)
    if text == "all":
        return [load_history(n, **kwargs) for n in list_histories()]
    parts = [p.strip() for p in text.split(",") if p.strip()] if "," in text and not Path(text).exists() else [text]
    if not parts:
        raise UnknownIdError(f"no history named in {text!r}")
    return [load_history(p, **kwargs) for p in parts]


@lru_cache(maxsize=1)
def _models_table() -> pd.DataFrame:
    import pandas as pd

    path = data_dir() / "models.csv"
    return pd.read_csv(path, dtype={"model_id": str, "timm_arch": str, "timm_model": str}, keep_default_na=False,
                       na_values={c: [""] for c in ("params_m", "gmacs", "imagenet_top1")})


def load_models() -> pd.DataFrame:
    """The models table: ``model_id, timm_arch, timm_model, pretraining, ..., params_m, gmacs, imagenet_top1``."""
    return _models_table().copy()


def load_tasks() -> pd.DataFrame:
    """The tasks table: ``task_id, display_name, n_classes, domain, multi_label, histories``."""
    import pandas as pd

    return pd.read_csv(data_dir() / "tasks.csv", keep_default_na=False, na_values={"n_classes": [""]})


def load_classnames() -> dict[str, list[str]]:
    """Class names of public benchmarks in label order (``data/classnames/classnames.json``)."""
    with open(data_dir() / "classnames" / "classnames.json", encoding="utf-8") as fh:
        return json.load(fh)


def canonical_task_id(task_id: str) -> str:
    """Map another spelling of a benchmark id to Fennec's canonical one (``oxford_iiit_pet`` -> ``pets``)."""
    with open(data_dir() / "classnames" / "aliases.json", encoding="utf-8") as fh:
        aliases = json.load(fh)
    key = task_id.strip().lower()
    return aliases.get(key, key)


def model_side_table(model_ids: list[str]) -> pd.DataFrame:
    """Side information for ``model_ids`` (rows in that order; NaN where unknown)."""
    table = _models_table().set_index("model_id")
    return table.reindex(model_ids)
