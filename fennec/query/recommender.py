"""The recommender: a history fitted into a transfer subspace, an index over its models, and rankings.

``Recommender.fit(history)`` standardises each task, fits :class:`~fennec.subspace.factorization.TransferSubspace`
and builds a :class:`~fennec.subspace.index.ModelIndex` over the augmented model vectors. Rankings come back as
:class:`pandas.DataFrame` with the columns ``task_id, rank, model_id, score, source, measured, std``:

- ``score``: the value the ranking sorts by, in the task's units (e.g. accuracy %) where they are known;
- ``source``: ``measured`` (the score is a fine-tuning result from the history or given by the user),
  ``subspace`` (predicted from the subspace for a task of the history), ``warm_start`` (predicted from
  the user's measured scores on a new task), ``proxy`` (predicted from the new task's proxy embedding --
  its images or class names -- by the task projector, in standardised units), or ``prior`` (no
  information about the task, or a proxy query too far from every historical task: the model's
  expected standardised score on a new task);
- ``measured``: the measured result where one exists (NaN otherwise); ``std``: a predictive standard
  deviation where the method gives one (warm start).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fennec.errors import ArtifactError, NotFittedError, SchemaError, UnknownIdError
from fennec.history.table import History, TaskScaler
from fennec.subspace.factorization import TransferSubspace
from fennec.subspace.index import ModelIndex

logger = logging.getLogger(__name__)

RANKING_COLUMNS = ["task_id", "rank", "model_id", "score", "source", "measured", "std"]


@dataclass(frozen=True)
class RecommenderConfig:
    """Hyperparameters of a :class:`Recommender` (stored in the artifact manifest)."""

    n_components: int | str = "auto"
    l2: float | str = "auto"
    bias_l2: float = 1.0
    candidate_ranks: tuple[int, ...] = (0, 1, 2, 3, 4, 6, 8)
    candidate_l2: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0)
    n_folds: int = 5
    max_iter: int = 200
    tol: float = 1e-7
    seed: int = 0
    index_backend: str = "faiss"
    index_factory: str = "Flat"
    warm_lam: float = 1.0
    warm_tau: float = 1.0
    projector: str = "collective"
    projector_max_distance: float | str = "auto"
    projector_margin: float = 1.25

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping) -> RecommenderConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ArtifactError(f"unknown RecommenderConfig key(s) {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def subspace(self) -> TransferSubspace:
        return TransferSubspace(
            self.n_components, l2=self.l2, bias_l2=self.bias_l2, candidate_ranks=self.candidate_ranks,
            candidate_l2=self.candidate_l2, n_folds=self.n_folds, max_iter=self.max_iter, tol=self.tol,
            random_state=self.seed)


@dataclass
class Recommender:
    """Fit on a history, then rank models for a known task, a warm-start task, or no task information."""

    config: RecommenderConfig = field(default_factory=RecommenderConfig)

    # ------------------------------------------------------------------ fit
    def fit(self, history: History, task_embeddings=None, *, proxy_identity=None) -> Recommender:
        """Fit the subspace on ``history``; with ``task_embeddings`` also the task projector.

        ``task_embeddings``: a :class:`~fennec.proxy.TaskEmbeddings` (or its file path), a dict
        ``task_id -> vector`` or a DataFrame indexed by task id (the proxy identity then comes from
        ``proxy_identity`` or ``df.attrs["proxy_identity"]``). Task ids are matched exactly or through
        their canonical benchmark id; history tasks without an embedding are left out of the projector.
        """
        Y, model_ids, task_ids = history.to_matrix()
        if len(model_ids) < 2:
            raise SchemaError(f"{history.name}: need at least 2 models to rank, got {len(model_ids)}")
        self.history_ = history
        self.scaler_ = TaskScaler.fit(Y)
        self.subspace_ = self.config.subspace().fit(self.scaler_.transform(Y), model_ids=model_ids, task_ids=task_ids)
        self._build_index()
        logger.info("fitted %d models x %d tasks (%d cells), rank %d, l2 %g", len(model_ids), len(task_ids),
                    history.n_cells, self.subspace_.n_components_, self.subspace_.l2_)
        self.projector_, self.task_embeddings_ = None, None
        if task_embeddings is not None:
            self._fit_projector(task_embeddings, proxy_identity)
        from fennec.query.candidates import fit_placer

        fit_placer(self)
        return self

    def _fit_projector(self, task_embeddings, proxy_identity) -> None:
        from fennec.proxy.projector import TaskProjector
        from fennec.proxy.store import TaskEmbeddings

        emb = TaskEmbeddings.coerce(task_embeddings, identity=proxy_identity)
        if proxy_identity is not None and emb.identity is not None:
            from fennec.proxy.base import check_same_proxy

            check_same_proxy(emb.identity, proxy_identity, where="task embeddings")
        if emb.identity is None:
            logger.warning("task embeddings carry no proxy identity: queries cannot be checked against them")
        tasks = self.subspace_.task_ids_
        E, missing = emb.lookup(tasks)
        have = np.array([t not in missing for t in tasks])
        if missing:
            logger.warning("%d task(s) of the history have no embedding and are left out of the task projector: %s",
                           len(missing), ", ".join(missing[:10]))
        if have.sum() < 3:
            raise SchemaError(f"only {int(have.sum())} of the history's {len(tasks)} tasks have an embedding "
                              f"(ids {', '.join(emb.task_ids[:5])}...); the task projector needs at least 3")
        idx = np.flatnonzero(have)
        Y, _, _ = self.history_.to_matrix()
        cfg = self.config
        self.projector_ = TaskProjector(cfg.projector, max_distance=cfg.projector_max_distance,
                                        distance_margin=cfg.projector_margin, random_state=cfg.seed).fit(
            E[idx], Z=self.scaler_.transform(Y)[:, idx], subspace=self.subspace_,
            task_ids=[tasks[i] for i in idx], task_index=idx)
        self.task_embeddings_ = emb

    @property
    def proxy_identity(self) -> dict | None:
        """Identity of the proxy the task embeddings were made with (None without a projector)."""
        emb = getattr(self, "task_embeddings_", None)
        return None if emb is None else emb.identity

    def _build_index(self) -> None:
        self.index_ = ModelIndex(backend=self.config.index_backend, factory=self.config.index_factory).build(
            self.subspace_.augmented_model_vectors(), self.subspace_.model_ids_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "subspace_"):
            raise NotFittedError("This Recommender is not fitted yet; call fit() or Recommender.load().")

    @property
    def model_ids(self) -> list[str]:
        self._check_fitted()
        return list(self.subspace_.model_ids_)

    @property
    def task_ids(self) -> list[str]:
        self._check_fitted()
        return list(self.subspace_.task_ids_)

    # ------------------------------------------------------------------ rankings
    def _frame(self, task_id: str, model_ids, score, source, measured, std, top_k: int | None) -> pd.DataFrame:
        df = pd.DataFrame({"task_id": task_id, "model_id": model_ids, "score": np.asarray(score, float),
                           "source": source, "measured": np.asarray(measured, float), "std": np.asarray(std, float)})
        df = df.sort_values(["score", "model_id"], ascending=[False, True], kind="stable").reset_index(drop=True)
        df.insert(1, "rank", np.arange(1, len(df) + 1))
        if top_k is not None:
            df = df.head(self._check_k(top_k))
        return df[RANKING_COLUMNS]

    def _check_k(self, top_k: int) -> int:
        n = len(self.subspace_.model_ids_)
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise SchemaError(f"top_k must be a positive integer, got {top_k!r}")
        if top_k > n:
            raise SchemaError(f"top_k={top_k} is larger than the number of models in the artifact ({n})")
        return int(top_k)

    def _search_all(self, query: np.ndarray) -> np.ndarray:
        """Inner products of ``query`` with every model, in model order (through the index)."""
        n = len(self.subspace_.model_ids_)
        D, idx = self.index_.search(query, n)
        out = np.empty(n)
        out[idx[0]] = D[0]
        return out

    def rank_task(self, task_id: str, *, top_k: int | None = None, prefer_measured: bool = True) -> pd.DataFrame:
        """Rank every model for a task of the history; measured results are used where they exist."""
        self._check_fitted()
        tasks = self.subspace_.task_ids_
        if task_id not in tasks:
            import difflib

            close = difflib.get_close_matches(task_id, tasks, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownIdError(f"unknown task {task_id!r}: not in the history ({len(tasks)} tasks){hint}")
        j = tasks.index(task_id)
        s = self._search_all(self.subspace_.task_query(j)) + self.subspace_.task_bias_[j]
        pred = s * self.scaler_.std[j] + self.scaler_.mean[j]
        Y, _, _ = self.history_.to_matrix()
        measured = Y[:, j]
        use = np.isfinite(measured) & prefer_measured
        score = np.where(use, measured, pred)
        source = np.where(use, "measured", "subspace")
        return self._frame(task_id, self.model_ids, score, source, measured, np.full(len(score), np.nan), top_k)

    def rank_prior(self, *, top_k: int | None = None, task_id: str = "<new>") -> pd.DataFrame:
        """Rank for a new task with no information about it (the subspace's cold-task prediction).

        Scores are in standardised units (a model's expected z-score on a new task).
        """
        self._check_fitted()
        n = len(self.model_ids)
        s = self._search_all(self.subspace_.mean_task_query()) + self.subspace_.task_bias_.mean()
        return self._frame(task_id, self.model_ids, s, "prior", np.full(n, np.nan), np.full(n, np.nan), top_k)

    def rank_embedding(self, embedding, *, top_k: int | None = None, task_id: str | None = None,
                       proxy_identity: Mapping | None = None, fallback: bool = True) -> pd.DataFrame:
        """Rank every model for a new task from its proxy embedding (images or class names).

        ``embedding``: a :class:`~fennec.proxy.TaskEmbedding` (its identity is checked against the
        artifact's proxy) or a ``(d,)`` array (give ``proxy_identity`` to have it checked). Scores are
        standardised (a model's predicted z-score on the task), ``source="proxy"``. When the query's
        cosine distance to its nearest historical task exceeds the projector's threshold (and
        ``fallback``), the ranking is the prior (``source="prior"``) and a warning is logged.
        ``DataFrame.attrs`` holds ``nearest_task``, ``nearest_distance``, ``max_distance``, ``fallback``.
        """
        from fennec.proxy.base import TaskEmbedding, check_same_proxy

        self._check_fitted()
        if getattr(self, "projector_", None) is None:
            raise SchemaError("this recommender has no task projector: fit it with task embeddings "
                              "(fennec fit --text-proxy or --task-embeddings FILE)")
        if isinstance(embedding, TaskEmbedding):
            proxy_identity = embedding.identity if proxy_identity is None else proxy_identity
            task_id = task_id or embedding.task_id
            embedding = embedding.vector
        task_id = task_id or "<new>"
        check_same_proxy(self.proxy_identity, proxy_identity, where="rank_embedding")
        nearest, dist = self.projector_.nearest(embedding)
        far = dist > self.projector_.max_distance_
        if far and fallback:
            logger.warning("task %s is far from every historical task (cosine distance %.3f to %s > threshold %.3f): "
                           "ranking by the history prior instead", task_id, dist, nearest, self.projector_.max_distance_)
            df = self.rank_prior(top_k=top_k, task_id=task_id)
        else:
            n = len(self.model_ids)
            df = self._frame(task_id, self.model_ids, self.projector_.predict(embedding), "proxy",
                             np.full(n, np.nan), np.full(n, np.nan), top_k)
        df.attrs.update({"nearest_task": nearest, "nearest_distance": dist,
                         "max_distance": self.projector_.max_distance_, "fallback": bool(far and fallback),
                         "projector": self.projector_.method})
        return df

    def _observed_rows(self, observed: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        if not observed:
            raise SchemaError("observed is empty: give at least one model=score pair")
        known = self.subspace_.model_ids_
        pos = {m: i for i, m in enumerate(known)}
        unknown = [m for m in observed if m not in pos]
        if unknown:
            import difflib

            hints = [f"{m!r} (did you mean {difflib.get_close_matches(m, known, n=1)[0]!r}?)"
                     if difflib.get_close_matches(m, known, n=1) else repr(m) for m in unknown[:5]]
            raise UnknownIdError(f"unknown model id(s) in observed scores: {', '.join(hints)}; "
                                 f"'fennec info' lists the {len(known)} models")
        values = []
        for m, v in observed.items():
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise SchemaError(f"observed score of {m!r} must be a number, got {v!r}") from None
            if not np.isfinite(fv):
                raise SchemaError(f"observed score of {m!r} must be finite, got {v!r}")
            values.append(fv)
        return np.array([pos[m] for m in observed], dtype=np.intp), np.array(values)

    def _warm_columns(self) -> tuple[np.ndarray, tuple]:
        """Standardised history completed by the subspace, and its column moments (cached)."""
        if getattr(self, "_warm_cache", None) is None:
            from fennec.query.warmstart import column_moments, complete_columns

            Y, _, _ = self.history_.to_matrix()
            C = complete_columns(self.scaler_.transform(Y), self.subspace_.reconstruct())
            self._warm_cache = (C, column_moments(C))
        return self._warm_cache

    def rank_observed(self, observed: Mapping[str, float], *, top_k: int | None = None,
                      task_id: str = "<new>") -> pd.DataFrame:
        """Warm start: a new task with some measured ``{model_id: score}`` gets a full ranking.

        The unmeasured models are ranked by :func:`fennec.query.warmstart.fold_in` (a conditional Gaussian
        over the history's task columns, completed by the subspace, plus a soft nearest-task mixture).
        Scores are in the units of ``observed`` (e.g. accuracy %); measured models keep their values.
        """
        from fennec.query.warmstart import fold_in

        self._check_fitted()
        rows, values = self._observed_rows(observed)
        s0 = float(np.median(self.scaler_.std))
        C, moments = self._warm_columns()
        ws = fold_in(C, rows, values, scale=s0, lam=self.config.warm_lam, tau=self.config.warm_tau,
                     moments=moments)
        # report the rank score in the task's units: rescale it to the Gaussian prediction's spread
        g = ws.gaussian_mean
        spread = ws.score.std()
        z = g.mean() + (g.std() * ws.score / spread if spread > 1e-12 else 0.0)
        pred = (ws.offset + z) * s0
        std = ws.gaussian_std * s0
        measured = np.full(len(pred), np.nan)
        measured[rows] = values
        score = np.where(np.isfinite(measured), measured, pred)
        source = np.where(np.isfinite(measured), "measured", "warm_start")
        std[rows] = 0.0
        return self._frame(task_id, self.model_ids, score, source, measured, std, top_k)

    def suggest_next(self, observed: Mapping[str, float], *, n: int = 1, explore: float = 1.0,
                     task_id: str = "<new>") -> pd.DataFrame:
        """Which model(s) to fine-tune next: the best upper confidence bound among unmeasured models.

        ``explore`` weighs the predictive std (0: pure exploitation, the best predicted model).
        """
        ranking = self.rank_observed(observed, task_id=task_id)
        todo = ranking[ranking["source"] != "measured"].copy()
        if todo.empty:
            raise SchemaError("every model of the artifact is already measured; nothing to suggest")
        todo["ucb"] = todo["score"] + explore * todo["std"]
        todo = todo.sort_values(["ucb", "model_id"], ascending=[False, True]).head(n).reset_index(drop=True)
        todo["rank"] = np.arange(1, len(todo) + 1)
        return todo

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the artifact directory atomically (see :mod:`fennec.query.artifact`)."""
        from fennec.query.artifact import save_recommender

        return save_recommender(self, directory)

    @classmethod
    def config_class(cls) -> type[RecommenderConfig]:
        return RecommenderConfig

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Recommender:
        """Load an artifact written by :meth:`save` (checks format version and checksums first)."""
        from fennec.query.artifact import load_recommender

        return load_recommender(cls, directory)

    def rank_candidates(self, ranking: pd.DataFrame, candidates, *, top_k: int | None = None) -> pd.DataFrame:
        """Restrict a full ranking to ``candidates``; models without history are placed by architecture
        (``source="archi2vec"``). See :mod:`fennec.query.candidates`."""
        from fennec.query.candidates import rank_candidates

        return rank_candidates(self, ranking, candidates, top_k=top_k)
