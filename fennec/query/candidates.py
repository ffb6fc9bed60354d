"""Candidate models of a query: resolve the names, score the ones without history, assemble the table.

Every candidate name goes through the model registry (:mod:`fennec.zoo.registry`). A candidate the fitted
history measured keeps its score; a resolved one without history is placed from its side information
(``source="cold"``); a name the registry does not know is listed with ``source="unresolved"`` and the
reason (``strict=True`` raises instead). Two names for the same model are ranked once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from fennec.errors import SchemaError, UnknownIdError
from fennec.query.placements import Placement
from fennec.query.ranking import rank_table
from fennec.tabular import Table

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)


@dataclass
class CandidateSet:
    """Resolved candidates: ``known`` (input, model id, position among the scored models), ``cold``
    (input, model id) without history, ``unresolved`` (input, reason)."""

    known: list[tuple[str, str, int]] = field(default_factory=list)
    cold: list[tuple[str, str]] = field(default_factory=list)
    unresolved: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def resolved(self) -> dict[str, str]:
        return {i: m for i, m, _ in self.known} | {i: m for i, m in self.cold}


def parse_names(names: Sequence[str] | str) -> list[str]:
    """A comma-separated string or a sequence of names -> stripped, non-empty names."""
    items = names.split(",") if isinstance(names, str) else list(names)
    out = [str(n).strip() for n in items if str(n).strip()]
    if not out:
        raise SchemaError("no candidate models given")
    return out


def resolve_candidates(names: Sequence[str], registry, positions: dict[str, int], *, strict: bool = False
                       ) -> CandidateSet:
    """Resolve ``names``; ``positions`` maps the ids the query can score directly to their position."""
    out, seen = CandidateSet(), {}
    for res in registry.resolve_many(parse_names(names), strict=strict, what="candidate"):
        if not res.resolved:
            out.unresolved.append((res.name, res.note))
            continue
        if res.model_id in seen:
            out.notes.append(f"{res.name!r} and {seen[res.model_id]!r} are the same model ({res.model_id}); "
                             "ranked once")
            continue
        seen[res.model_id] = res.name
        if res.note:
            out.notes.append(f"{res.name}: {res.note}")
        if res.model_id in positions:
            out.known.append((res.name, res.model_id, positions[res.model_id]))
        else:
            out.cold.append((res.name, res.model_id))
    return out


def assemble(place: Placement, task_id: str, ids: list[str], *, positions: np.ndarray,
             inputs: list[str] | None = None, cold: tuple[list[str], list[str], np.ndarray] | None = None,
             unresolved: Sequence[tuple[str, str]] = ()) -> Table:
    """The ranking table of ``positions`` (fitted models), ``cold`` (inputs, ids, profiles) and unresolved
    names, in the placement's units."""
    positions = np.asarray(positions, dtype=np.intp)
    z = place.predict(positions) if len(positions) else np.zeros(0)
    std = place.std(positions) if place.std is not None and len(positions) else np.full(len(positions), np.nan)
    src = np.array([place.source] * len(positions), dtype=object)
    meas = np.full(len(positions), np.nan)
    raw = place.measured_raw or place.measured
    for k, p in enumerate(positions):
        if int(p) in place.measured:
            z[k], src[k], std[k] = place.measured[int(p)], place.measured_source, 0.0
            meas[k] = place.offset + place.scale * raw[int(p)]
    parts = [(ids_at(ids, positions), inputs or ids_at(ids, positions), z, src, meas, std, [""] * len(positions))]
    if cold is not None and len(cold[0]):
        c_in, c_ids, P = cold
        cz = place.cold(P)
        cstd = place.cold_std(P) if place.cold_std is not None else np.full(len(c_ids), np.nan)
        parts.append((c_ids, c_in, cz, ["cold"] * len(c_ids), np.full(len(c_ids), np.nan), cstd,
                      [""] * len(c_ids)))
    if unresolved:
        parts.append(([""] * len(unresolved), [u for u, _ in unresolved], np.full(len(unresolved), np.nan),
                      ["unresolved"] * len(unresolved), np.full(len(unresolved), np.nan),
                      np.full(len(unresolved), np.nan), [r for _, r in unresolved]))
    cat = [np.concatenate([np.asarray(p[k], dtype=object) for p in parts]) for k in range(7)]
    score = place.offset + place.scale * cat[2].astype(float)
    std_units = cat[5].astype(float) * abs(place.scale)
    return rank_table(task_id, cat[0], score, cat[3], measured=cat[4].astype(float), std=std_units,
                      inputs=cat[1], notes=cat[6])


def ids_at(ids: list[str], positions: np.ndarray) -> list[str]:
    return [ids[int(p)] for p in positions]


def index_positions(place: Placement, index, n: int, top_k: int) -> np.ndarray:
    """The positions that can hold the top ``top_k``: the index's top ``top_k + #measured`` by prediction
    (exact through the index) and every measured model (its measured score overrides the prediction)."""
    q, _ = place.index_query
    k = min(n, top_k + len(place.measured))
    _, pos = index.search(q, k)
    return np.unique(np.concatenate([pos[0], np.fromiter(place.measured, dtype=np.int64, count=len(place.measured))]))


def calibrate_metric(ranking: pd.DataFrame, metric_scores: pd.DataFrame) -> tuple[np.ndarray, dict]:
    """Map metric scores (e.g. LogME) onto the ranking's score scale.

    ``ranking``: ``model_id, score`` of the query's ranking; ``metric_scores``: ``model_id, score`` from a
    transferability metric, covering the models to place *and*, where weights exist, some ranked models.
    With at least 3 models in both, a least-squares line ``ranking ~ a + b * metric`` fitted on them
    (slope clipped at >= 0: a metric is "higher is better"); otherwise the metric's z-scores are matched
    to the mean and spread of the ranking's scores. Returns the calibrated scores (in ``metric_scores``
    order) and a description of the calibration.
    """
    m = metric_scores.set_index("model_id")["score"].astype(float)
    r = ranking.dropna(subset=["score"]).set_index("model_id")["score"].astype(float)
    both = [i for i in m.index if i in r.index]
    if len(both) >= 3 and m[both].std() > 0:
        b, a = np.polyfit(m[both].to_numpy(), r[both].to_numpy(), 1)
        b = max(b, 0.0)
        if b == 0.0:
            a = float(r[both].mean())
        return (a + b * m).to_numpy(), {"calibration": "linear", "n_models": len(both), "slope": b, "intercept": a}
    sd = m.std()
    z = (m - m.mean()) / sd if len(m) > 1 and sd > 0 else m * 0.0
    return (r.mean() + r.std() * z).to_numpy(), {"calibration": "moment-matched", "n_models": 0}


def metric_rows(frame: pd.DataFrame, specs: dict[str, str], images, labels, *, metric: str, task_id: str,
                cache_dir=None) -> tuple[pd.DataFrame, dict]:
    """Score ``specs`` (``{input name: weights spec}``) by ``metric`` on the labelled probe and calibrate
    them onto ``frame``'s scale; returns the new rows (``source`` = the metric) and the calibration."""
    import pandas as pd

    from fennec.transferability.scoring import score_models

    raw = {name: float(score_models([spec], images, labels, metric=metric, progress=False,
                                    cache_dir=cache_dir)["score"].iloc[0]) for name, spec in specs.items()}
    scored = pd.DataFrame({"model_id": list(raw), "score": list(raw.values())})
    values, info = calibrate_metric(frame[["model_id", "score"]], scored)
    rows = rank_table(task_id, list(raw), values, metric, notes=[f"{metric} {v:.4g} on the task's images"
                                                                for v in raw.values()]).to_frame()
    return rows, {"metric": metric, **info, "raw": raw}


def check_strict(cands: CandidateSet) -> None:
    if cands.unresolved:
        name, reason = cands.unresolved[0]
        raise UnknownIdError(f"unknown candidate {name!r}: {reason}")
