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

from lmmcli.engine import kernels as kern
from lmmcli.errors import ModelSpecError, NumericalError

# scipy is imported where it is needed (the crossed/nested path and the solution), not here:
# a single-term fit needs numpy only, and importing scipy.linalg costs ~0.1 s of start-up.

# The dense part (all random effects after the largest term) must fit in memory as a square matrix.
MAX_DENSE_REST = 20000


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
    L21: object | None         # (q_r, q1) sparse; formed only for the solution (see PlsModel.L21)
    L22: np.ndarray | None     # (q_r, q_r) lower triangle (the upper one holds leftovers)
    C2: np.ndarray | None      # (q_r, m)
    Lxy: np.ndarray            # (m, m) lower factor of the [X y] Schur complement
    logdet_L: float


def _pair_sums(codes, nlev, A, B):
    """sum over rows of each level of A[:, i] * B[:, j] -> (nlev, A.shape[1], B.shape[1])."""
    return kern.pair_sums(codes, nlev, A, B)


def sparse_Z(blocks):
    """The n x q sparse model matrix of a list of blocks (columns level-major within each block)."""
    import scipy.sparse as sp

    mats = []
    for blk in blocks:
        n, p = blk.Z.shape
        rows = np.repeat(np.arange(n), p)
        cols = (blk.codes[:, None] * p + np.arange(p)[None, :]).ravel()
        mats.append(sp.csr_matrix((blk.Z.ravel(), (rows, cols)), shape=(n, blk.nlevels * p)))
    return sp.hstack(mats, format="csr")


def block_diag_pattern(nblk: int, p: int):
    """Row and column indices of a block-diagonal matrix of nblk p x p blocks (row-major within block)."""
    g = np.arange(nblk)[:, None, None] * p
    r = (g + np.arange(p)[None, :, None]).repeat(p, axis=2)
    c = (g + np.arange(p)[None, None, :]).repeat(p, axis=1)
    return r.ravel(), c.ravel()


def lambda_matrix(blocks, Ts):
    """Lambda = blockdiag_k(I_levels (x) T_k) as a sparse matrix, columns ordered as Z's."""
    import scipy.sparse as sp

    return sp.block_diag([sp.kron(sp.identity(b.nlevels), T) for b, T in zip(blocks, Ts)], format="csr")


class PlsModel:
    """Cross-products of [Z X y] formed once, and the profiled objective (BMBW 34, 41) of theta."""

    def __init__(self, X: np.ndarray, y: np.ndarray, blocks, reml: bool = True):
        self.n, self.p = X.shape
        self.reml = reml
        self.blocks = list(blocks)
        self.lower = theta_lower(self.blocks)
        self.theta0 = theta_start(self.blocks)
        self.Xy = np.empty((self.n, self.p + 1))   # one n x m array, filled in place (no extra copy)
        self.Xy[:, :self.p] = X
        self.Xy[:, self.p] = y
        self.XyXy = kern.gram(self.Xy)
        self.m = self.p + 1
        if self.blocks:
            self._init_first(self.blocks[0])
            self._init_rest(self.blocks[1:])

    # -- formed once -------------------------------------------------------------------------
    def _init_first(self, blk):
        """The largest term: per-level Z'Z blocks and Z'[X y] blocks."""
        self.l1, self.p1 = blk.nlevels, blk.p
        self.D1, self.ZtXy1 = kern.level_cross(blk.codes, self.l1, blk.Z, [blk.Z, self.Xy])

    def _init_rest(self, rest):
        """All other terms: their Z'Z and coupling to the first term (sparse), and a dense Z'[X y]."""
        self.rest = rest
        self.q_r = sum(b.nlevels * b.p for b in rest)
        if not rest:
            return
        if self.q_r > MAX_DENSE_REST:
            raise ModelSpecError(
                f"the random terms after the largest one have {self.q_r} random effects together; "
                f"lmm handles at most {MAX_DENSE_REST} there",
                hint="put the grouping factor with the most levels in its own term, or use fewer levels")
        Z1 = sparse_Z(self.blocks[:1])
        Zr = sparse_Z(rest)
        self.A22 = (Zr.T @ Zr).tocsr()
        self.A21 = (Zr.T @ Z1).tocsr()
        self.A2Xy = np.asarray(Zr.T @ self.Xy)
        offsets = np.cumsum([0] + [b.nlevels * b.p for b in rest])
        layout = [(int(o), b.nlevels, b.p) for o, b in zip(offsets, rest)]
        self.rest_part = kern.RestPart(self.A21, self.A22, layout, self.l1, self.p1)

    # -- per theta ---------------------------------------------------------------------------
    def _factor(self, theta, full: bool = False) -> _Factor:
        """Blocked Cholesky factor of the augmented system at theta (BMBW 18-19).

        The objective needs only log|L|, the [X y] Schur complement and, with crossed or nested
        terms, L22 and C2; the first block's L11 and C1 are formed only when `full` (the solution).
        """
        Ts = split_theta(self.blocks, theta)
        S = self.XyXy.copy()
        logdet = 0.0
        L11 = C1 = L21 = L22 = C2 = None
        if self.blocks:
            if full or self.p1 > 2:
                L11, C1, ld1, CtC, S1 = self._first_general(Ts[0])
            else:
                ld1, CtC, S1 = kern.first_block(Ts[0], *self._first_soa())
            logdet += ld1
            S -= CtC
            if self.rest:
                L22, C2, ld2 = self._factor_rest(Ts, S1)
                logdet += ld2
                S -= C2.T @ C2
        try:
            Lxy = np.linalg.cholesky(S)
        except np.linalg.LinAlgError as exc:
            raise NumericalError("the fixed-effects cross-product is not positive definite at this theta") from exc
        return _Factor(Ts, L11, C1, L21, L22, C2, Lxy, logdet)

    def _first_soa(self):
        """D1 and ZtXy1 as contiguous per-level arrays, cached (and rebuilt if either was replaced)."""
        c = getattr(self, "_soa_cache", None)
        if c is None or c[0] is not self.D1 or c[1] is not self.ZtXy1:
            c = self._soa_cache = (self.D1, self.ZtXy1, kern.soa(self.D1, self.ZtXy1))
        return c[2]

    def _first_general(self, T1):
        """L11, C1, log|L11|^2, C1'C1 and S_g = T1 M_g^{-1} T1' of the first block, any p1."""
        M = kern.congruence(T1, self.D1)
        M[:, range(self.p1), range(self.p1)] += 1.0
        L11 = kern.chol(M)
        C1 = kern.fsolve(L11, kern.left_mult_t(T1, self.ZtXy1))
        C1f = C1.reshape(-1, C1.shape[2])
        Li = kern.inv_lower(L11)
        if self.p1 > 1:
            S1 = T1[None] @ (Li.transpose(0, 2, 1) @ Li) @ T1.T[None]
        else:
            S1 = Li * Li * T1[0, 0] ** 2
        return L11, C1, kern.logdet(L11), C1f.T @ C1f, S1

    def _factor_rest(self, Ts, S1):
        """L22, C2 and log|L22|^2 for the dense rest part, given the first block's S_g = T1 M_g^{-1} T1'.

        With W1 = blockdiag_g(T1 L11_g^{-T}), L21 = Lr' A21 W1, so L21 L21' = Lr' A21 S A21' Lr and
        L21 C1 = Lr' A21 S Z1'[X y]: L21 itself is never formed here.
        """
        rp, Tr = self.rest_part, Ts[1:]
        M22 = rp.schur(S1)
        rp.lambda_sym(M22, Tr)
        M22.ravel()[::self.q_r + 1] += 1.0
        logdet = kern.potrf_lower(M22)
        ZS = kern.stack_mult(S1, self.ZtXy1).reshape(-1, self.m)
        rhs = rp.lambda_t(self.A2Xy - self.A21 @ ZS, Tr)
        C2 = kern.trsm_lower(M22, rhs)
        return M22, C2, logdet

    def L21(self, F: _Factor):
        """L21 = Lr' A21 blockdiag_g(T1 L11_g^{-T}) (sparse), for the solution and its variances."""
        import scipy.sparse as sp

        if F.L21 is None:
            W = F.Ts[0][None] @ kern.inv_lower(F.L11).transpose(0, 2, 1)
            rows, cols = block_diag_pattern(self.l1, self.p1)
            W1 = sp.csr_matrix((W.ravel(), (rows, cols)), shape=(self.l1 * self.p1,) * 2)
            F.L21 = (lambda_matrix(self.rest, F.Ts[1:]).T @ self.A21 @ W1).tocsr()
        return F.L21

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
                new.A2Xy[:, p] = sparse_Z(self.rest).T @ y
        return new

    def recombined(self, M) -> "PlsModel":
        """A copy whose [X y] is [X y] M (M: (p+1) x (p'+1)), e.g. a column moved into an offset.

        Every cross-product is linear in [X y], so the n rows are never touched; the copy keeps no
        rows (Xy is None): it is for the objective and solve(), not for another with_response().
        """
        new = copy.copy(self)
        new.Xy = None
        new.XyXy = M.T @ self.XyXy @ M
        new.m = M.shape[1]
        new.p = new.m - 1
        if self.blocks:
            new.ZtXy1 = self.ZtXy1 @ M
            if self.rest:
                new.A2Xy = self.A2Xy @ M
        return new

    def term_model(self, k: int) -> "PlsModel":
        """The model with scalar random term k alone, from the cross-products already formed (no rows).

        A scalar term's Z'Z is diagonal (its per-level sums), so term k's D is the diagonal of its
        block of A22 (or D1 for the first term); its Z'[X y] is its rows of A2Xy (or ZtXy1).
        """
        blk = self.blocks[k]
        if blk.p != 1:
            raise ValueError("term_model is for scalar random terms")
        if k == 0:
            d, zxy = self.D1[:, 0, 0], self.ZtXy1[:, 0, :]
        else:
            off = sum(b.nlevels for b in self.blocks[1:k])
            d = self.A22.diagonal()[off:off + blk.nlevels]
            zxy = self.A2Xy[off:off + blk.nlevels]
        new = copy.copy(self)
        new.blocks, new.rest, new.q_r = [blk], [], 0
        new.lower, new.theta0 = theta_lower(new.blocks), theta_start(new.blocks)
        new.l1, new.p1 = blk.nlevels, 1
        new.D1, new.ZtXy1 = d[:, None, None].copy(), zxy[:, None, :].copy()
        for name in ("A22", "A21", "A2Xy", "rest_part", "_soa_cache"):
            new.__dict__.pop(name, None)
        return new

    # -- the solution ------------------------------------------------------------------------
    def solve(self, theta, cond_var: bool = True) -> PlsSolution:
        """beta, the random effects and sigma at theta; conditional variances of b if asked."""
        theta = np.asarray(theta, dtype=float)
        F = self._factor(theta, full=True)
        obj, pwrss, logdet_RX = self._criterion(F)
        p = self.p
        Lxx, lyx = F.Lxy[:p, :p], F.Lxy[p, :p]
        beta = kern.solve_upper(Lxx.T, lyx) if p else np.zeros(0)
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
            u2 = kern.trsm_lower_t(F.L22, r2)
            # L21' u2 = blockdiag_g(L11_g^{-1} T1') A21' Lr u2, without forming L21
            v = (self.A21.T @ self.rest_part.lambda_n(u2, F.Ts[1:])).reshape(self.l1, self.p1, 1)
            r1 = r1 - kern.fsolve(F.L11, kern.left_mult_t(F.Ts[0], v))[:, :, 0]
            pos = 0
            for blk in self.rest:
                k = blk.nlevels * blk.p
                u_rest.append(u2[pos:pos + k].reshape(blk.nlevels, blk.p))
                pos += k
        u1 = kern.bsolve(F.L11, r1[:, :, None])[:, :, 0]
        return [u1] + u_rest

    def _cond_var(self, F: _Factor, sigma) -> list[np.ndarray]:
        """Diagonal blocks of sigma^2 Lambda (L L')^{-1} Lambda', per level (lme4's condVar)."""
        if not self.blocks:
            return []
        L11inv = kern.inv_lower(F.L11)
        V1 = L11inv.transpose(0, 2, 1) @ L11inv
        out_rest = []
        rp = getattr(self, "rest_part", None)
        if self.rest and rp.K is not None and rp.diagonal and self.p1 == 1:
            V1, out_rest = self._cond_var_scalar(F, V1, sigma)
        elif self.rest:
            import scipy.sparse as sp

            H = kern.trsm_lower(F.L22, np.eye(self.q_r))
            # G = L22^{-1} L21 L11^{-1}: the first block's share of the rest's fill-in
            rows, cols = block_diag_pattern(self.l1, self.p1)
            G = (self.L21(F) @ sp.csr_matrix((L11inv.ravel(), (rows, cols)),
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

    def _cond_var_scalar(self, F: _Factor, V1, sigma):
        """_cond_var's crossed part when every term is scalar, through P = M22^{-1} and the fill pattern.

        The first block's extra term is M_g^{-1} t1^2 [A21' Lr P Lr' A21]_gg M_g^{-1}; the sum over
        pairs of rows is the fill-in pattern K read backwards (O(nnz K) instead of a q x q1 product).
        """
        from scipy.linalg.lapack import dpotri

        rp = self.rest_part
        P = F.L22.copy()
        _, info = dpotri(P.T, lower=0, overwrite_c=1)     # lower triangle of P = M22^{-1}
        if info != 0:
            raise NumericalError("the random-effects factor is singular; no conditional variances")
        lam = rp.lam(F.Ts[1:])
        Pt = P * np.outer(lam, lam)                         # Lr P Lr' (lower triangle)
        pdiag = np.diagonal(Pt).copy()
        y = 2.0 * (rp.K.T @ Pt.ravel())[:-1] - self.A21.multiply(self.A21).T @ pdiag
        Minv = V1[:, 0, 0]
        V1 = (Minv + (Minv * F.Ts[0][0, 0]) ** 2 * y)[:, None, None]
        out, pos, pd = [], 0, np.diagonal(P)
        for blk, T in zip(self.rest, F.Ts[1:]):
            out.append((sigma * T[0, 0]) ** 2 * pd[pos:pos + blk.nlevels].reshape(-1, 1, 1))
            pos += blk.nlevels
        return V1, out
