"""Evaluation: ranking metrics, baselines and protocols -- all of them through :meth:`fennec.Recommender.query`."""

from fennec.evaluation.protocols import PROTOCOLS as PROTOCOLS
from fennec.evaluation.protocols import EvalConfig as EvalConfig
from fennec.evaluation.protocols import evaluate_history as evaluate_history
from fennec.evaluation.protocols import per_task_table as per_task_table
from fennec.evaluation.protocols import summarize as summarize
from fennec.evaluation.rankmetrics import CONVENTIONS as CONVENTIONS
from fennec.evaluation.rankmetrics import kendall_tau as kendall_tau
from fennec.evaluation.rankmetrics import pearson as pearson
from fennec.evaluation.rankmetrics import ranking_metrics as ranking_metrics
from fennec.evaluation.rankmetrics import regret_at_k as regret_at_k
from fennec.evaluation.rankmetrics import rel_at_k as rel_at_k
from fennec.evaluation.rankmetrics import spearman as spearman
from fennec.evaluation.rankmetrics import weighted_tau as weighted_tau
from fennec.evaluation.zoo import evaluate_zoo as evaluate_zoo
