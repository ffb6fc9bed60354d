"""How a query task is placed: one :class:`Placement` per way of describing it. Arrays in, arrays out.

A placement scores the fitted models (by position) and the models without history (by their predicted
profile over the fitted columns, from :class:`~fennec.zoo.placement.ModelPlacer`), in the same standardised
units, and converts them to the task's units where those are known. Where the score of an unmeasured model
is an inner product with its augmented vector (a task of the history, the prior), ``index_query`` lets the
recommender take the top-K from the index instead of scoring every model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


@dataclass
class Placement:
    """The scores of one query task (module docstring).

    ``predict(positions)`` gives the standardised score of fitted models; ``measured`` maps positions to
    measured standardised scores (they override the prediction; ``source`` ``measured``); ``cold(P)`` scores
    profiles ``P`` (k, n_columns) of models without history; ``scale``/``offset`` convert a standardised
    score to the task's units (``offset + scale * z``); ``std`` (optional) gives the predictive standard
    deviation in standardised units.
    """

    kind: str
    predict: Callable[[np.ndarray], Array]
    cold: Callable[[Array], Array]
    source: str
    offset: float = 0.0
    scale: float = 1.0
    units: str = "standardised"
    measured: dict[int, float] = field(default_factory=dict)
    std: Callable[[np.ndarray], Array] | None = None
    cold_std: Callable[[Array], Array] | None = None
    index_query: tuple[npt.NDArray[np.float32], float] | None = None
    measured_raw: dict[int, float] | None = None
    measured_source: str = "measured"
    columns: tuple[str, ...] = ()
    how: str = ""
    info: dict[str, Any] = field(default_factory=dict)


def history_task(sub, Z: Array, cols: list[int], scaler, column_ids: list[str], *,
                 reconstruction: Array | None = None) -> Placement:
    """A task the fitted history measured, in the columns ``cols`` (one per campaign).

    A model measured in some of the columns gets the mean of its measured standardised scores; the others
    the subspace's prediction averaged over the columns, ``mu + b_i + mean(c) + u_i . mean(v)`` -- an inner
    product, so the top-K comes from the index. Units: those of the column with the most measured models.
    ``reconstruction`` (a zoo of unlinked parts, :mod:`fennec.subspace.components`): the predictions are its
    mean over the columns instead, and every model is scored (no index).
    """
    cols = list(cols)
    obs = np.isfinite(Z[:, cols])
    measured = {int(i): float(np.nanmean(Z[i, cols])) for i in np.flatnonzero(obs.any(axis=1))}
    ref = cols[int(np.argmax(obs.sum(axis=0)))]
    predict, index_query = _mean_prediction(sub, cols, reconstruction)
    return Placement(
        kind="history", source="subspace", predict=predict, cold=lambda P: P[:, cols].mean(axis=1),
        offset=float(scaler.mean[ref]), scale=float(scaler.std[ref]), units="task", measured=measured,
        index_query=index_query, columns=tuple(column_ids[j] for j in cols), info={"units_column": column_ids[ref]})


def prior(sub, *, reconstruction: Array | None = None) -> Placement:
    """No information about the task: the expected standardised score on a new task (mean task vector;
    with ``reconstruction``, its mean over every column, as in :func:`history_task`)."""
    predict, index_query = _mean_prediction(sub, list(range(len(sub.task_ids_))), reconstruction)
    return Placement(kind="prior", source="prior", predict=predict, cold=lambda P: P.mean(axis=1),
                     index_query=index_query,
                     how="no information about the task: the history prior (expected standardised score)")


def _mean_prediction(sub, cols: list[int], reconstruction: Array | None):
    """``(predict, index_query)`` of the fitted models' mean predicted score over ``cols``."""
    if reconstruction is not None:
        mean = reconstruction[:, cols].mean(axis=1)
        return (lambda pos: mean[pos]), None
    vbar, cbar = sub.task_vectors_[cols].mean(axis=0), float(sub.task_bias_[cols].mean())
    p, U = sub.model_prior(), sub.model_vectors_
    return (lambda pos: p[pos] + cbar + U[pos] @ vbar), (np.append(vbar, 1.0).astype(np.float32), cbar)


def from_scores(kind: str, source: str, z: Array, columns: Array, *, l2: float = 1.0, how: str = "",
                info: dict | None = None) -> Placement:
    """A placement given as a standardised score for every fitted model (a proxy projection).

    Models without history are scored by a ridge regression of ``z`` on the fitted models' completed
    profiles ``columns`` (n, n_columns), applied to their predicted profiles: a fit on the fitted models
    only, so a cold model's score depends on its own profile alone.
    """
    z = np.asarray(z, dtype=float)
    X = np.hstack([np.ones((len(columns), 1)), columns])
    pen = np.r_[0.0, np.full(columns.shape[1], l2)]
    beta = np.linalg.solve(X.T @ X + np.diag(pen), X.T @ z)
    return Placement(kind=kind, source=source, predict=lambda pos: z[pos],
                     cold=lambda P: np.hstack([np.ones((len(P), 1)), P]) @ beta, how=how, info=info or {})


def warm_start(columns: Array, rows: np.ndarray, values: Array, *, scale: float, lam: float, tau: float,
               moments) -> Callable[[Array | None], tuple[Placement, Any]]:
    """Warm start (:func:`fennec.query.warmstart.fold_in`) on the completed columns; returns a function of
    the extra (cold) profiles that builds the placement, since cold models are scored in the same fold-in.

    ``rows``/``values``: the measured models (positions in ``columns``) and their raw scores; scores come
    back in the units of ``values``.
    """
    from fennec.query.warmstart import fold_in

    def build(extra: Array | None) -> tuple[Placement, Any]:
        ws = fold_in(columns, rows, values, scale=scale, lam=lam, tau=tau, moments=moments, extra=extra)
        g = ws.gaussian_mean
        spread = ws.score.std()
        gain = g.std() / spread if spread > 1e-12 else 0.0
        # report the rank score in the task's units: rescale it to the Gaussian prediction's spread
        offset, slope = (ws.offset + g.mean()) * scale, gain * scale
        measured = {int(r): (float(v) / scale - ws.offset - g.mean()) / gain if gain else 0.0
                    for r, v in zip(rows, values, strict=True)}
        ex_score = ws.extra_score
        ex_std = ws.extra_gaussian_std
        place = Placement(
            kind="warm_start", source="warm_start", predict=lambda pos: ws.score[pos],
            cold=lambda P: ex_score[: len(P)] if ex_score is not None else np.zeros(len(P)),
            offset=offset, scale=slope, units="task", measured=measured,
            std=lambda pos: ws.gaussian_std[pos] / max(gain, 1e-12),
            cold_std=lambda P: ex_std[: len(P)] / max(gain, 1e-12) if ex_std is not None else np.full(len(P), np.nan),
            info={"offset": ws.offset, "task_weights": ws.task_weights.tolist()})
        return place, ws

    return build


def shrink(place: Placement, side: Array, weight: float) -> Placement:
    """The placement with every fitted model's score ``weight * score + (1 - weight) * side score``, the side
    score being ``place.cold`` of its out-of-fold side-information profile ``side[pos]`` (see
    :mod:`fennec.query.shrinkage`); measured results keep showing in ``measured``. The blend is no longer an
    inner product with the index vectors, so the top-K is taken over every model."""
    if weight >= 1.0:
        return place
    from dataclasses import replace

    side_z = place.cold(side)
    predict = place.predict
    measured = {p: weight * z + (1 - weight) * side_z[p] for p, z in place.measured.items()}
    how = (f"{place.how}; scores {weight:g} x history + {1 - weight:g} x side-information prior (the weight chosen "
           "on the zoo's campaigns of the same task)").lstrip("; ")
    return replace(place, predict=lambda pos: weight * predict(pos) + (1 - weight) * side_z[pos], measured=measured,
                   measured_raw=place.measured_raw or dict(place.measured), index_query=None, how=how,
                   source=f"{place.source}+side", measured_source="measured+side",
                   info={**place.info, "history_weight": weight})
