"""TaskProjector: from a task's proxy embedding to a predicted score for every model of the subspace.

Fit on the historical tasks (their embeddings, and the standardised history ``Z`` with the fitted
:class:`~fennec.subspace.factorization.TransferSubspace`), then :meth:`TaskProjector.predict` gives, for a new task's
embedding, the standardised score of every model (higher = better to fine-tune). Methods:

``mixture``        similarity-weighted mixture of the training tasks' standardised columns (completed by
                   the subspace): ``w = softmax(cos(e, e_t) / temperature)``, prediction ``C @ w``. A kernel
                   regression directly on the columns; ``temperature -> inf`` gives the history prior.
``ridge``          ridge regression from the (centred) embedding to the task's ``[c_j, v_j]``; prediction
                   ``mu + b_i + c + u_i . v``.
``kernel_ridge``   the same with an RBF kernel on the embeddings.
``random_forest``  the same with a random forest (what the Fennec authors' code uses, per image).
``collective``     side information inside the factorisation: the embeddings' top principal components,
                   standardised, are appended to ``Z`` as extra "models" (rows), one subspace is fitted on
                   both, and a new task is folded in from its principal components alone
                   (:meth:`TransferSubspace.fold_in_task`): ``v_j`` is tied to the embedding through the
                   shared factorisation.

Hyperparameters (``temperature``, ``alpha``, ``gamma``) set to ``"auto"`` are chosen by leave-one-task-out
over the *training* tasks (mean Kendall tau of the predicted against the observed column).

Distance check: :meth:`nearest` gives the cosine distance from a query to its nearest training task;
``max_distance_`` is the ``distance_quantile`` quantile of the training tasks' leave-one-out nearest-task
distances (times ``distance_margin``): the range of distances the method was validated on. Beyond it the
recommender falls back to the history prior.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from fennec.errors import NotFittedError, SchemaError
from fennec.proxy.base import l2_normalise

logger = logging.getLogger(__name__)

__all__ = ["METHODS", "TaskProjector"]

METHODS = ("mixture", "ridge", "kernel_ridge", "random_forest", "collective")
Array = npt.NDArray[np.float64]
_GRIDS = {"temperature": (0.02, 0.05, 0.1, 0.2, 0.5, np.inf), "alpha": (0.01, 0.1, 1.0, 10.0),
          "gamma": (1.0, 5.0, 20.0)}


def _kendall(pred: Array, truth: Array) -> float:
    from fennec.evaluation.rankmetrics import kendall_tau

    return kendall_tau(pred, truth)


class TaskProjector:
    """Map a proxy embedding to predicted standardised scores of every model (module docstring).

    Parameters
    ----------
    method : {"collective", "mixture", "ridge", "kernel_ridge", "random_forest"}, default "collective"
        The default won leave-one-task-out with the text proxy on four shipped histories
        (``benchmarks/proxy_eval.py``).
    temperature : float or "auto"
        Softmax temperature of ``mixture`` (on cosine similarities).
    alpha : float or "auto"
        Ridge penalty of ``ridge`` and ``kernel_ridge``.
    gamma : float or "auto"
        RBF kernel width of ``kernel_ridge`` (on unit vectors: ``exp(-gamma |x - y|^2)``).
    n_estimators : int
        Trees of ``random_forest``.
    n_side, side_weight : int, float
        Principal components appended by ``collective`` and their weight (standardised units).
    max_distance : float or "auto"
        Far-query threshold (cosine distance); ``"auto"`` calibrates it on the training tasks.
    distance_quantile, distance_margin : float
        ``max_distance_ = quantile(leave-one-out nearest distances, q) * margin``.
    random_state : int
    """

    def __init__(self, method: str = "collective", *, temperature: float | str = "auto", alpha: float | str = "auto",
                 gamma: float | str = "auto", n_estimators: int = 200, n_side: int = 5, side_weight: float = 1.0,
                 max_distance: float | str = "auto", distance_quantile: float = 1.0, distance_margin: float = 1.25,
                 random_state: int = 0) -> None:
        self.method = method
        self.temperature = temperature
        self.alpha = alpha
        self.gamma = gamma
        self.n_estimators = n_estimators
        self.n_side = n_side
        self.side_weight = side_weight
        self.max_distance = max_distance
        self.distance_quantile = distance_quantile
        self.distance_margin = distance_margin
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "method", "temperature", "alpha", "gamma", "n_estimators", "n_side", "side_weight", "max_distance",
            "distance_quantile", "distance_margin", "random_state")}

    # ------------------------------------------------------------------ fit
    def fit(self, embeddings: npt.ArrayLike, *, Z: npt.ArrayLike, subspace: Any,
            task_ids: list[str] | None = None, task_index: npt.ArrayLike | None = None) -> TaskProjector:
        """Fit on the training tasks.

        Parameters
        ----------
        embeddings : (n_tasks, d) array
            Proxy embeddings of the tasks, in the column order of ``Z``.
        Z : (n_models, n_tasks) array
            The standardised history (NaN where not measured).
        subspace : TransferSubspace
            Fitted on ``Z``.
        task_ids : list of str, optional
        task_index : array of int, optional
            Columns of the subspace's tasks that ``embeddings`` and ``Z`` correspond to (default: all, in
            order); tasks without an embedding are left out of the projector, not of the subspace.
        """
        if self.method not in METHODS:
            raise SchemaError(f"The 'method' parameter of TaskProjector must be one of {', '.join(METHODS)}. "
                              f"Got {self.method!r} instead.")
        E = l2_normalise(embeddings, what="task embeddings").astype(np.float64)
        Z = np.asarray(Z, dtype=float)
        if Z.ndim != 2 or Z.shape[1] != E.shape[0]:
            raise SchemaError(f"Z has shape {Z.shape} but there are {E.shape[0]} task embeddings "
                              "(one per column of Z expected)")
        if E.shape[0] < 3:
            raise SchemaError(f"a task projector needs at least 3 training tasks with embeddings, got {E.shape[0]}")
        self.embeddings_, self.Z_, self.subspace_ = E, Z, subspace
        self.task_ids_ = list(task_ids) if task_ids is not None else [str(j) for j in range(E.shape[0])]
        idx = np.arange(E.shape[0]) if task_index is None else np.asarray(task_index, dtype=np.intp)
        if idx.shape != (E.shape[0],):
            raise SchemaError(f"task_index has {idx.size} entries for {E.shape[0]} task embeddings")
        self.task_index_ = idx
        self._derive(subspace)
        self.params_ = self._select(E)
        self._fit_final(E)
        self.nn_distances_ = self._loo_nearest(E)
        if self.max_distance == "auto":
            q = float(np.quantile(self.nn_distances_, self.distance_quantile))
            self.max_distance_ = q * float(self.distance_margin)
        else:
            self.max_distance_ = float(self.max_distance)
        logger.info("task projector %s %s on %d tasks; far-query threshold %.3f (cosine distance)",
                    self.method, self.params_, E.shape[0], self.max_distance_)
        return self

    def _derive(self, subspace: Any) -> None:
        from fennec.query.warmstart import complete_columns

        idx = self.task_index_
        self.columns_ = complete_columns(self.Z_, subspace.reconstruct()[:, idx])
        self.targets_ = np.hstack([subspace.task_bias_[idx, None], subspace.task_vectors_[idx]])

    @staticmethod
    def _loo_nearest(E: Array) -> Array:
        S = E @ E.T
        np.fill_diagonal(S, -np.inf)
        return 1.0 - S.max(axis=1)

    def _grid(self) -> dict[str, tuple]:
        m = self.method
        names = {"mixture": ["temperature"], "ridge": ["alpha"], "kernel_ridge": ["alpha", "gamma"]}.get(m, [])
        grid: dict[str, tuple] = {}
        for name in names:
            value = getattr(self, name)
            if m == "kernel_ridge" and name == "alpha" and value == "auto":
                value = 0.1  # one knob at a time for the tiny training sets: the kernel width
            grid[name] = _GRIDS[name] if value == "auto" else (float(value),)
        return grid

    def _select(self, E: Array) -> dict[str, float]:
        from itertools import product

        grid = self._grid()
        combos = [dict(zip(grid, vals, strict=True)) for vals in product(*grid.values())] or [{}]
        if len(combos) == 1:
            return combos[0]
        obs = np.isfinite(self.Z_)
        T = E.shape[0]
        scores = []
        for params in combos:
            taus = []
            for t in range(T):
                keep = np.delete(np.arange(T), t)
                pred = self._fit_predict(E[keep], keep, E[t], params)
                ok = obs[:, t]
                if ok.sum() >= 3:
                    taus.append(_kendall(pred[ok], self.Z_[ok, t]))
            scores.append(float(np.nanmean(taus)) if taus else -np.inf)
        best = int(np.argmax(np.round(scores, 6)))
        self.selection_ = [{**p, "loto_kendall": s} for p, s in zip(combos, scores, strict=True)]
        return combos[best]

    # ------------------------------------------------------------------ methods
    def _predict_from_targets(self, t: Array) -> Array:
        sub = self.subspace_
        return sub.model_prior() + t[0] + sub.model_vectors_ @ t[1:]

    def _fit_predict(self, E: Array, cols: npt.NDArray[np.intp], q: Array, params: dict[str, float]) -> Array:
        """Fit on tasks ``cols`` (embeddings ``E``) and predict the column of query ``q``."""
        state = self._fit_state(E, cols, params)
        return self._predict_state(state, q)

    def _fit_state(self, E: Array, cols: npt.NDArray[np.intp], params: dict[str, float]) -> dict[str, Any]:
        m = self.method
        if m == "mixture":
            return {"E": E, "C": self.columns_[:, cols], "temperature": params["temperature"]}
        if m == "collective":
            return self._fit_collective(E, cols, params)
        Y = self.targets_[cols]
        if m == "ridge":
            from sklearn.linear_model import Ridge

            mu = E.mean(axis=0)
            return {"model": Ridge(alpha=params["alpha"]).fit(E - mu, Y), "mu": mu}
        if m == "kernel_ridge":
            from sklearn.kernel_ridge import KernelRidge

            ym = Y.mean(axis=0)
            kr = KernelRidge(alpha=params["alpha"], kernel="rbf", gamma=params["gamma"]).fit(E, Y - ym)
            return {"model": kr, "ym": ym}
        from sklearn.ensemble import RandomForestRegressor

        rf = RandomForestRegressor(n_estimators=int(self.n_estimators), random_state=self.random_state)
        return {"model": rf.fit(E, Y if Y.shape[1] > 1 else Y[:, 0])}

    def _predict_state(self, state: dict[str, Any], q: Array) -> Array:
        m = self.method
        if m == "mixture":
            s = state["E"] @ q
            T = state["temperature"]
            if not np.isfinite(T):
                w = np.full(len(s), 1.0 / len(s))
            else:
                w = np.exp((s - s.max()) / T)
                w /= w.sum()
            return state["C"] @ w
        if m == "collective":
            return self._predict_collective(state, q)
        if m == "ridge":
            t = state["model"].predict((q - state["mu"])[None])
        elif m == "kernel_ridge":
            t = state["model"].predict(q[None]) + state["ym"]
        else:
            t = state["model"].predict(q[None])
        return self._predict_from_targets(np.asarray(t, float).reshape(-1))

    def _fit_collective(self, E: Array, cols: npt.NDArray[np.intp], params: dict[str, float]) -> dict[str, Any]:
        from fennec.subspace.factorization import TransferSubspace

        mu = E.mean(axis=0)
        A = E - mu
        _, _, Vt = np.linalg.svd(A, full_matrices=False)
        k = max(1, min(int(self.n_side), len(cols) - 1))
        P = A @ Vt[:k].T
        sd = np.where(P.std(axis=0) > 1e-12, P.std(axis=0), 1.0)
        Zc = self.Z_[:, cols]
        aug = np.vstack([Zc, self.side_weight * (P / sd).T])
        if "side_rank" in params:  # chosen at fit time; rebuilding an artifact refits with it
            sub = TransferSubspace(int(params["side_rank"]), l2=float(params["side_l2"]),
                                   random_state=self.random_state).fit(aug)
        else:
            ranks = tuple(r for r in (1, 2, 3, 4, 6) if r <= min(aug.shape))
            n_folds = 3 if np.isfinite(aug).sum() >= 30 else 2
            sub = TransferSubspace("auto", l2="auto", candidate_ranks=ranks, n_folds=n_folds,
                                   random_state=self.random_state).fit(aug)
        return {"sub": sub, "mu": mu, "Vt": Vt[:k], "sd": sd, "n": Zc.shape[0]}

    def _predict_collective(self, state: dict[str, Any], q: Array) -> Array:
        n, k = state["n"], len(state["sd"])
        p = ((q - state["mu"]) @ state["Vt"].T) / state["sd"]
        fold = state["sub"].fold_in_task(np.arange(n, n + k), self.side_weight * p)
        return fold.prediction[:n]

    def _fit_final(self, E: Array) -> None:
        self.state_ = self._fit_state(E, np.arange(E.shape[0]), self.params_)
        if self.method == "collective" and "side_rank" not in self.params_:
            sub = self.state_["sub"]
            self.params_ = {"side_rank": sub.n_components_, "side_l2": sub.l2_}

    # ------------------------------------------------------------------ use
    def _check_fitted(self) -> None:
        if not hasattr(self, "state_"):
            raise NotFittedError("This TaskProjector is not fitted yet; call fit() first.")

    def _query(self, embedding: npt.ArrayLike) -> Array:
        q = np.asarray(embedding, dtype=float).ravel()
        d = self.embeddings_.shape[1]
        if q.shape != (d,):
            raise SchemaError(f"query embedding has shape {np.asarray(embedding).shape}; the task embeddings "
                              f"of this projector are {d}-d")
        return l2_normalise(q, what="query embedding").astype(np.float64)

    def predict(self, embedding: npt.ArrayLike) -> Array:
        """Predicted standardised score of every model (subspace model order) for one embedding."""
        self._check_fitted()
        return self._predict_state(self.state_, self._query(embedding))

    def nearest(self, embedding: npt.ArrayLike) -> tuple[str, float]:
        """``(task_id, cosine distance)`` of the nearest training task."""
        self._check_fitted()
        s = self.embeddings_ @ self._query(embedding)
        j = int(np.argmax(s))
        return self.task_ids_[j], float(1.0 - s[j])

    def is_far(self, embedding: npt.ArrayLike) -> bool:
        return self.nearest(embedding)[1] > self.max_distance_

    # ------------------------------------------------------------------ persistence
    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(params, arrays)`` that :meth:`from_state` rebuilds the projector from (no pickle).

        The fitted map is recomputed deterministically from the stored training data with the *selected*
        hyperparameters; ``check`` (predictions at the training embeddings) lets the loader verify it.
        """
        self._check_fitted()
        params = {"params": self.get_params(), "task_ids": self.task_ids_, "max_distance": self.max_distance_,
                  "selected": {k: (None if not np.isfinite(v) else v) for k, v in self.params_.items()}}
        check = np.stack([self._predict_state(self.state_, e) for e in self.embeddings_])
        return params, {"embeddings": self.embeddings_, "Z": self.Z_, "nn_distances": self.nn_distances_,
                        "task_index": self.task_index_.astype(np.int64), "check": check}

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray], subspace: Any) -> TaskProjector:
        from fennec.errors import ArtifactError

        proj = cls(**params["params"])
        E = np.asarray(arrays["embeddings"], float)
        proj.embeddings_, proj.Z_, proj.subspace_ = E, np.asarray(arrays["Z"], float), subspace
        proj.task_ids_ = list(params["task_ids"])
        proj.task_index_ = np.asarray(arrays["task_index"], dtype=np.intp)
        proj._derive(subspace)
        proj.params_ = {k: (np.inf if v is None else float(v)) for k, v in params["selected"].items()}
        proj._fit_final(E)
        proj.nn_distances_ = np.asarray(arrays["nn_distances"], float)
        proj.max_distance_ = float(params["max_distance"])
        check = np.stack([proj._predict_state(proj.state_, e) for e in E])
        if check.shape != arrays["check"].shape or not np.allclose(check, arrays["check"], atol=1e-5):
            raise ArtifactError("the task projector rebuilt from the artifact does not reproduce its stored "
                                f"predictions (max difference {np.max(np.abs(check - arrays['check'])):.3g}); "
                                "was it written by another version of scikit-learn or Fennec?")
        return proj
