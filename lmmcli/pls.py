"""Penalized least squares: the profiled REML/ML objective of a linear mixed model as a function of theta.

The model is y = X beta + Z b + e, b = Lambda(theta) u, u ~ N(0, sigma^2 I), e ~ N(0, sigma^2 I)
(Bates, Maechler, Bolker & Walker 2015, JSS 67(1); equations cited as "BMBW (n)").

Glossary (names follow the paper):
    theta     covariance parameters: the lower triangles of the relative covariance factors T_k
    Lambda    block-diagonal relative covariance factor, I_{levels_k} (x) T_k for each random term k
    L         lower Cholesky factor of Lambda' Z' Z Lambda + I  (BMBW 18)
    RZX       L^{-1} Lambda' Z' X; here stored as the X columns of C = L^{-1} Lambda' Z' [X y]
    RX        Cholesky factor of X'X - RZX' RZX                  (BMBW 19)
    beta, u   the solutions of the penalized least squares problem; b = Lambda u
    pwrss     penalized weighted residual sum of squares ||y - X beta - Z b||^2 + ||u||^2
    logdet_L  log |L|^2 ;  logdet_RX  log |RX|^2

Layout. The random-effect blocks come ordered by number of levels, largest first (as lme4 and
MixedModels.jl do). Lambda'Z'Z Lambda + I is block-diagonal in the first block, so its factor is a
batch of small p1 x p1 Cholesky factors, one per level. All other blocks (crossed or nested terms)
are gathered into one dense "rest" part whose size is the total number of their random effects;
the coupling between the two is a sparse matrix. Every cross-product of [Z X y] is formed once, in
`PlsModel.__init__`; evaluating the objective never touches the n rows.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from .errors import ModelSpecError, NumericalError

# The dense part (all random effects after the largest term) must fit in memory as a square matrix.
MAX_DENSE_REST = 20000


@dataclass(frozen=True)
class ReBlock:
    """One random-effects term: rows' level codes, its model-matrix columns, and its theta layout."""

    group: str                 # grouping factor label, e.g. "Subject" or "cask:batch"
    terms: tuple[str, ...]     # column names, e.g. ("(Intercept)", "Days")
    levels: tuple[str, ...]    # level labels, codes index into this
    codes: np.ndarray          # (n,) int level index of each row
    Z: np.ndarray              # (n, p) model-matrix columns of this term
    correlated: bool = True    # False for (x || g): only the diagonal of T is free

    @property
    def p(self) -> int:
        return len(self.terms)

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    def theta_index(self) -> list[tuple[int, int]]:
        """(row, col) of T filled by each theta element: the lower triangle column by column, as lme4."""
        p = self.p
        if not self.correlated:
            return [(j, j) for j in range(p)]
        return [(i, j) for j in range(p) for i in range(j, p)]


def theta_lower(blocks) -> np.ndarray:
    """Bounds for theta: 0 on the diagonal of each T, unbounded elsewhere."""
    return np.array([0.0 if i == j else -np.inf for blk in blocks for i, j in blk.theta_index()])


def theta_start(blocks) -> np.ndarray:
    """Lambda = I, as lme4 starts."""
    return np.array([1.0 if i == j else 0.0 for blk in blocks for i, j in blk.theta_index()])


def split_theta(blocks, theta) -> list[np.ndarray]:
    """The T_k matrices (lower triangular, p_k x p_k) for a theta vector."""
    out, pos = [], 0
    for blk in blocks:
        T = np.zeros((blk.p, blk.p))
        idx = blk.theta_index()
        for (i, j), v in zip(idx, theta[pos:pos + len(idx)]):
            T[i, j] = v
        out.append(T)
        pos += len(idx)
    return out


@dataclass
class PlsSolution:
    """Everything the PLS solve at one theta gives: estimates and the factors needed for inference."""

    theta: np.ndarray
    beta: np.ndarray
    b: list[np.ndarray]        # per block, (levels, p) conditional modes
    u: list[np.ndarray]        # per block, (levels, p) spherical random effects
    pwrss: float
    logdet_L: float
    logdet_RX: float
    RX: np.ndarray             # upper-triangular p x p, X'V^{-1}X / sigma^2 = RX' RX
    sigma: float
    objective: float
    reml: bool
    cond_var: list[np.ndarray] | None = None   # per block, (levels, p, p) conditional covariance of b


@dataclass
class _Factor:
    """The pieces of L and C for one theta (internal)."""

    Ts: list
    L11: np.ndarray | None     # (l1, p1, p1)
    C1: np.ndarray | None      # (l1, p1, m)
    L21: sp.csr_matrix | None  # (q_r, q1)
    L22: np.ndarray | None     # (q_r, q_r)
    C2: np.ndarray | None      # (q_r, m)
    Lxy: np.ndarray            # (m, m) lower factor of the [X y] Schur complement
    logdet_L: float


def _pair_sums(codes, nlev, A, B):
    """sum over rows of each level of A[:, i] * B[:, j] -> (nlev, A.shape[1], B.shape[1])."""
    out = np.empty((nlev, A.shape[1], B.shape[1]))
    for i in range(A.shape[1]):
        for j in range(B.shape[1]):
            out[:, i, j] = np.bincount(codes, weights=A[:, i] * B[:, j], minlength=nlev)
    return out


def _sparse_Z(blocks) -> sp.csr_matrix:
    """The n x q sparse model matrix of a list of blocks (columns level-major within each block)."""
    mats = []
    for blk in blocks:
        n, p = blk.Z.shape
        rows = np.repeat(np.arange(n), p)
        cols = (blk.codes[:, None] * p + np.arange(p)[None, :]).ravel()
        mats.append(sp.csr_matrix((blk.Z.ravel(), (rows, cols)), shape=(n, blk.nlevels * p)))
    return sp.hstack(mats, format="csr")


def _block_diag_pattern(nblk: int, p: int):
    """Row and column indices of a block-diagonal matrix of nblk p x p blocks (row-major within block)."""
    g = np.arange(nblk)[:, None, None] * p
    r = (g + np.arange(p)[None, :, None]).repeat(p, axis=2)
    c = (g + np.arange(p)[None, None, :]).repeat(p, axis=1)
    return r.ravel(), c.ravel()


class PlsModel:
    """Cross-products of [Z X y] formed once, and the profiled objective (BMBW 34, 41) of theta."""

    def __init__(self, X: np.ndarray, y: np.ndarray, blocks, reml: bool = True):
        self.n, self.p = X.shape
        self.reml = reml
        self.blocks = list(blocks)
        self.lower = theta_lower(self.blocks)
        self.theta0 = theta_start(self.blocks)
        self.Xy = np.column_stack([X, y]).astype(float)
        self.XyXy = self.Xy.T @ self.Xy
        self.m = self.p + 1
        if self.blocks:
            self._init_first(self.blocks[0])
            self._init_rest(self.blocks[1:])

    # -- formed once -------------------------------------------------------------------------
    def _init_first(self, blk):
        """The largest term: per-level Z'Z blocks and Z'[X y] blocks."""
        self.l1, self.p1 = blk.nlevels, blk.p
        self.D1 = _pair_sums(blk.codes, self.l1, blk.Z, blk.Z)
        self.ZtXy1 = _pair_sums(blk.codes, self.l1, blk.Z, self.Xy)
        self._bd_rows, self._bd_cols = _block_diag_pattern(self.l1, self.p1)

    def _init_rest(self, rest):
        """All other terms: a dense Z'Z, a sparse coupling to the first term, a dense Z'[X y]."""
        self.rest = rest
        self.q_r = sum(b.nlevels * b.p for b in rest)
        if not rest:
            return
        if self.q_r > MAX_DENSE_REST:
            raise ModelSpecError(
                f"the random terms after the largest one have {self.q_r} random effects together; "
                f"lmm handles at most {MAX_DENSE_REST} there",
                hint="put the grouping factor with the most levels in its own term, or use fewer levels")
        Z1 = _sparse_Z(self.blocks[:1])
        Zr = _sparse_Z(rest)
        self.A22 = (Zr.T @ Zr).toarray()
        self.A21 = (Zr.T @ Z1).tocsr()
        self.A2Xy = np.asarray(Zr.T @ self.Xy)

    # -- per theta ---------------------------------------------------------------------------
    def _lambda_rest(self, Ts) -> sp.csr_matrix:
        """Lambda for the rest blocks: I_levels (x) T_k, stacked block-diagonally."""
        return sp.block_diag([sp.kron(sp.identity(b.nlevels), T) for b, T in zip(self.rest, Ts[1:])],
                             format="csr")

    def _factor(self, theta) -> _Factor:
        """Blocked Cholesky factor of the augmented system at theta (BMBW 18-19)."""
        Ts = split_theta(self.blocks, theta)
        S = self.XyXy.copy()
        logdet = 0.0
        L11 = C1 = L21 = L22 = C2 = None
        if self.blocks:
            T1 = Ts[0]
            M = np.einsum("ji,gjk,kl->gil", T1, self.D1, T1) + np.eye(self.p1)
            L11 = np.linalg.cholesky(M)
            C1 = np.linalg.solve(L11, np.einsum("ji,gjm->gim", T1, self.ZtXy1))
            logdet += 2.0 * np.log(np.diagonal(L11, axis1=1, axis2=2)).sum()
            S -= np.einsum("gim,gin->mn", C1, C1)
            if self.rest:
                L21, L22, C2, ld2 = self._factor_rest(Ts, L11, C1)
                logdet += ld2
                S -= C2.T @ C2
        try:
            Lxy = np.linalg.cholesky(S)
        except np.linalg.LinAlgError as exc:
            raise NumericalError("the fixed-effects cross-product is not positive definite at this theta") from exc
        return _Factor(Ts, L11, C1, L21, L22, C2, Lxy, logdet)

    def _factor_rest(self, Ts, L11, C1):
        """L21, L22 and C2 for the dense rest part, given the first block's factor."""
        T1 = Ts[0]
        Lr = self._lambda_rest(Ts)
        # W1 = blockdiag(T1 L11_g^{-T}) so that L21 = Lr' A21 W1
        W = T1[None] @ np.linalg.inv(L11).transpose(0, 2, 1)
        W1 = sp.csr_matrix((W.ravel(), (self._bd_rows, self._bd_cols)), shape=(self.l1 * self.p1,) * 2)
        L21 = (Lr.T @ self.A21 @ W1).tocsr()
        M22 = np.asarray((Lr.T @ sp.csr_matrix(self.A22) @ Lr).todense()) + np.eye(self.q_r)
        M22 -= (L21 @ L21.T).toarray()
        L22 = sla.cholesky(M22, lower=True, check_finite=False)
        rhs = np.asarray(Lr.T @ self.A2Xy) - L21 @ C1.reshape(-1, self.m)
        C2 = sla.solve_triangular(L22, rhs, lower=True, check_finite=False)
        return L21, L22, C2, 2.0 * np.log(np.diag(L22)).sum()

    def _criterion(self, F: _Factor) -> tuple[float, float, float]:
        """(objective, pwrss, logdet_RX) from a factor: BMBW (34) for ML, (41) for REML."""
        p, n = self.p, self.n
        pwrss = F.Lxy[p, p] ** 2
        logdet_RX = 2.0 * np.log(np.diag(F.Lxy)[:p]).sum()
        if self.reml:
            dof = n - p
            obj = F.logdet_L + logdet_RX + dof * (1.0 + np.log(2.0 * np.pi * pwrss / dof))
        else:
            obj = F.logdet_L + n * (1.0 + np.log(2.0 * np.pi * pwrss / n))
        return float(obj), float(pwrss), float(logdet_RX)

    def objective(self, theta) -> float:
        """The profiled deviance (ML) or REML criterion at theta; +inf where the factor fails."""
        try:
            return self._criterion(self._factor(np.asarray(theta, dtype=float)))[0]
        except (np.linalg.LinAlgError, NumericalError, FloatingPointError):
            return np.inf

    def deviance_parts(self, theta) -> tuple[float, float, float]:
        """(logdet_L, pwrss, logdet_RX) at theta: the pieces of any deviance, e.g. one not profiled over sigma."""
        F = self._factor(np.asarray(theta, dtype=float))
        _, pwrss, logdet_RX = self._criterion(F)
        return F.logdet_L, pwrss, logdet_RX

    # -- the same design with other responses (profiling, bootstrap) -------------------------------
    def with_response(self, y) -> "PlsModel":
        """A copy for a new response y: only the cross-products with y are recomputed."""
        new, p = copy.copy(self), self.p
        y = np.asarray(y, dtype=float)
        new.Xy = self.Xy.copy()
        new.Xy[:, p] = y
        new.XyXy = self.XyXy.copy()
        new.XyXy[:, p] = new.XyXy[p, :] = new.Xy.T @ y
        if self.blocks:
            blk = self.blocks[0]
            new.ZtXy1 = self.ZtXy1.copy()
            new.ZtXy1[:, :, p] = _pair_sums(blk.codes, self.l1, blk.Z, y[:, None])[:, :, 0]
            if self.rest:
                new.A2Xy = self.A2Xy.copy()
                new.A2Xy[:, p] = _sparse_Z(self.rest).T @ y
        return new

    def recombined(self, M) -> "PlsModel":
        """A copy whose [X y] is [X y] M (M: (p+1) x (p'+1)), e.g. a column moved into an offset.

        Every cross-product is linear in [X y], so this never touches the n rows except Xy itself.
        """
        new = copy.copy(self)
        new.Xy = self.Xy @ M
        new.XyXy = M.T @ self.XyXy @ M
        new.m = M.shape[1]
        new.p = new.m - 1
        if self.blocks:
            new.ZtXy1 = self.ZtXy1 @ M
            if self.rest:
                new.A2Xy = self.A2Xy @ M
        return new

    # -- the solution ------------------------------------------------------------------------
    def solve(self, theta, cond_var: bool = True) -> PlsSolution:
        """beta, the random effects and sigma at theta; conditional variances of b if asked."""
        theta = np.asarray(theta, dtype=float)
        F = self._factor(theta)
        obj, pwrss, logdet_RX = self._criterion(F)
        p = self.p
        Lxx, lyx = F.Lxy[:p, :p], F.Lxy[p, :p]
        beta = sla.solve_triangular(Lxx.T, lyx, lower=False) if p else np.zeros(0)
        sigma = float(np.sqrt(pwrss / (self.n - p if self.reml else self.n)))
        u = self._solve_u(F, beta)
        b = [(Tk @ uk.T).T for Tk, uk in zip(F.Ts, u)]
        sol = PlsSolution(theta, beta, b, u, pwrss, F.logdet_L, logdet_RX, Lxx.T.copy(), sigma, obj, self.reml)
        if cond_var:
            sol.cond_var = self._cond_var(F, sigma)
        return sol

    def _solve_u(self, F: _Factor, beta) -> list[np.ndarray]:
        """Back-substitute L' u = c_y - C_X beta through the blocks, last block first."""
        if not self.blocks:
            return []
        p = self.p
        r1 = F.C1[:, :, p] - F.C1[:, :, :p] @ beta
        u_rest = []
        if self.rest:
            r2 = F.C2[:, p] - F.C2[:, :p] @ beta
            u2 = sla.solve_triangular(F.L22.T, r2, lower=False)
            r1 = r1 - (F.L21.T @ u2).reshape(self.l1, self.p1)
            pos = 0
            for blk in self.rest:
                k = blk.nlevels * blk.p
                u_rest.append(u2[pos:pos + k].reshape(blk.nlevels, blk.p))
                pos += k
        u1 = np.linalg.solve(F.L11.transpose(0, 2, 1), r1[:, :, None])[:, :, 0]
        return [u1] + u_rest

    def _cond_var(self, F: _Factor, sigma) -> list[np.ndarray]:
        """Diagonal blocks of sigma^2 Lambda (L L')^{-1} Lambda', per level (lme4's condVar)."""
        if not self.blocks:
            return []
        L11inv = np.linalg.inv(F.L11)
        V1 = L11inv.transpose(0, 2, 1) @ L11inv
        out_rest = []
        if self.rest:
            H = sla.solve_triangular(F.L22, np.eye(self.q_r), lower=True)
            # G = L22^{-1} L21 L11^{-1}: the first block's share of the rest's fill-in
            G = (F.L21 @ sp.csr_matrix((L11inv.ravel(), (self._bd_rows, self._bd_cols)),
                                       shape=(self.l1 * self.p1,) * 2)).toarray()
            G = H @ G
            Gb = G.reshape(self.q_r, self.l1, self.p1)
            V1 = V1 + np.einsum("rgi,rgj->gij", Gb, Gb)
            pos = 0
            for blk, T in zip(self.rest, F.Ts[1:]):
                k = blk.nlevels * blk.p
                Hb = H[:, pos:pos + k].reshape(self.q_r, blk.nlevels, blk.p)
                V = np.einsum("rgi,rgj->gij", Hb, Hb)
                out_rest.append(sigma**2 * (T[None] @ V @ T.T[None]))
                pos += k
        T1 = F.Ts[0]
        return [sigma**2 * (T1[None] @ V1 @ T1.T[None])] + out_rest
