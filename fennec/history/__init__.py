"""Fine-tuning histories: the validated long table (:mod:`fennec.history.table`), per-task
standardisation (:mod:`fennec.history.scaler`) and safe appends of new results
(:mod:`fennec.history.append`). The names below load on first use: importing a part of the package
(the scaler, for a query) does not import the others (pandas, file locks)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fennec.history.append import add_history_row as add_history_row
    from fennec.history.append import append_rows as append_rows
    from fennec.history.scaler import TaskScaler as TaskScaler
    from fennec.history.table import KNOWN_METRICS as KNOWN_METRICS
    from fennec.history.table import History as History
    from fennec.history.table import HistoryWarning as HistoryWarning

_EXPORTS = {
    "add_history_row": "fennec.history.append",
    "append_rows": "fennec.history.append",
    "TaskScaler": "fennec.history.scaler",
    "KNOWN_METRICS": "fennec.history.table",
    "History": "fennec.history.table",
    "HistoryWarning": "fennec.history.table",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
