"""LogME: the maximum log-evidence of a Bayesian linear model on top of frozen features.

You, Liu, Wang, Long. "LogME: Practical Assessment of Pre-trained Models for Transfer Learning",
ICML 2021; and "Ranking and Tuning Pre-trained Models", JMLR 2022 (the fixed-point form).

For each target column y (one-hot columns for classification, columns of Y for multi-label or
regression) with prior w ~ N(0, α⁻¹I) and noise N(0, β⁻¹)::

    L(α, β) = N/2·log β + D/2·log α − N/2·log 2π − β/2·‖Fm − y‖² − α/2·mᵀm − ½·log|A|
    A = αI + βFᵀF,  m = βA⁻¹Fᵀy

maximised over (α, β): its stationary points are MacKay's fixed points (γ = Σ βσᵢ/(α+βσᵢ),
α = γ/mᵀm, β = (N−γ)/‖Fm−y‖²). The score is the mean over columns of L/N ("higher is better"; a
log-density, not a probability).

Fast exact form. One symmetric eigendecomposition is shared by all columns: of the Gram FᵀF
(D×D) when N > D, else of the kernel FFᵀ (N×N). With σᵢ its eigenvalues and t = α/β, every
quantity of the fixed point is a sum over i of O(1) terms, and all C columns iterate together::

    Gram form (wᵢ = vᵢᵀFᵀy):    mᵀm = Σ wᵢ²/(σᵢ+t)²,   ‖Fm−y‖² = ‖y‖² − Σ wᵢ²(σᵢ+2t)/(σᵢ+t)²
    kernel form (zᵢ = uᵢᵀy):    mᵀm = Σ σᵢzᵢ²/(σᵢ+t)², ‖Fm−y‖² = Σ t²zᵢ²/(σᵢ+t)²

and log|A| = Σ_{i≤k} log(α+βσᵢ) + (D−k)·log α with k the number of eigenvalues computed (zero
eigenvalues included). Public fast implementations drop the (D−k)·log α term; whenever D > N
their score is wrong (N=300, D=1024 gives a large positive score instead of a negative one).

Solver. With β at its optimum for a given t, the evidence is a smooth function of log t alone
whose stationary points are MacKay's fixed points; two MacKay updates from α = β = 1 start a
safeguarded Newton iteration on the fixed-point equation, solved to |Δ log t| ≤ tol. This
converges in a few steps where plain MacKay iteration creeps (geometrically, for hundreds of
steps) towards an optimum at α → ∞ (no linear signal in a column) or β → ∞ (exact interpolation,
possible when N ≤ D); those suprema are detected and evaluated at the end of a wide bracket.
Cost beyond the one eigendecomposition: O(N·D) for the class sums FᵀY, O(k²·C) for the
projections and posterior means, and O(k·C) per iteration.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from fennec.errors import NotFittedError, SchemaError
from fennec.transferability._validation import check_features, check_features_labels

logger = logging.getLogger(__name__)

__all__ = ["LogME", "logme"]

_TINY = 1e-300


class LogME:
    """LogME estimator (scikit-learn style).

    Parameters
    ----------
    regression : bool, default=False
        False: ``labels`` is a 1-D array of class labels (one-hot targets, remapped to ``0..C-1``)
        or a 2-D 0/1 matrix (multi-label). True: ``labels`` is a real (N,) or (N, C) target matrix.
    tol : float, default=1e-6
        Stop when the relative change of t = α/β (|Δ log t|) is at most ``tol`` for every column.
    max_iter : int, default=100
        Maximum number of Newton/bisection iterations (a warning is logged if reached).

    Attributes
    ----------
    score_ : float
        Mean over target columns of the maximum log-evidence divided by N.
    evidences_ : ndarray of shape (C,)
        Per-column log-evidence divided by N.
    alphas_, betas_ : ndarray of shape (C,)
        Prior precision α and noise precision β at the optimum, per column.
    weights_ : ndarray of shape (C, D)
        Posterior means m of the linear weights, one row per target column (B-Tuning uses them).
    n_iter_ : int
        Iterations run (the most over columns).
    method_ : {"gram", "kernel"}
        Which eigendecomposition was used.
    classes_ : ndarray or None
        Original class labels (classification only).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> F, y = rng.normal(size=(100, 8)), rng.integers(0, 3, size=100)
    >>> est = LogME().fit(F, y)
    >>> est.weights_.shape
    (3, 8)
    """

    def __init__(self, regression: bool = False, tol: float = 1e-6, max_iter: int = 100) -> None:
        self.regression = regression
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, features: npt.ArrayLike, labels: npt.ArrayLike) -> LogME:
        """Maximise the evidence for every target column.

        Parameters
        ----------
        features : array-like of shape (n_samples, n_features)
        labels : array-like of shape (n_samples,) or (n_samples, n_targets)
            See ``regression``.

        Returns
        -------
        self : LogME
        """
        if not self.tol > 0:
            raise SchemaError(f"The 'tol' parameter of LogME must be > 0. Got {self.tol!r} instead.")
        if int(self.max_iter) != self.max_iter or self.max_iter < 1:
            raise SchemaError(f"The 'max_iter' parameter of LogME must be an int >= 1. Got {self.max_iter!r} instead.")
        f, targets = _prepare(features, labels, self.regression)
        self.classes_ = targets.classes
        n, d = f.shape
        if n > d:
            method = "gram"
            sigma, vecs = np.linalg.eigh(f.T @ f)
            proj = vecs.T @ targets.project(f)  # (D, C): w = Vᵀ Fᵀ y
        else:
            method = "kernel"
            sigma, vecs = np.linalg.eigh(f @ f.T)
            proj = targets.left(vecs)  # (N, C): z = Uᵀ y
        # Eigenvalues at rounding level are exact zeros of a rank-deficient F (dead units, duplicate
        # rows). Zeroing them keeps E(t) accurate as t → 0: for a null direction v, Fv = 0 so w = 0.
        zero = sigma <= sigma.max(initial=0.0) * max(n, d) * np.finfo(np.float64).eps
        sigma = np.where(zero, 0.0, sigma)
        if method == "gram":
            proj[zero] = 0.0
        sq = proj * proj
        alpha, beta, n_iter = _maximise(sigma, sq, targets.sq_norms, n, method, self.tol, int(self.max_iter))
        t = alpha / beta
        evidence = _evidence(sigma, sq, targets.sq_norms, n, d, method, alpha, beta)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            coef = proj / (sigma[:, None] + t[None, :])  # (k, C)
        coef[zero] = 0.0  # a null direction carries no weight (Fᵀu = 0 when σ = 0)
        weights = (vecs @ coef).T if method == "gram" else (f.T @ (vecs @ coef)).T
        self.method_ = method
        self.n_iter_ = n_iter
        self.alphas_ = alpha
        self.betas_ = beta
        self.evidences_ = evidence / n
        self.score_ = float(np.mean(self.evidences_))
        self.weights_ = np.ascontiguousarray(weights)
        self.n_features_in_ = d
        return self

    def predict(self, features: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Posterior-mean linear outputs ``F @ weights_.T``, shape (n_samples, C).

        Raises
        ------
        NotFittedError
            If called before :meth:`fit`.
        SchemaError
            If the number of columns differs from the one seen in ``fit``.
        """
        if not hasattr(self, "weights_"):
            raise NotFittedError("This LogME instance is not fitted yet; call fit(features, labels) first.")
        f = check_features(features)
        if f.shape[1] != self.n_features_in_:
            raise SchemaError(f"features has {f.shape[1]} columns but LogME was fitted with {self.n_features_in_}")
        return f @ self.weights_.T


def logme(features: npt.ArrayLike, labels: npt.ArrayLike, *, regression: bool = False) -> float:
    """LogME score of ``features`` for ``labels`` (higher is better).

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    labels : array-like of shape (n_samples,) or (n_samples, n_targets)
        Class labels; a 0/1 matrix for multi-label; real targets with ``regression=True``.
    regression : bool, default=False

    Returns
    -------
    float
        Mean over target columns of the maximum log-evidence divided by N.
    """
    return LogME(regression=regression).fit(features, labels).score_


class _Targets:
    """Target columns, kept sparse (one-hot) for classification so FᵀY costs O(N·D)."""

    def __init__(self, dense: np.ndarray | None, onehot: sp.csr_array | None, classes: np.ndarray | None) -> None:
        self.dense, self.onehot, self.classes = dense, onehot, classes
        if dense is not None:
            self.sq_norms = np.einsum("ij,ij->j", dense, dense)
        else:
            self.sq_norms = np.asarray(onehot.sum(axis=1), dtype=np.float64).ravel()

    def project(self, f: np.ndarray) -> np.ndarray:
        """FᵀY, shape (D, C)."""
        return f.T @ self.dense if self.dense is not None else np.asarray(self.onehot @ f).T

    def left(self, u: np.ndarray) -> np.ndarray:
        """UᵀY for U of shape (N, k), shape (k, C)."""
        return u.T @ self.dense if self.dense is not None else np.asarray(self.onehot @ u).T


def _prepare(features: npt.ArrayLike, labels: npt.ArrayLike, regression: bool) -> tuple[np.ndarray, _Targets]:
    lab = np.asarray(labels)
    if not regression and lab.ndim == 1:
        f, y, c = check_features_labels(features, lab)
        classes = np.unique(lab)
        onehot = sp.csr_array((np.ones(len(y)), (y, np.arange(len(y)))), shape=(c, len(y)))
        return f, _Targets(None, onehot, classes)
    if lab.ndim == 1:
        lab = lab.reshape(-1, 1)
    if lab.ndim != 2 or lab.shape[1] == 0:
        raise SchemaError(f"labels must be a 1-D array or a 2-D (n_samples, n_targets) matrix; got shape {lab.shape}")
    feat = np.asarray(features)
    if feat.ndim == 2 and feat.shape[0] != lab.shape[0]:
        raise SchemaError(f"features has {feat.shape[0]} rows but labels has {lab.shape[0]}")
    f = check_features(feat)
    if f.shape[0] < 2:
        raise SchemaError(f"need at least 2 samples; got {f.shape[0]}")
    y = check_features(lab, name="labels")
    if not regression and not np.isin(y, (0.0, 1.0)).all():
        raise SchemaError("multi-label targets must be a 0/1 matrix; use regression=True for real-valued targets")
    return f, _Targets(y, None, None)


def _terms(sigma: np.ndarray, sq: np.ndarray, yy: np.ndarray, t: np.ndarray, method: str, n: int):
    """Sums over eigenvalues at t = α/β, for every column.

    Returns E = ‖Fm−y‖² + t·mᵀm (so that β = N/E at the optimum over β), mᵀm, γ, and
    φ = ∂L*/∂log t / ... (up to the factor 1/2), with its derivative in log t.
    """
    inv = sigma[:, None] + t[None, :]
    np.reciprocal(inv, out=inv)  # 1/(σᵢ + t), in place: these (k, C) passes dominate the solver
    gamma = sigma @ inv
    q = sq * inv
    s1 = q.sum(axis=0)
    q *= inv
    if method == "gram":  # sq = wᵢ²: E = ‖y‖² − Σ w²/(σ+t), mᵀm = Σ w²/(σ+t)²
        e = yy - s1
        m2 = q.sum(axis=0)
        q *= inv
        dm2 = -2.0 * q.sum(axis=0)
    else:  # sq = zᵢ²: E = t·Σ z²/(σ+t), mᵀm = Σ σz²/(σ+t)²  (σ-weighted sums: no cancellation)
        e = t * s1
        m2 = sigma @ q
        q *= inv
        dm2 = -2.0 * (sigma @ q)
    inv *= inv
    p2 = sigma @ inv  # Σ σ/(σ+t)²
    e = np.maximum(e, _TINY * np.maximum(yy, 1.0))
    m2 = np.maximum(m2, _TINY)
    ratio = m2 / e
    phi = gamma - n * t * ratio  # ∝ dL*/d(log t); zero at MacKay's fixed point
    dphi = t * (-p2 - n * (ratio + t * dm2 / e - t * ratio * ratio))
    return e, m2, gamma, phi, dphi


def _maximise(
    sigma: np.ndarray, sq: np.ndarray, yy: np.ndarray, n: int, method: str, tol: float, max_iter: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Maximise the evidence over (α, β) for every column; returns α, β and the iterations used.

    With β at its optimum N/E(t), the evidence is a smooth function of u = log t alone, and its
    stationary points are exactly MacKay's fixed points (φ(u) = γ − N·t·mᵀm/E = 0). Two MacKay
    updates from α = β = 1 give the starting point; safeguarded Newton steps on φ (bisection when a
    step leaves the bracket or stalls, as in Numerical Recipes' rtsafe) solve it to |Δu| ≤ tol.
    The supremum can lie at an end (α → ∞: no linear signal, the MacKay iteration then creeps
    forever; β → ∞: exact interpolation, possible only when N ≤ D). Once u is far outside the
    spectrum (t > e⁶·σ_max or t < e⁻⁶·σ_min) with φ still pointing outwards, g is monotone there
    and the end of the search interval is taken; the best of the solution and both ends is kept.
    """
    n_cols = sq.shape[1]
    pos_sigma = sigma[sigma > 0]
    if pos_sigma.size == 0:  # all-zero features: the evidence does not depend on t
        pos_sigma = np.ones(1)
    s_lo, s_hi = math.log(pos_sigma.min()), math.log(pos_sigma.max())
    a, b = s_lo - 40.0, s_hi + 40.0
    u = np.log(_mackay_start(sigma, sq, yy, n, method, a, b))
    u, active, it = _solve_log_t(sigma, sq, yy, n, method, u, (a, b), (s_lo, s_hi), tol, max_iter)
    if active.size:
        logger.warning(
            "LogME evidence maximisation did not reach tol=%g for %d of %d columns in %d iterations",
            tol, active.size, n_cols, max_iter,
        )
    # Guard against a second local maximum: keep the best of the solution and the two ends.
    cand = np.stack([u, np.full(n_cols, a), np.full(n_cols, b)])
    ev = np.stack([_profile_evidence(sigma, sq, yy, n, method, np.exp(c)) for c in cand])
    u = cand[np.argmax(ev, axis=0), np.arange(n_cols)]
    t = np.exp(u)
    e = _terms(sigma, sq, yy, t, method, n)[0]
    beta = n / e
    return t * beta, beta, it


def _mackay_start(sigma: np.ndarray, sq: np.ndarray, yy: np.ndarray, n: int, method: str, a: float,
                  b: float) -> np.ndarray:
    """t = α/β after two MacKay updates from α = β = 1, clipped to [e^a, e^b]."""
    t = np.ones(sq.shape[1])
    for _ in range(2):  # MacKay updates: α ← γ/mᵀm, β ← (N − γ)/‖Fm − y‖²
        e, m2, gamma, _, _ = _terms(sigma, sq, yy, t, method, n)
        res = np.maximum(e - t * m2, _TINY)
        t = (gamma / m2) * res / np.maximum(n - gamma, _TINY)
        t = np.clip(np.nan_to_num(t, nan=1.0, posinf=math.exp(b)), math.exp(a), math.exp(b))
    return t


def _solve_log_t(sigma: np.ndarray, sq: np.ndarray, yy: np.ndarray, n: int, method: str, u: np.ndarray,
                 ends: tuple[float, float], spectrum: tuple[float, float], tol: float,
                 max_iter: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Safeguarded Newton on φ(u) from ``u`` (updated in place) within ``ends`` = (a, b); an end is taken
    once u is e⁶ beyond ``spectrum`` = (log σ_min, log σ_max) with φ pointing outwards. Returns u, the
    columns not converged and the iterations used."""
    a, b = ends
    s_lo, s_hi = spectrum
    n_cols = sq.shape[1]
    lo, hi = np.full(n_cols, a), np.full(n_cols, b)
    dx_old = hi - lo
    active = np.arange(n_cols)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - reported after the loop
        if active.size == 0:
            break
        ua, la, ha = u[active], lo[active], hi[active]
        _, _, _, ph, dph = _terms(sigma, sq[:, active], yy[active], np.exp(ua), method, n)
        up = ph > 0  # the evidence increases with t here
        la = np.where(up, ua, la)
        ha = np.where(up, ha, ua)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = ua - ph / dph
        bisect = ~((newton > la) & (newton < ha)) | (np.abs(2.0 * ph) > np.abs(dx_old[active] * dph))
        un = np.where(bisect, 0.5 * (la + ha), newton)
        to_end = (up & (ua > s_hi + 6.0)) | (~up & (ua < s_lo - 6.0))
        un = np.where(to_end, np.where(up, b, a), un)
        dx = np.abs(un - ua)
        u[active], lo[active], hi[active], dx_old[active] = un, la, ha, dx
        active = active[~to_end & (dx > tol) & (ha - la > tol)]
    return u, active, it


def _profile_evidence(
    sigma: np.ndarray, sq: np.ndarray, yy: np.ndarray, n: int, method: str, t: np.ndarray
) -> np.ndarray:
    """Evidence at t with β = N/E(t), up to terms that do not depend on t (D cancels out)."""
    e = _terms(sigma, sq, yy, t, method, n)[0]
    k = sigma.shape[0]
    return -0.5 * n * np.log(e) + 0.5 * k * np.log(t) - 0.5 * np.log(sigma[:, None] + t[None, :]).sum(axis=0)


def _evidence(
    sigma: np.ndarray, sq: np.ndarray, yy: np.ndarray, n: int, d: int, method: str,
    alpha: np.ndarray, beta: np.ndarray,
) -> np.ndarray:
    """log-evidence L(α, β) per column (not divided by N), with the full log|A|."""
    t = alpha / beta
    e, m2, _, _, _ = _terms(sigma, sq, yy, t, method, n)
    res = np.maximum(e - t * m2, 0.0)
    k = sigma.shape[0]
    # log|A| = Σ_{i≤k} log(α + βσᵢ) + (D − k)·log α,  with log(α + βσᵢ) = log β + log(t + σᵢ)
    logdet = np.log(sigma[:, None] + t[None, :]).sum(axis=0) + k * np.log(beta) + (d - k) * np.log(alpha)
    return (
        0.5 * n * np.log(beta) + 0.5 * d * np.log(alpha) - 0.5 * n * math.log(2 * math.pi)
        - 0.5 * beta * res - 0.5 * alpha * m2 - 0.5 * logdet
    )
