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
the coupling between the two is a sparse matrix. With Lambda = blockdiag(L1, Lr) (first term, rest)
the whole system is one blocked lower Cholesky factor:

    [ L1'A11L1 + I                           ]     [ L11   0    0   ] [ L11   0    0   ]'
    [ Lr'A21L1       Lr'A22Lr + I            ]  =  [ L21   L22  0   ] [ L21   L22  0   ]
    [ [X y]'Z1L1     [X y]'ZrLr    [X y]'[X y]]     [ C1'   C2'  Lxy ] [ C1'   C2'  Lxy ]

L11 is block-diagonal (one p1 x p1 factor per level), L21 sparse, L22 dense (q_r x q_r), and
Lxy (m x m, m = p + 1) is the factor of the [X y] Schur complement: its top-left p x p block is
RX', its last row holds RX beta-hat (the X columns) and sqrt(pwrss) (the corner). The objective
needs only log|L11|^2 + log|L22|^2, Lxy's diagonal and, for the rest terms, L22 and C2.
Every cross-product of [Z X y] arrives formed, in a CrossProducts (crossprod.py); evaluating the
objective never touches the n rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lmmcli.engine import kernels as kern
from lmmcli.engine import rest
from lmmcli.engine.crossprod import MAX_DENSE_REST, CrossProducts, sparse_model_matrix  # noqa: F401 (glmm uses MAX_DENSE_REST)
from lmmcli.errors import NumericalError

# scipy is imported where it is needed (the crossed/nested path and the solution), not here:
# a single-term fit needs numpy only, and importing scipy.linalg costs ~0.1 s of start-up.


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


def unscaled_vcov(RX: np.ndarray) -> np.ndarray:
    """(RX'RX)^{-1} = RX^{-1} RX^{-T} for an upper-triangular RX: Var(beta) / sigma^2.

    RX^{-1} by back substitution, one row at a time from the last (numpy only: a one-term fit and
    its t tests load no scipy).
    """
    p = len(RX)
    if p >= kern.SPARSE_GRAM_MIN:
        return kern.inverse_gram_upper(RX)    # LAPACK (O(p^3) in BLAS 3; the rows below are BLAS 2)
    Rinv = np.zeros((p, p))
    for i in range(p - 1, -1, -1):
        Rinv[i, i:] = -(RX[i, i + 1:] @ Rinv[i + 1:, i:]) / RX[i, i]
        Rinv[i, i] = 1.0 / RX[i, i]
    return Rinv @ Rinv.T


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
    inverse: tuple | None = None   # RestPart.inverse_diagonal's (v1, P), once taken (engine.gradient, _cond_var)


def sparse_Z(blocks):
    """The n x q sparse model matrix of a list of blocks of rows (columns level-major within each block)."""
    return sparse_model_matrix(blocks, [blk.codes for blk in blocks], [blk.Z for blk in blocks])


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
    """The profiled objective (BMBW 34, 41) of theta, from a CrossProducts (no rows).

    Works in the record's stored units (crossprod.py): theta, objective values, the solution and
    deviance_parts are in those units; engine.fit.ScaledModel shows them in the original ones.
    """

    def __init__(self, cp: CrossProducts, reml: bool = True, rest_part=None):
        self.cp = cp
        self.n, self.p, self.m = cp.n, cp.p, cp.m
        self.reml = reml
        self.blocks = list(cp.terms)
        self.lower = theta_lower(self.blocks)
        self.theta0 = theta_start(self.blocks)
        self.XyXy = cp.XyXy
        self.rest = self.blocks[1:]
        self.q_r = cp.q_rest
        self._last_solve = None    # (theta, solution, factor) of the last solve_factored (see there)
        if self.blocks:
            self.l1, self.p1 = self.blocks[0].nlevels, self.blocks[0].p
            self.D1, self.ZtXy1 = cp.D1, cp.ZtXy1
        if self.rest:
            self.A21, self.A22, self.A2Xy = cp.A21, cp.A22, cp.A2Xy
            self.rest_part = rest_part if rest_part is not None else self._rest_part()

    def z_rms(self) -> list[np.ndarray]:
        """Root mean square of each random term's Z columns (the natural size of theta's rows is 1 / it)."""
        return [np.sqrt(np.diag(self.cp.term_gram(k)) / self.n) if self.n else np.ones(t.p)
                for k, t in enumerate(self.blocks)]

    @classmethod
    def from_rows(cls, X, y, blocks, reml: bool = True) -> "PlsModel":
        """The model of one batch of rows taken as they are (CrossProducts.from_rows without units)."""
        return cls(CrossProducts.from_rows(X, y, blocks), reml)

    def _rest_part(self):
        """The rest terms' fixed fill-in structure (theta-independent; shared by with_criterion)."""
        offsets = np.cumsum([0] + [b.nlevels * b.p for b in self.rest])
        layout = [(int(o), b.nlevels, b.p) for o, b in zip(offsets, self.rest)]
        return rest.RestPart(self.A21, self.A22, layout, self.l1, self.p1)

    def with_criterion(self, reml: bool) -> "PlsModel":
        """The same cross-products under the other criterion (REML or ML), sharing the fill-in structure."""
        return PlsModel(self.cp, reml, getattr(self, "rest_part", None))

    def term_model(self, k: int) -> "PlsModel":
        """The model with scalar random term k alone (CrossProducts.term)."""
        return PlsModel(self.cp.term(k), self.reml)

    def without_first_model(self) -> "PlsModel":
        """The model without its first random term (CrossProducts.without_first)."""
        return PlsModel(self.cp.without_first(), self.reml)

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
        """D1 and ZtXy1 as contiguous per-level arrays, formed at the first evaluation."""
        if not hasattr(self, "_soa_cache"):
            self._soa_cache = kern.soa(self.D1, self.ZtXy1)
        return self._soa_cache

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
        M22 = rp.lambda_schur(S1, Tr)
        M22.ravel()[::self.q_r + 1] += 1.0
        logdet = rest.potrf_lower(M22)
        ZS = kern.stack_mult(S1, self.ZtXy1).reshape(-1, self.m)
        rhs = rp.lambda_t(self.A2Xy - self.A21 @ ZS, Tr)
        C2 = rest.trsm_lower(M22, rhs)
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
        theta = np.asarray(theta, dtype=float)
        last = self._last_solve
        if (last is not None and np.array_equal(last[0], theta)) or self.p >= kern.SPARSE_GRAM_MIN:
            # the optimum's (engine.fit's exact-fit check); with many fixed effects the p x p Cholesky is the
            # whole cost, so the parts come from a solve, which is kept for the solution at the same theta
            sol = self.solve_factored(theta)[0]
            return sol.logdet_L, sol.pwrss, sol.logdet_RX
        F = self._factor(theta)
        _, pwrss, logdet_RX = self._criterion(F)
        return F.logdet_L, pwrss, logdet_RX

    # -- the solution ------------------------------------------------------------------------
    def solve(self, theta, cond_var: bool = True) -> PlsSolution:
        """beta, the random effects and sigma at theta; conditional variances of b if asked."""
        return self.solve_factored(np.asarray(theta, dtype=float), cond_var)[0]

    def solve_factored(self, theta, cond_var: bool = False) -> tuple[PlsSolution, _Factor]:
        """solve(theta) and the factor it came from (engine.gradient reads both). The last theta's are
        kept: the solution at the optimum is the Newton end step's last gradient point (one factor and
        one dense inverse fewer on InstEval)."""
        last = self._last_solve
        if last is not None and np.array_equal(last[0], theta):
            sol, F = replace(last[1]), last[2]
        else:
            sol, F = self._solve_new(theta)
            self._last_solve = (np.array(theta, dtype=float), replace(sol), F)
        if cond_var:
            sol.cond_var = self._cond_var(F, sol.sigma)
        return sol, F

    def _solve_new(self, theta) -> tuple[PlsSolution, _Factor]:
        F = self._factor(theta, full=True)
        obj, pwrss, logdet_RX = self._criterion(F)
        p = self.p
        Lxx, lyx = F.Lxy[:p, :p], F.Lxy[p, :p]
        beta = kern.solve_upper(Lxx.T, lyx) if p else np.zeros(0)
        sigma = float(np.sqrt(pwrss / (self.n - p if self.reml else self.n)))
        u = self._solve_u(F, beta)
        b = [(Tk @ uk.T).T for Tk, uk in zip(F.Ts, u)]
        return PlsSolution(theta, beta, b, u, pwrss, F.logdet_L, logdet_RX, Lxx.T.copy(), sigma, obj, self.reml), F

    def _solve_u(self, F: _Factor, beta) -> list[np.ndarray]:
        """Back-substitute L' u = c_y - C_X beta through the blocks, last block first."""
        if not self.blocks:
            return []
        p = self.p
        r1 = F.C1[:, :, p:] - F.C1[:, :, :p] @ beta[:, None]
        r2 = F.C2[:, p:] - F.C2[:, :p] @ beta[:, None] if self.rest else None
        u1, u2 = self.back_solve(F, r1, r2)
        u_rest, pos = [], 0
        for blk in self.rest:
            k = blk.nlevels * blk.p
            u_rest.append(u2[pos:pos + k, 0].reshape(blk.nlevels, blk.p))
            pos += k
        return [u1[:, :, 0]] + u_rest

    def back_solve(self, F: _Factor, r1, r2):
        """L' x = r through the blocks, last block first: r1 (l1, p1, c) for the first term, r2 (q_r, c)
        for the rest (None without rest terms); returns (x1, x2) shaped as r1, r2."""
        x2 = None
        if self.rest:
            x2 = rest.trsm_lower_t(F.L22, r2)
            # L21' x2 = blockdiag_g(L11_g^{-1} T1') A21' Lr x2, without forming L21
            v = (self.A21.T @ self.rest_part.lambda_n(x2, F.Ts[1:])).reshape(self.l1, self.p1, -1)
            r1 = r1 - kern.fsolve(F.L11, kern.left_mult_t(F.Ts[0], v))
        return kern.bsolve(F.L11, r1), x2

    def _cond_var(self, F: _Factor, sigma) -> list[np.ndarray]:
        """Diagonal blocks of sigma^2 Lambda (L L')^{-1} Lambda', per level (lme4's condVar)."""
        if not self.blocks:
            return []
        L11inv = kern.inv_lower(F.L11)
        V1 = L11inv.transpose(0, 2, 1) @ L11inv
        out_rest = []
        rp = getattr(self, "rest_part", None)
        if self.rest and rp.diagonal and self.p1 == 1:
            V1, out_rest = self._cond_var_scalar(F, V1, sigma)
        elif self.rest:
            import scipy.sparse as sp

            H = rest.trsm_lower(F.L22, np.eye(self.q_r))
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
        """_cond_var's crossed part when every term is scalar, through P = M22^{-1} and the fill pattern K.

        With scalar terms the first block's conditional variance (before sigma^2 t1^2) is, per level g,

            V1_g = m_g^{-1} + m_g^{-2} t1^2 [A21' Lr P Lr' A21]_gg,     m_g = t1^2 D_g + 1,

        and the rest effect r's is P_rr. The middle term is a sum over pairs of rows of A21 in
        level g, sum_{r,s} A[r,g] A[s,g] Q[r,s] (Q = Lr P Lr'): exactly the pairs K holds (see
        rest.fill_pattern), but K keeps only r >= s, so the sum is 2 K'vec(Q) - sum_r A[r,g]^2 Q[r,r]
        (without K, schur.ScalarSchur.quad sums the same pairs: RestPart.inverse_diagonal).
        Worked example (fill_pattern's A21, level g = 0 holds rows 0 and 1 with A = 2, 1):
            sum = 4 Q00 + 2*2 Q10 + Q11;   2 K'vec(Q) = 2 (4 Q00 + 2 Q10 + Q11);   minus 4 Q00 + Q11.
        Cost O(nnz K) instead of a q x q1 product.
        """
        if F.inverse is None:
            F.inverse = self.rest_part.inverse_diagonal(F.L22, F.Ts, V1[:, 0, 0])
        v1, P = F.inverse
        V1 = v1[:, None, None]
        out, pos, p_diag = [], 0, np.diagonal(P)
        for blk, T in zip(self.rest, F.Ts[1:]):
            out.append((sigma * T[0, 0]) ** 2 * p_diag[pos:pos + blk.nlevels].reshape(-1, 1, 1))
            pos += blk.nlevels
        return V1, out
