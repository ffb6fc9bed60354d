"""Fine-tuning histories: the validated long table (:mod:`fennec.history.table`) and safe appends of new
results (:mod:`fennec.history.append`)."""

from fennec.history.append import add_history_row as add_history_row
from fennec.history.append import append_rows as append_rows
from fennec.history.table import KNOWN_METRICS as KNOWN_METRICS
from fennec.history.table import History as History
from fennec.history.table import HistoryWarning as HistoryWarning
from fennec.history.table import TaskScaler as TaskScaler
