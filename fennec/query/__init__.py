"""Subspace -> query: the :class:`~fennec.query.recommender.Recommender` (fit, query, save/load), the
typed :class:`~fennec.query.ranking.Ranking` it returns, warm start and candidate models."""
