"""Evaluation: ranking metrics, baselines and protocols."""

from fennec.evaluation.protocols import (
    PROTOCOLS as PROTOCOLS,
    EvalConfig as EvalConfig,
    evaluate_history as evaluate_history,
    per_task_table as per_task_table,
    summarize as summarize,
)
from fennec.evaluation.rankmetrics import (
    CONVENTIONS as CONVENTIONS,
    kendall_tau as kendall_tau,
    pearson as pearson,
    ranking_metrics as ranking_metrics,
    regret_at_k as regret_at_k,
    rel_at_k as rel_at_k,
    spearman as spearman,
    weighted_tau as weighted_tau,
)
