"""The recommender: histories fitted into a transfer subspace, an index over its models, one query.

``Recommender().fit(history)`` (one history or several: one zoo) resolves every model through the model
registry, standardises each column, fits :class:`~fennec.subspace.TransferSubspace`, builds a
:class:`~fennec.subspace.index.ModelIndex` over the augmented model vectors, fits the placement of models
without history (:class:`~fennec.zoo.placement.ModelPlacer`) and, given task embeddings, the task projector.
``Recommender.query(...)`` is the one call for every way of describing a task and returns a
:class:`~fennec.query.ranking.Ranking`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fennec.errors import ArtifactError, NotFittedError, SchemaError, UnknownIdError
from fennec.history.scaler import TaskScaler
from fennec.history.union import Columns, combine
from fennec.query.ranking import Ranking
from fennec.query.warmstart import column_moments, complete_columns
from fennec.subspace import TransferSubspace
from fennec.subspace.index import ModelIndex
from fennec.tabular import Table
from fennec.zoo.placement import ArchSource, ModelPlacer
from fennec.zoo.registry import ModelRegistry

if TYPE_CHECKING:
    from fennec.history.table import History

logger = logging.getLogger(__name__)

_UNFITTED = object()


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
    use_archi2vec: bool = True
    placer_folds: int = 5
    cold_l2: float = 1.0

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping) -> RecommenderConfig:
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
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
    """Fit on histories, then :meth:`query` a task however it is described.

    ``registry`` resolves model names (default: the shipped :class:`~fennec.zoo.registry.ModelRegistry`).

    After :meth:`fit`: ``Z_`` the standardised history (models x columns), ``subspace_`` the factorization,
    ``identified_`` which cells the subspace determines (None when every history is linked to the others by
    shared models; see :mod:`fennec.subspace.components`), ``reconstruction_`` the predicted score of every
    cell (the subspace's where it is determined, the model's side-information profile elsewhere) and
    ``completed_`` the history with its missing cells taken from it.
    """

    config: RecommenderConfig = field(default_factory=RecommenderConfig)
    registry: ModelRegistry | None = None

    # ------------------------------------------------------------------ fit
    def fit(self, history: History | Sequence[History], task_embeddings=None, *, proxy_identity=None,
            arch_source: ArchSource | None = None) -> Recommender:
        """Fit on one history or several (one zoo: a column per task and campaign, shared models joined).

        ``task_embeddings``: a :class:`~fennec.proxy.store.TaskEmbeddings` (or its path, a dict, a DataFrame)
        keyed by task id, for the task projector; ``arch_source``: where archi2vec vectors come from (default
        the installed catalogue).
        """
        from fennec.history.table import History

        histories = [history] if isinstance(history, History) else list(history)
        joined, columns = combine(histories, self._base_registry())
        Y, model_ids, column_ids = joined.to_matrix()
        if len(model_ids) < 2:
            raise SchemaError(f"{joined.name}: need at least 2 models to rank, got {len(model_ids)}")
        self._history, self.columns_ = joined, Columns(columns.frame.set_index("column_id").loc[column_ids]
                                                        .reset_index())
        self.scaler_ = TaskScaler.fit(Y)
        self.Z_ = self.scaler_.transform(Y)
        self.subspace_ = self.config.subspace().fit(self.Z_, model_ids=model_ids, task_ids=column_ids)
        self._placer, self._arch_source, self._history_weight = _UNFITTED, arch_source, None
        self._derive()
        logger.info("fitted %d models x %d columns (%d cells), rank %d, l2 %g", len(model_ids), len(column_ids),
                    joined.n_cells, self.subspace_.n_components_, self.subspace_.l2_)
        self.projector_, self.task_embeddings_ = None, None
        if task_embeddings is not None:
            self._fit_projector(task_embeddings, proxy_identity)
        return self

    @property
    def history_(self) -> History:
        """The fitted history (one for a zoo of several: its task ids are the column ids); a loaded artifact
        reads it on first use (a query never needs it)."""
        self._check_fitted()
        if callable(self._history):
            self._history = self._history()
        return self._history

    @property
    def placer_(self) -> ModelPlacer | None:
        """The placement of models without history (fitted on first use: most queries never need it)."""
        self._check_fitted()
        if self._placer is _UNFITTED:
            self._placer = self._fit_placer(self._arch_source)
        return self._placer

    def _derive(self) -> None:
        """State that follows from the fitted parts (rebuilt after loading an artifact)."""
        from fennec.subspace.components import identified_cells, observed_components

        sub = self.subspace_
        self.index_ = ModelIndex(backend=self.config.index_backend, factory=self.config.index_factory).build(
            sub.augmented_model_vectors(), sub.model_ids_)
        self._position = {m: i for i, m in enumerate(sub.model_ids_)}
        labels = observed_components(np.isfinite(self.Z_))
        self.identified_ = None if len(set(labels[0]) | set(labels[1])) == 1 else identified_cells(*labels)
        self._complete()

    def _complete(self) -> None:
        """The reconstruction and the completed columns; cells the subspace does not determine (a model and
        a column of two unlinked parts of a zoo) take the model's side-information profile."""
        rec = self.subspace_.reconstruct()
        if self.identified_ is not None:
            side = self.profiles(self.model_ids) if self.placer_ is not None else None
            rec = np.where(self.identified_, rec, side if side is not None else np.nan)
            if side is None:  # no placement: the column's mean over the models it does determine
                rec = np.where(np.isfinite(rec), rec, np.nanmean(rec, axis=0, keepdims=True))
        self.reconstruction_ = rec
        self.completed_ = complete_columns(self.Z_, rec)
        self.moments_ = column_moments(self.completed_)

    def _fit_projector(self, task_embeddings, proxy_identity) -> None:
        from fennec.proxy.base import check_same_proxy
        from fennec.proxy.projector import TaskProjector
        from fennec.proxy.store import TaskEmbeddings

        emb = TaskEmbeddings.coerce(task_embeddings, identity=proxy_identity)
        if proxy_identity is not None and emb.identity is not None:
            check_same_proxy(emb.identity, proxy_identity, where="task embeddings")
        if emb.identity is None:
            logger.warning("task embeddings carry no proxy identity: queries cannot be checked against them")
        tasks = [self.columns_.task_of(c) for c in self.column_ids]
        E, missing = emb.lookup(tasks)
        have = np.array([t not in missing for t in tasks])
        if missing:
            logger.warning("%d column(s) of the history have no task embedding and are left out of the task "
                           "projector: %s", len(set(missing)), ", ".join(sorted(set(missing))[:10]))
        if have.sum() < 3:
            raise SchemaError(f"only {int(have.sum())} of the history's {len(tasks)} columns have a task embedding "
                              f"(ids {', '.join(emb.task_ids[:5])}...); the task projector needs at least 3")
        idx = np.flatnonzero(have)
        cfg = self.config
        self.projector_ = TaskProjector(cfg.projector, max_distance=cfg.projector_max_distance,
                                        distance_margin=cfg.projector_margin, random_state=cfg.seed).fit(
            E[idx], Z=self.Z_[:, idx], subspace=self.subspace_, task_ids=[self.column_ids[i] for i in idx],
            task_index=idx)
        self.task_embeddings_ = emb

    @property
    def history_weight_(self) -> float:
        """Weight of a fitted model's history-based score against its side-information prior when ranking a
        task (1: history only), chosen on the zoo's campaigns of the same task (:mod:`fennec.query.shrinkage`)."""
        self._check_fitted()
        if self._history_weight is None:
            from fennec.query.shrinkage import campaign_pairs, history_weight

            pairs = campaign_pairs([self.columns_.task_of(c) for c in self.column_ids],
                                   list(self.columns_.table["history"]))
            side = self.side_profiles()
            self._history_weight = history_weight(self.Z_, side, pairs)[0] if pairs and side is not None else 1.0
        return self._history_weight

    def side_profiles(self) -> np.ndarray | None:
        """Out-of-fold side-information profiles of the fitted models over the columns: what their side
        information alone predicts, from placements fitted without them (None without a placement)."""
        placer = self.placer_
        return None if placer is None else placer.out_of_fold_

    def _fit_placer(self, arch_source: ArchSource | None) -> ModelPlacer | None:
        sub = self.subspace_
        if len(sub.model_ids_) < 3:
            logger.info("fewer than 3 models: models without history cannot be placed")
            return None
        side = self.resolver().side_table(sub.model_ids_)
        targets = sub.reconstruct()
        if self.identified_ is not None:
            targets = np.where(self.identified_, targets, np.nan)
        return ModelPlacer(use_archi2vec=self.config.use_archi2vec, n_folds=self.config.placer_folds,
                           random_state=self.config.seed).fit(side, targets, Z=self.Z_, arch_source=arch_source,
                                                              groups=self._model_histories())

    def _model_histories(self) -> list[str] | None:
        """Each fitted model's first history, in a zoo of several (None for one history)."""
        if len(self.columns_.histories) < 2:
            return None
        hist = dict(zip(self.columns_.table["column_id"], self.columns_.table["history"], strict=True))
        first = self.history_.frame.assign(h=self.history_.frame["task_id"].map(hist)).groupby("model_id")["h"].min()
        return [first[m] for m in self.subspace_.model_ids_]

    def with_placer(self, *, use_archi2vec: bool, arch_source: ArchSource | None = None) -> Recommender:
        """The same fit with the cold-model placement refitted under another setting (an ablation: the
        subspace, index and projector are shared, not copied)."""
        import copy
        from dataclasses import replace

        self._check_fitted()
        other = copy.copy(self)
        other.config = replace(self.config, use_archi2vec=use_archi2vec)
        other._placer, other._history_weight = other._fit_placer(arch_source), None
        if other.identified_ is not None:
            other._complete()
        return other

    # ------------------------------------------------------------------ views
    def _base_registry(self) -> ModelRegistry:
        return self.registry if self.registry is not None else ModelRegistry.load()

    def resolver(self) -> ModelRegistry:
        """The registry that resolves model names: the shipped one (or the one given), plus the fitted
        models it does not know (a user history's own ids)."""
        self._check_fitted()
        cached = getattr(self, "_resolver", None)
        if cached is None or cached[0] is not self.subspace_:
            base = self._base_registry()
            unknown = [m for m in self.subspace_.model_ids_ if not base.resolve(m).resolved]
            reg = base.with_models(Table({"model_id": unknown})) if unknown else base
            self._resolver = cached = (self.subspace_, reg)
        return cached[1]

    def _check_fitted(self) -> None:
        if not hasattr(self, "subspace_"):
            raise NotFittedError("This Recommender is not fitted yet; call fit() or Recommender.load().")

    @property
    def model_ids(self) -> list[str]:
        self._check_fitted()
        return list(self.subspace_.model_ids_)

    @property
    def column_ids(self) -> list[str]:
        """The fitted columns: task ids, or ``task@history`` when several histories were fitted together."""
        self._check_fitted()
        return list(self.subspace_.task_ids_)

    @property
    def task_ids(self) -> list[str]:
        """The canonical task ids the fitted history measured."""
        self._check_fitted()
        return self.columns_.task_ids

    @property
    def proxy_identity(self) -> dict | None:
        """Identity of the proxy the task embeddings were made with (None without a projector)."""
        emb = getattr(self, "task_embeddings_", None)
        return None if emb is None else emb.identity

    def profiles(self, model_ids: Sequence[str], *, registry: ModelRegistry | None = None) -> np.ndarray:
        """Predicted standardised profile over the fitted columns of models without history, from their side
        information (each row depends on its own model alone)."""
        self._check_fitted()
        if self.placer_ is None:
            raise SchemaError("this recommender cannot place models without history (it has fewer than 3 models)")
        return self.placer_.profiles((registry or self.resolver()).side_table(list(model_ids)))

    # ------------------------------------------------------------------ query
    def query(self, task: str | None = None, *, observed: Mapping[str, float] | None = None,
              classnames: Any = None, images: Any = None, labels: Any = None, embedding: Any = None,
              candidates: Sequence[str] | str | None = None, candidates_file: Any = None,
              top_k: int | None = None, fallback: str = "prior", proxy: str | None = None, max_images: int = 100,
              seed: int = 0, cache_dir: str | os.PathLike[str] | None = None, strict: bool = False,
              task_id: str | None = None, progress: bool = False) -> Ranking:
        """Rank models for one task, described by at most one of:

        ``task`` (a task of the history, by id or alias; another benchmark id is placed by its class names),
        ``observed`` (``{model: score}`` measured on the new task: warm start), ``classnames`` (a list or a
        file), ``images`` (a folder, a ``path,label`` CSV, or arrays with ``labels``), ``embedding`` (a
        :class:`~fennec.proxy.base.TaskEmbedding` or a vector of the artifact's proxy), or nothing (the prior).

        ``candidates`` ranks only these models (any name the registry resolves; models without history are
        placed from their side information, unknown names listed as ``unresolved`` unless ``strict``);
        ``candidates_file`` adds models with their side information (a CSV, see
        :func:`~fennec.zoo.registry.read_user_models`). ``fallback``: ``prior`` (a proxy query far from every
        historical task is ranked by the prior), ``none``, or a transferability metric (``logme``, ...) that
        scores candidates with weights (``efficientnet-lite0``, ``NAME@FILE``) on labelled ``images``.
        """
        from fennec.query.queries import run_query

        self._check_fitted()
        return run_query(self, task=task, observed=observed, classnames=classnames, images=images, labels=labels,
                         embedding=embedding, candidates=candidates, candidates_file=candidates_file, top_k=top_k,
                         fallback=fallback, proxy=proxy, max_images=max_images, seed=seed, cache_dir=cache_dir,
                         strict=strict, task_id=task_id, progress=progress)

    def suggest_next(self, observed: Mapping[str, float], *, n: int = 1, explore: float = 1.0,
                     candidates: Sequence[str] | str | None = None) -> Ranking:
        """Which model(s) to fine-tune next: the best upper confidence bound ``score + explore * std`` among
        the models not yet measured (``explore=0``: the best predicted model)."""
        from dataclasses import replace

        ranking = self.query(observed=observed, candidates=candidates)
        t = ranking.table
        todo = t.take(np.array([s != "measured" for s in t["source"]]) & ~np.isnan(t["score"]))
        if not len(todo):
            raise SchemaError("every candidate model is already measured; nothing to suggest")
        std = todo["std"]
        todo = todo.with_column("ucb", todo["score"] + explore * np.where(np.isnan(std), 0.0, std))
        ucb, ids = todo["ucb"], todo["model_id"]
        todo = todo.take(sorted(range(len(todo)), key=lambda i: (-ucb[i], ids[i]))[:n])
        return replace(ranking, table=todo.with_column("rank", np.arange(1, len(todo) + 1)))

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the artifact directory atomically (see :mod:`fennec.query.artifact`)."""
        from fennec.query.artifact import save_recommender

        self._check_fitted()
        return save_recommender(self, directory)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Recommender:
        """Load an artifact written by :meth:`save` (checks format version and checksums first)."""
        from fennec.query.artifact import load_recommender

        return load_recommender(directory, cls)

    @classmethod
    def from_parts(cls, *, config: RecommenderConfig, history: History | Callable[[], History], columns: Columns,
                   scaler: TaskScaler, subspace: TransferSubspace, matrix: np.ndarray | None = None, projector=None,
                   task_embeddings=None, placer: ModelPlacer | None = None, history_weight: float = 1.0,
                   manifest: dict | None = None) -> Recommender:
        """A fitted recommender from its saved parts (what :func:`~fennec.query.artifact.load_recommender`
        reads); the index and the completed columns are rebuilt.

        ``history`` may be a function that returns it, given ``matrix``, the history's scores (models x
        columns in the subspace's order): the history is then read on first use of :attr:`history_`."""
        rec = cls(config=config)
        rec._history, rec.columns_, rec.scaler_, rec.subspace_ = history, columns, scaler, subspace
        Y = np.asarray(matrix, float) if matrix is not None else rec.history_.to_matrix()[0]
        if Y.shape != (len(subspace.model_ids_), len(subspace.task_ids_)):
            raise ArtifactError(f"the stored history ({Y.shape}) does not match the subspace "
                                f"({len(subspace.model_ids_)} x {len(subspace.task_ids_)})")
        rec.Z_ = scaler.transform(Y)
        rec.projector_, rec.task_embeddings_, rec._placer = projector, task_embeddings, placer
        rec._history_weight = float(history_weight)
        rec.manifest_ = manifest or {}
        rec._derive()
        return rec

    def position(self, model_id: str) -> int:
        """Row of a fitted model (``UnknownIdError`` otherwise)."""
        self._check_fitted()
        try:
            return self._position[model_id]
        except KeyError:
            raise UnknownIdError(f"model {model_id!r} is not in the fitted history") from None
