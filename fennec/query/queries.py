"""The query pipeline behind :meth:`fennec.Recommender.query`: describe -> place -> score -> rank.

One function per way of describing a task builds a :class:`~fennec.query.placements.Placement`; candidates
are resolved through the model registry; models without history are placed from their side information;
:func:`~fennec.query.candidates.assemble` builds the table. Reads the fitted recommender, never writes it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np

from fennec.errors import SchemaError, UnknownIdError
from fennec.query import candidates as cand
from fennec.query import placements
from fennec.query.ranking import Ranking, rank_table

logger = logging.getLogger(__name__)

NO_FALLBACK = ("prior", "none")
#: below this probability, observed scores all <= 1 in a percent history are taken for fractions
UNITS_P = 0.01


def run_query(rec, *, task, observed, classnames, images, labels, embedding, candidates, candidates_file, top_k,
              fallback, proxy, max_images, seed, cache_dir, strict, task_id, progress) -> Ranking:
    given = [k for k, v in (("task", task), ("observed", observed), ("classnames", classnames),
                            ("images", images), ("embedding", embedding)) if v is not None]
    metric = _check_fallback(fallback, candidates, images)
    probe_only = metric is not None and len(given) > 1 and "images" in given  # images feed the metric only
    if probe_only:
        given.remove("images")
    if len(given) > 1:
        raise SchemaError(f"describe the task one way only; got {', '.join(given)}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise SchemaError(f"top_k must be a positive integer, got {top_k!r}")
    registry = rec.resolver() if candidates_file is None else rec.resolver().with_models(candidates_file)
    ids, extra, notes = list(rec.model_ids), {}, []
    warm = None
    if observed is not None:
        warm = _observed(rec, observed, registry, notes)
        ids = ids + warm["cold_ids"]
    positions = {m: i for i, m in enumerate(ids)}
    cs, specs, calib = None, {}, {}
    if candidates is not None:
        names, specs, calib, wnotes = _weights_candidates(cand.parse_names(candidates), registry, positions, metric)
        cs = cand.resolve_candidates(names, registry, positions, strict=strict)
        notes.extend(cs.notes + wnotes)
    cold_ids = [m for i, m in cs.cold if i not in specs] if cs else []
    P = rec.profiles(cold_ids, registry=registry) if cold_ids else np.zeros((0, len(rec.column_ids)))
    if warm is not None:
        place = warm["build"](P if len(P) else None)[0]
        place.how = (f"warm start from {len(observed)} measured model(s) (conditional Gaussian over the history's "
                     "columns + soft nearest-task mixture); scores in the units of the measured ones")
        name = task_id or "<new>"
    else:
        place, name, extra = _describe(rec, task=task, classnames=classnames, images=None if probe_only else images,
                                       labels=labels,
                                       embedding=embedding, fallback=fallback, proxy=proxy, max_images=max_images,
                                       seed=seed, cache_dir=cache_dir, task_id=task_id, progress=progress,
                                       scored_by=metric if specs else None)
    if warm is None and rec.history_weight_ < 1.0:
        place = placements.shrink(place, rec.side_profiles(), rec.history_weight_)
    table = _table(rec, place, name, ids, cs, specs, cold_ids, P, top_k)
    if warm is not None and cs is None:  # show the names the measured models were given as
        given = {m: n for n, m in warm["resolved"].items()}
        table = table.with_column("input", [given.get(m, "") for m in table["model_id"]])
    details = dict(place.info)
    if specs:
        table, calibration = _with_metric(table.to_frame(), specs, calib, images, labels, metric=metric, name=name,
                                          max_images=max_images, seed=seed, cache_dir=cache_dir, registry=registry)
        details["metric_fallback"] = calibration
        extra["fallback"] = extra.get("fallback") or metric
    ranking = Ranking(table=table, task_id=name, placement=place.kind, units=place.units, columns=place.columns,
                      how=place.how, resolved=cs.resolved if cs else (warm or {}).get("resolved", {}),
                      unresolved=dict(cs.unresolved) if cs else {}, notes=tuple(notes), details=details,
                      offset=place.offset, scale=place.scale, **extra)
    return ranking.top(top_k) if top_k is not None else ranking


def _check_fallback(fallback: str, candidates, images) -> str | None:
    if fallback in NO_FALLBACK:
        return None
    from fennec.transferability import METRICS

    if fallback not in METRICS:
        raise SchemaError(f"fallback must be 'prior', 'none' or a transferability metric ({', '.join(METRICS)}); "
                          f"got {fallback!r}")
    if candidates is None or images is None:
        raise SchemaError(f"fallback={fallback!r} scores candidates with weights on labelled images: give both "
                          "candidates and images")
    return fallback


def _table(rec, place, name, ids, cs, specs, cold_ids, P, top_k):
    if cs is None:
        n = len(ids)
        if top_k is not None and place.index_query is not None and top_k < n:
            pos = cand.index_positions(place, rec.index_, n, top_k)
        else:
            pos = np.arange(n)
        return cand.assemble(place, name, ids, positions=pos)
    known = [(i, p) for i, _, p in cs.known]
    cold_in = [i for i, m in cs.cold if i not in specs]
    return cand.assemble(place, name, ids, positions=np.array([p for _, p in known], dtype=np.intp),
                         inputs=[i for i, _ in known], cold=(cold_in, cold_ids, P), unresolved=cs.unresolved)


# ---------------------------------------------------------------------------- ways to describe a task
def _describe(rec, *, task, classnames, images, labels, embedding, fallback, proxy, max_images, seed, cache_dir,
              task_id, progress, scored_by=None):
    """Placement, task name and extra Ranking fields for every description but observed scores (``scored_by``:
    the metric that scores some candidates on the images, if any)."""
    from fennec.proxy.query import embed_task_query, task_input

    if task is not None:
        cols = _task_columns(rec, task)
        if cols:
            place = placements.history_task(rec.subspace_, rec.Z_, cols, rec.scaler_, rec.column_ids,
                                            reconstruction=_unlinked(rec))
            place.how = (f"a task of the history (column{'s' if len(cols) > 1 else ''} {', '.join(place.columns)}): "
                         "measured results where they exist, subspace predictions elsewhere")
            return place, task_id or rec.columns_.task_of(rec.column_ids[cols[0]]), {}
        if rec.projector_ is None:
            raise UnknownIdError(_unknown_task(rec, task))
    if task is None and classnames is None and images is None and embedding is None:
        return placements.prior(rec.subspace_, reconstruction=_unlinked(rec)), task_id or "<new>", {}
    if embedding is not None:
        return _proxy_placement(rec, embedding, "a precomputed embedding", fallback, task_id)
    query = task_input(images=images, labels=labels, classnames=classnames, task=task, task_id=task_id)
    emb, how = embed_task_query(rec.proxy_identity, query, proxy=proxy, max_images=max_images, seed=seed,
                                cache_dir=cache_dir, progress=progress, scored_by=scored_by)
    return _proxy_placement(rec, emb, how, fallback, task_id or query.task_id)


def _unlinked(rec):
    """The reconstruction to score fitted models from when the zoo has unlinked parts (else None: the
    subspace's inner products, and the index, are exact)."""
    return rec.reconstruction_ if rec.identified_ is not None else None


def _task_columns(rec, task: str) -> list[int]:
    from fennec.data.shipped import canonical_task_id

    if task in rec.column_ids:
        return [rec.column_ids.index(task)]
    return rec.columns_.of_task(canonical_task_id(task))


def _unknown_task(rec, task: str) -> str:
    import difflib

    close = difflib.get_close_matches(task, rec.task_ids, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (f"unknown task {task!r}: not in the history ({len(rec.task_ids)} tasks){hint}; this artifact has no "
            "task proxy to place a new task by its class names (fit it with --text-proxy)")


def _proxy_placement(rec, embedding, how, fallback, task_id):
    from fennec.proxy.base import TaskEmbedding, check_same_proxy

    if rec.projector_ is None:
        raise SchemaError("this recommender has no task projector: fit it with task embeddings "
                          "(fennec fit --text-proxy or --task-embeddings FILE)")
    identity = None
    if isinstance(embedding, TaskEmbedding):
        identity, task_id, vector = embedding.identity, task_id or embedding.task_id, embedding.vector
    else:
        vector = np.asarray(embedding, dtype=float)
    check_same_proxy(rec.proxy_identity, identity, where="query")
    proj = rec.projector_
    nearest, dist = proj.nearest(vector)
    far = dist > proj.max_distance_ and fallback != "none"
    name = task_id or "<new>"
    if far:
        logger.warning("task %s is far from every historical task (cosine distance %.3f to %s > threshold %.3f): "
                       "ranking by the history prior instead", name, dist, nearest, proj.max_distance_)
        place = placements.prior(rec.subspace_, reconstruction=_unlinked(rec))
    else:
        place = placements.from_scores("proxy", "proxy", proj.predict(vector), rec.completed_, l2=rec.config.cold_l2,
                                       info={"projector": proj.method})
    place.how = (f"placed by {how}; nearest historical task {nearest} (cosine distance {dist:.3f}, threshold "
                 f"{proj.max_distance_:.3f}); scores: "
                 + ("history prior (too far)" if far else f"{proj.method} projector") + ", standardised units")
    extra = {"nearest_task": nearest, "nearest_distance": float(dist), "max_distance": float(proj.max_distance_),
             "proxy": rec.proxy_identity, "fallback": "prior" if far else None}
    return place, name, extra


# ---------------------------------------------------------------------------- warm start
def _observed(rec, observed: Mapping[str, float], registry, notes: list[str]) -> dict:
    """Resolve the measured models (any the registry knows; those without history are placed cold) and
    return the warm-start builder."""
    from fennec.query.warmstart import column_moments

    if not isinstance(observed, Mapping) or not observed:
        raise SchemaError("observed must be a non-empty mapping {model: score}")
    values: dict[str, tuple[str, float]] = {}
    for name, v in observed.items():
        res = registry.resolve(name)
        if not res.resolved:
            raise UnknownIdError(f"observed model {name!r}: {res.note}")
        fv = _number(name, v)
        prev = values.get(res.model_id)
        if prev is not None and not math.isclose(prev[1], fv):
            raise SchemaError(f"observed scores {prev[0]}={prev[1]:g} and {name}={fv:g} are for the same model "
                              f"({res.model_id}); give one")
        values[res.model_id] = (name, fv)
        if res.note:
            notes.append(f"{name}: {res.note}")
    fitted = {m: i for i, m in enumerate(rec.model_ids)}
    cold_ids = [m for m in values if m not in fitted]
    C = rec.completed_
    moments = rec.moments_
    if cold_ids:
        C = np.vstack([C, rec.profiles(cold_ids, registry=registry)])
        moments = column_moments(C)
        notes.append(f"no history for {', '.join(cold_ids)}: placed from side information, then folded in")
    pos = fitted | {m: len(fitted) + k for k, m in enumerate(cold_ids)}
    rows = np.array([pos[m] for m in values], dtype=np.intp)
    vals = np.array([v for _, v in values.values()], dtype=float)
    notes.extend(_unit_notes(vals, rec.scaler_.mean, rec.scaler_.inverse_transform(rec.Z_)))
    build = placements.warm_start(C, rows, vals, scale=float(np.median(rec.scaler_.std)), lam=rec.config.warm_lam,
                                  tau=rec.config.warm_tau, moments=moments)
    return {"cold_ids": cold_ids, "build": build, "resolved": {n: m for m, (n, _) in values.items()}}


def _number(name: str, value) -> float:
    try:
        fv = float(value)
    except (TypeError, ValueError):
        raise SchemaError(f"observed score of {name!r} must be a number, got {value!r}") from None
    if not np.isfinite(fv):
        raise SchemaError(f"observed score of {name!r} must be finite, got {value!r}")
    return fv


def _unit_notes(values: np.ndarray, task_means: np.ndarray, cells: np.ndarray) -> list[str]:
    """A warning when the observed scores look like fractions for a history in percent, or the reverse.

    Scores of at most 1 % do occur in a percent history (runs that collapse to chance); they are taken for
    fractions only when the history makes that many of them improbable (each observed score as likely to
    be so low as a measured cell of the history, all of them together under :data:`UNITS_P`)."""
    typical = float(np.median(task_means))
    measured = cells[np.isfinite(cells)]
    low = float(np.mean(measured <= 1.0)) if measured.size else 0.0
    if typical > 1.5 and np.all((values >= 0) & (values <= 1.0)) and low ** len(values) < UNITS_P:
        msg = (f"the observed scores are all in [0, 1] but the history's scores are percentages (median task "
               f"mean {typical:.1f}): if they are fractions, multiply them by 100")
    elif typical <= 1.5 and np.any(values > 1.5):
        msg = (f"some observed scores exceed 1.5 but the history's scores are fractions in [0, 1] (median task "
               f"mean {typical:.2f}): if they are percentages, divide them by 100")
    else:
        return []
    logger.warning(msg)
    return [msg]


# ---------------------------------------------------------------------------- transferability-metric fallback
PACKAGED = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")


def _weights_candidates(names: list[str], registry, positions: dict[str, int], metric: str | None):
    """Split candidates with weights for the metric fallback: ``NAME@FILE`` of a fitted model calibrates the
    metric (the model keeps its ranking score); a packaged model or ``NAME@FILE`` without history is scored by
    the metric. Returns (names to resolve, {input: spec} to score, {fitted id: spec} to calibrate, notes)."""
    if metric is None:
        return names, {}, {}, []
    out, specs, calib, notes = [], {}, {}, []
    for c in names:
        base, sep, wfile = c.partition("@")
        res = registry.resolve(base)
        fitted = res.resolved and res.model_id in positions
        arch = registry.arch_of(res.model_id) if res.resolved else base
        if sep and fitted:
            if not arch:
                raise SchemaError(f"cannot load weights for {res.model_id!r}: its timm architecture is unknown")
            calib[res.model_id] = f"{arch}@{wfile}"
            notes.append(f"{c}: the weights of {res.model_id}, scored by {metric} to calibrate it onto the ranking")
            out.append(base)
        elif (sep or c in PACKAGED) and not fitted:
            specs[c] = f"{arch or base}@{wfile}" if sep else c
            out.append(c)
        else:
            out.append(c)
    return out, specs, calib, notes


def _with_metric(frame, specs, calib, images, labels, *, metric, name, max_images, seed, cache_dir, registry):
    """Score ``specs`` (and ``calib``, the fitted models given with weights) by ``metric`` on the labelled
    probe, calibrate onto the ranking and put the new rows in."""
    import pandas as pd

    from fennec.proxy.query import task_input

    probe = task_input(images=images, labels=labels)
    idx = probe.sample(max_images, seed=seed)
    imgs, y = probe.load(idx), probe.labels[idx]
    rows, info = cand.metric_rows(frame, {**calib, **specs}, imgs, y, metric=metric, task_id=name,
                                  cache_dir=cache_dir)
    rows = rows[rows["model_id"].isin(specs)].copy()
    rows["input"] = rows["model_id"]
    rows["model_id"] = [registry.canonical(m) for m in rows["input"]]
    merged = pd.concat([frame[~frame["input"].isin(specs)], rows], ignore_index=True)
    out = rank_table(name, merged["model_id"], merged["score"], merged["source"], measured=merged["measured"],
                     std=merged["std"], inputs=merged["input"], notes=merged["note"])
    logger.info("%s fallback for %s (%s calibration on %d models)", metric, list(specs), info["calibration"],
                info["n_models"])
    return out, info
