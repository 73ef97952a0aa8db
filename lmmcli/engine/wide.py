"""The profiled objective in q dimensions, for models with many more fixed effects than random effects.

The usual factorization (pls.PlsModel) ends in the Cholesky factor of the p x p Schur complement of
[X y] at every theta: O(p^3) per evaluation, 30 s at p = 5,000. When p >> q (a factor with thousands
of levels as a fixed effect, a few random terms) X is profiled out once instead. With the hat matrix
H = X (X'X)^-1 X' of the fixed effects, and Lambda = Lambda(theta):

    M~ = Lambda' Z'(I - H) Z Lambda + I,    r = Lambda' Z'(I - H) y,
    pwrss = y'(I - H) y - r' M~^-1 r,
    log|L|^2 + log|RX|^2 = log|X'X| + log|M~|       (so REML needs only M~),
    log|RX|^2 = log|X'X| + log|M~| - log|M|,   M = Lambda' Z'Z Lambda + I (BMBW 18),

since X'V^-1 X = X'X - X'Z Lambda M^-1 Lambda' Z'X and, by the determinant lemma and Woodbury,
|X'V^-1 X| = |X'X| |M~| / |M|. Z'(I - H)Z = Z'Z - W'W with W = R^-T X'Z (X'X = R'R) is formed once
from the cross-products (no rows). Var(beta) / sigma^2 = (X'V^-1 X)^-1 = (X'X)^-1 + Q Lambda M~^-1
Lambda' Q' with Q = (X'X)^-1 X'Z, so its diagonal (what Satterthwaite's df of each coefficient need)
costs O(p q^2) per theta, not O(p^3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmmcli.engine.pls import lambda_matrix, split_theta

WIDE_MIN_P = 200        # fixed effects at least this many ...
WIDE_MAX_Q = 2000       # ... random effects at most this many (M~ is a dense q x q matrix) and at most p / 2


@dataclass
class WideParts:
    """The pieces of the deviance at one theta (the names of pls.PlsSolution, so either can be used)."""

    logdet_L: float
    pwrss: float
    logdet_RX: float


_CACHE: "weakref.WeakKeyDictionary" = None


def for_model(model) -> "WideObjective | None":
    """The model's WideObjective (formed once per model object) when it is wide, else None."""
    global _CACHE
    import weakref

    if not applies(model):
        return None
    if _CACHE is None:
        _CACHE = weakref.WeakKeyDictionary()
    if model not in _CACHE:
        _CACHE[model] = WideObjective(model)
    return _CACHE[model]


def objective_of(model):
    """The fastest exact objective of theta for the model: WideObjective's when wide, else PlsModel's."""
    w = for_model(model)
    return model.objective if w is None else w.objective


def applies(model) -> bool:
    """Whether the model is wide: many fixed effects, few random effects."""
    q = _q(model)
    return model.p >= WIDE_MIN_P and 0 < q <= min(WIDE_MAX_Q, model.p // 2)


def _q(model) -> int:
    return sum(b.nlevels * b.p for b in model.blocks) if getattr(model, "XyXy", None) is not None else 0


class WideObjective:
    """Cross-products with X profiled out (formed once), and the objective and diag Var(beta) of theta."""

    def __init__(self, model):
        from scipy.linalg import solve_triangular

        from lmmcli.linalg import split_gram

        self.model, p, self.n, self.reml = model, model.p, model.n, model.reml
        ZtZ, ZtXy = _dense_cross(model)
        XtX = model.XyXy[:p, :p]
        # X'X with a factor's indicator block eliminated first (O(p), see linalg.SplitGram), else X'X = R'R
        self._split = split_gram(XtX)
        if self._split is not None:
            self.logdet_XX, whiten, R = self._split.logdet, self._split.whiten, None
        else:
            R = np.linalg.cholesky(XtX).T
            self.logdet_XX = 2.0 * float(np.log(np.diag(R)).sum())
            whiten = lambda B: solve_triangular(R, B, trans="T")    # noqa: E731  R^-T B
        XtZ = ZtXy[:, :p].T
        W = whiten(XtZ)                                     # W'W = Z'X (X'X)^-1 X'Z
        wy = whiten(model.XyXy[:p, p])
        self.ZtZ = ZtZ
        self.ZPZ = ZtZ - W.T @ W
        self.ZPy = ZtXy[:, p] - W.T @ wy
        self.yPy = float(model.XyXy[p, p] - wy @ wy)
        self._R, self._W, self._XtZ = R, W, XtZ
        self._solve_lower = lambda L, b: solve_triangular(L, b, lower=True)

    @property
    def splits(self) -> bool:
        """Whether X'X split (linalg.SplitGram), so that the whole Var(beta) costs O(p^2 q)."""
        return self._split is not None

    # -- per theta ---------------------------------------------------------------------------
    def _lambda(self, theta):
        return lambda_matrix(self.model.blocks, split_theta(self.model.blocks, np.asarray(theta, dtype=float)))

    def _tilde(self, Lam):
        """Cholesky factor (lower) of M~ and c = L~^-1 r."""
        Mt = np.asarray((Lam.T @ (Lam.T @ self.ZPZ).T))     # Lambda' ZPZ Lambda, dense
        Mt[np.diag_indices_from(Mt)] += 1.0
        Lt = np.linalg.cholesky(Mt)
        c = self._solve_lower(Lt, Lam.T @ self.ZPy)
        return Lt, c

    def parts(self, theta) -> WideParts:
        """logdet_L, pwrss and logdet_RX at theta."""
        Lam = self._lambda(theta)
        Lt, c = self._tilde(Lam)
        logdet_Mt = 2.0 * float(np.log(np.diag(Lt)).sum())
        M = np.asarray((Lam.T @ (Lam.T @ self.ZtZ).T))
        M[np.diag_indices_from(M)] += 1.0
        logdet_M = 2.0 * float(np.log(np.diag(np.linalg.cholesky(M))).sum())
        return WideParts(logdet_M, self.yPy - float(c @ c), self.logdet_XX + logdet_Mt - logdet_M)

    def objective(self, theta) -> float:
        """The REML criterion or ML deviance at theta (as PlsModel.objective); +inf where a factor fails."""
        try:
            Lam = self._lambda(theta)
            Lt, c = self._tilde(Lam)
            pwrss = self.yPy - float(c @ c)
            if not pwrss > 0:
                return np.inf
            logdet_Mt = 2.0 * float(np.log(np.diag(Lt)).sum())
            if self.reml:
                dof = self.n - self.model.p
                return self.logdet_XX + logdet_Mt + dof * (1.0 + np.log(2.0 * np.pi * pwrss / dof))
            parts = self.parts(theta)
            return parts.logdet_L + self.n * (1.0 + np.log(2.0 * np.pi * parts.pwrss / self.n))
        except np.linalg.LinAlgError:
            return np.inf

    def vcov_diag(self, theta, W=None) -> np.ndarray:
        """diag (X'V^-1 X)^-1 = diag (X'X)^-1 + the row sums of squares of Q Lambda L~^-T; with W
        (p x p, mostly zeros: the units' Wxx) the diagonal of W (X'V^-1 X)^-1 W' instead."""
        G = self._g(theta, W)
        return self._xx_pieces(W)[1] + np.einsum("ij,ij->j", G, G)

    def vcov(self, theta, W=None) -> np.ndarray:
        """(X'V^-1 X)^-1 = (X'X)^-1 + G'G (G = L~^-1 Lambda' Q'), or W (X'V^-1 X)^-1 W' with W: the p x p
        matrix, in O(p^2 q) when X'X splits (linalg.SplitGram), else O(p^3) for (X'X)^-1."""
        from lmmcli.engine.kernels import inverse_gram_upper

        G = self._g(theta, W)
        if self._split is not None:
            XXinv = self._split.inverse(W)
        elif W is None:
            XXinv = inverse_gram_upper(self._R)
        else:
            WR = self._xx_pieces(W)[2]
            XXinv = WR @ WR.T
        return XXinv + G.T @ G

    def _g(self, theta, W) -> np.ndarray:
        """L~^-1 Lambda' Q' W' (q x p) at theta."""
        from scipy.linalg import solve_triangular

        WQ = self._xx_pieces(W)[0]
        Lam = self._lambda(theta)
        Lt, _ = self._tilde(Lam)
        return solve_triangular(Lt, np.asarray((Lam.T @ WQ.T)), lower=True)

    def _xx_pieces(self, W):
        """(W Q, diag W (X'X)^-1 W', W R^-1 or None) with Q = (X'X)^-1 X'Z, formed once per W (W = None:
        the identity)."""
        key = None if W is None else id(W)
        cache = self.__dict__.setdefault("_wcache", {})
        if key not in cache:
            import scipy.sparse as sp

            Ws = None if W is None else sp.csr_matrix(W)
            if self._split is not None:
                if "_Q" not in self.__dict__:
                    self._Q = self._split.solve(self._XtZ)                   # (X'X)^-1 X'Z
                WR, diag = None, self._split.inverse_diagonal(W)
            else:
                from scipy.linalg.lapack import dtrtri

                if "_Rinv" not in self.__dict__:
                    self._Rinv = dtrtri(self._R, lower=0)[0]                 # R^-1, once
                    self._Q = self._Rinv @ self._W                           # (X'X)^-1 X'Z = R^-1 W
                WR = self._Rinv if W is None else np.asarray(Ws @ self._Rinv)
                diag = np.einsum("ij,ij->i", WR, WR)
            WQ = self._Q if W is None else np.asarray(Ws @ self._Q)
            cache[key] = (WQ, diag, WR, W)      # W kept: its id stays its own
        return cache[key][:3]


def _dense_cross(model):
    """Z'Z (q x q) and Z'[X y] (q x m) as dense arrays, columns in Lambda's order."""
    l1, p1, m = model.l1, model.p1, model.m
    q1 = l1 * p1
    q = q1 + getattr(model, "q_r", 0)
    ZtZ = np.zeros((q, q))
    for j in range(p1):
        for k in range(p1):
            ZtZ[np.arange(l1) * p1 + j, np.arange(l1) * p1 + k] = model.D1[:, j, k]
    ZtXy = np.empty((q, m))
    ZtXy[:q1] = model.ZtXy1.reshape(q1, m)
    if q > q1:
        A21 = model.A21.toarray()
        ZtZ[q1:, :q1], ZtZ[:q1, q1:] = A21, A21.T
        ZtZ[q1:, q1:] = model.A22.toarray()
        ZtXy[q1:] = model.A2Xy
    return ZtZ, ZtXy
