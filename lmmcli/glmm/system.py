"""The weighted penalized least-squares system of one PIRLS step: M = Lambda' Z' W Z Lambda + I, factored.

Unlike the linear model, the weights W change at every PIRLS step, so Z'WZ is re-formed each time.
What is fixed by Z alone is formed once: for every row, which entries of Z'Z it touches ("pair
slots"), so that Z'WZ is one bincount over rows (O(n), no Python loop over rows or groups).

Layout (as engine.pls): the random-effect blocks come largest first. M is block-diagonal in the
first block, a batch of p1 x p1 factors L11_g, one per level; every other block is gathered into
one dense part of size q_r, coupled to the first by a sparse A21:

    M = [ M11  M21' ]   L = [ L11   0  ]   L21 = M21 L11^{-T},  L22 L22' = M22 - L21 L21'
        [ M21  M22  ]       [ L21  L22 ]

Names follow Bates et al. (2015): theta, Lambda (T_k per level), u, L, logdet_L = log |L|^2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmmcli.engine import kernels as kern
from lmmcli.engine.pls import MAX_DENSE_REST, split_theta
from lmmcli.errors import ModelSpecError


# Below this size a triangular solve by np.linalg.solve (an LU, 2/3 q^3 flops) beats importing
# scipy.linalg (0.15 s) over a fit's ~500 solves; at grouseticks' 181 the LU took 0.3 s of 1.0.
SMALL_DENSE = 80
# When the first term and the rest are scalar and q_r^2 q1 (the flops of a dense L21 L21' per
# PIRLS step) exceeds this, L21 is kept sparse with A21's pattern and L21 L21' costs sum_g nnz_g^2
# (InstEval's 1,128 x 2,972: 3.8e9 flops a step dense). Below it the dense product is cheaper than
# importing scipy.sparse (VerbAgg: 1.8e5; grouseticks, 1.3e7, gains 0.2 s of 0.9).
SPARSE_COUPLING = 5_000_000
CHUNK = 2048          # columns of L21 turned dense at a time for the conditional variances


def _level_values(x: np.ndarray, codes: np.ndarray, nlevels: int):
    """x's value per level when x is constant within every level, else None."""
    vals = np.zeros(nlevels)
    vals[codes] = x
    return vals if np.array_equal(vals[codes], x) else None


def _tri_solve(L: np.ndarray, R: np.ndarray, transpose: bool = False) -> np.ndarray:
    """L^{-1} R (or L^{-T} R) for a lower-triangular L."""
    A = L.T if transpose else L
    if len(L) <= SMALL_DENSE:
        return np.linalg.solve(A, R)
    from scipy.linalg import solve_triangular

    return solve_triangular(L, R, lower=True, trans="T" if transpose else "N", check_finite=False)


class PairSums:
    """sum_i W_i a_i b_i into fixed slots: the slot of each (row, pair) and the product a_i b_i, formed once."""

    def __init__(self, slots: list[np.ndarray], products: list[np.ndarray]):
        self.keys = np.concatenate(slots) if slots else np.zeros(0, dtype=np.int64)
        self.unique, self.inverse = np.unique(self.keys, return_inverse=True)
        self.products = np.concatenate(products) if products else np.zeros(0)
        self.ones = all(bool(np.all(p == 1.0)) for p in products)
        self.npairs = len(slots)
        # one row per slot (a fully crossed design with one observation per cell): the sums are W itself,
        # scattered into the slots, without a bincount
        self.scatter = self.npairs == 1 and self.ones and len(self.unique) == len(self.keys)

    def _weights(self, W: np.ndarray) -> np.ndarray:
        w = np.tile(W, self.npairs) if self.npairs > 1 else W
        return w if self.ones else w * self.products

    def __call__(self, W: np.ndarray) -> np.ndarray:
        """The sums at the used slots (self.unique, sorted)."""
        return np.bincount(self.inverse, weights=self._weights(W), minlength=len(self.unique))

    def dense(self, W: np.ndarray, size: int) -> np.ndarray:
        """The sums at every slot 0..size-1 (the slots are flat indices into a dense matrix): the same
        sums, in the same order, as __call__, without its scatter into the matrix afterwards."""
        if self.scatter:
            out = np.zeros(size)
            out[self.keys] = W
            return out
        return np.bincount(self.keys, weights=self._weights(W), minlength=size)


@dataclass
class Factor:
    """The factor of M at one (theta, W), and the pieces the solves need."""

    Ts: list
    L11: np.ndarray                 # (l1, p1, p1) lower
    A11: np.ndarray | None          # (l1, p1, p1) Z_g' W Z_g, the first block's cross-products at W
    L21: np.ndarray | None          # (q_r, q1) dense
    L22: np.ndarray | None          # (q_r, q_r) lower
    logdet_L: float
    lam_r: object | None            # Lambda of the rest blocks: its diagonal (all scalar), else sparse
    A21: np.ndarray | None = None   # (q_r, q1) Zr' W Z1 when every term is a scalar intercept (zt_wx reads it)


class WeightedSystem:
    """Z's structure, formed once; `factor(W, theta)` and the solves with M, per PIRLS step."""

    def __init__(self, blocks):
        self.blocks = list(blocks)
        first = self.blocks[0]
        self.n = len(first.codes)
        self.l1, self.p1 = first.nlevels, first.p
        self.q1 = self.l1 * self.p1
        self.rest = self.blocks[1:]
        self.q_r = sum(b.nlevels * b.p for b in self.rest)
        self.q = self.q1 + self.q_r
        if self.q_r > MAX_DENSE_REST:
            raise ModelSpecError(f"the random terms after the largest one have {self.q_r} random effects together; "
                                 f"lmm handles at most {MAX_DENSE_REST} there")
        self.offsets = np.cumsum([0] + [b.nlevels * b.p for b in self.blocks])
        # a term column of ones (an intercept) needs no multiplication
        self.ones = [[bool(np.all(b.Z[:, j] == 1.0)) for j in range(b.p)] for b in self.blocks]
        self._first_pairs(first)
        self.sparse = False
        # two scalar intercepts, (1 | g1) + (1 | g2): each row adds its W to one entry of A21, so A21's
        # column and row sums are A11 and A22, both diagonal (no more passes over the rows)
        self.intercepts = all(b.p == 1 and ones[0] for b, ones in zip(self.blocks, self.ones))
        self.intercepts_dense = False
        self._last_split = None
        self.diag_r = np.diag_indices(self.q_r)
        if self.rest:
            self._rest_pairs(first)
            self.sparse = (self.p1 == 1 and all(b.p == 1 for b in self.rest)
                           and self.q_r ** 2 * self.q1 > SPARSE_COUPLING)
            self.intercepts_dense = self.intercepts and len(self.rest) == 1 and not self.sparse

    # -- Z b and Z' V without forming Z (gathers and bincounts by level) ---------------------------
    def z_times(self, b: np.ndarray) -> np.ndarray:
        """Z b for a q-vector b (ordered as Z's columns: block, level, term)."""
        out = None
        for blk, off, ones in zip(self.blocks, self.offsets, self.ones):
            B = b[off:off + blk.nlevels * blk.p].reshape(blk.nlevels, blk.p)
            for j in range(blk.p):
                term = B[:, j].take(blk.codes)      # (a 1-d gather: ~3x faster than B[codes, j])
                if not ones[j]:
                    term *= blk.Z[:, j]
                if out is None:
                    out = term
                else:
                    out += term
        return out

    def zt_times(self, V: np.ndarray) -> np.ndarray:
        """Z' V for an (n,) or (n, m) array V."""
        V2 = V[:, None] if V.ndim == 1 else V
        out = np.empty((self.q, V2.shape[1]))
        if self.intercepts_dense:
            # one bincount into the (rest level, first level) cells, pipelined where one into the few
            # rest levels waits on each add; both terms' sums are then the cells' row and column sums
            for c in range(V2.shape[1]):
                cells = self.a21_sums.dense(V2[:, c], self.q_r * self.q1).reshape(self.q_r, self.q1)
                out[:self.q1, c] = cells.sum(axis=0)
                out[self.q1:, c] = cells.sum(axis=1)
            return out[:, 0] if V.ndim == 1 else out
        for k in range(len(self.blocks)):
            self._block_t(k, V2, out, range(V2.shape[1]))
        return out[:, 0] if V.ndim == 1 else out

    def zt_wx(self, F: Factor, W: np.ndarray, WX: np.ndarray, plan) -> np.ndarray:
        """Z' W X for WX = W * X (n, m; F-ordered is fastest), by the plan of `wx_plan` for X.

        Where a column of X is a column of the first block's Z (the intercept, a slope that is also
        a fixed effect), its sums are the factor's Z1' W Z1; where it is constant within a term's
        levels (a subject's covariate for a subject term), they are that value times the level's
        sums of W z_j; only the other columns cost a pass over the rows."""
        m = WX.shape[1]
        out = np.empty((self.q, m))
        for k, (blk, off, cols) in enumerate(zip(self.blocks, self.offsets, plan)):
            part = out[off:off + blk.nlevels * blk.p].reshape(blk.nlevels, blk.p, m)
            sums_w = None
            for c, (kind, value) in enumerate(cols):
                if kind == "match":
                    part[:, :, c] = F.A11[:, :, value]
                elif kind == "const":
                    if sums_w is None:
                        sums_w = self._level_w_sums(k, F, W)
                    part[:, :, c] = value[:, None] * sums_w
                elif kind == "across":
                    part[:, 0, c] = (F.A21.T if k == 0 else F.A21) @ value
            self._block_t(k, WX, out, [c for c, (kind, _) in enumerate(cols) if kind == "sum"])
        return out

    def _level_w_sums(self, k: int, F: Factor, W: np.ndarray) -> np.ndarray:
        """(levels, p): sum of W z_j over each level of block k (from Z1'WZ1 for the first block)."""
        blk = self.blocks[k]
        if k == 0:
            return F.A11[:, :, self.ones[0].index(True)]
        if F.A21 is not None:           # two scalar intercepts: the rest term's sums are A21's row sums
            return F.A21.sum(axis=1)[:, None]
        return np.column_stack([np.bincount(blk.codes, weights=W if self.ones[k][j] else W * blk.Z[:, j],
                                            minlength=blk.nlevels) for j in range(blk.p)])

    def _block_t(self, k: int, V2: np.ndarray, out: np.ndarray, columns) -> None:
        """Block k's rows of Z' V into out, for the given columns of V."""
        blk, off, ones = self.blocks[k], self.offsets[k], self.ones[k]
        part = out[off:off + blk.nlevels * blk.p].reshape(blk.nlevels, blk.p, V2.shape[1])
        for j in range(blk.p):
            for c in columns:
                w = V2[:, c] if ones[j] else blk.Z[:, j] * V2[:, c]
                part[:, j, c] = np.bincount(blk.codes, weights=w, minlength=blk.nlevels)

    def wx_plan(self, X: np.ndarray) -> list:
        """Per block, per column of X, how zt_wx forms its sums: ("match", j) for the first block's
        column j of Z equal to it, ("const", per-level values) for a column constant within the
        levels of a block with an intercept, ("across", values) (see _across), else ("sum", None)."""
        Z1 = self.blocks[0].Z
        plan = []
        for k, blk in enumerate(self.blocks):
            cols = []
            for c in range(X.shape[1]):
                x = X[:, c]
                j = next((j for j in range(self.p1) if np.array_equal(x, Z1[:, j])), None) if k == 0 else None
                vals = _level_values(x, blk.codes, blk.nlevels) if True in self.ones[k] else None
                cols.append(("match", j) if j is not None else ("const", vals) if vals is not None
                            else self._across(k, x))
            plan.append(cols)
        return plan

    def _across(self, k: int, x: np.ndarray):
        """For two scalar intercepts: ("across", the other term's level values) when x is constant within
        the levels of the term other than k (an item's covariate under the subject term): block k's
        sums of W x are then A21 (or A21') times those values. Else ("sum", None)."""
        if not self.intercepts_dense:
            return ("sum", None)
        other = self.blocks[1 - k]
        vals = _level_values(x, other.codes, other.nlevels)
        return ("sum", None) if vals is None else ("across", vals)

    # -- formed once ----------------------------------------------------------------------------
    def _first_pairs(self, blk):
        """The first block's per-level sums: one bincount by level per pair (i <= j) of its columns,
        of W times the (fixed) product z_i z_j -- None for an intercept's product, which is W itself."""
        p = self.p1
        self.first_ij = [(i, j) for i in range(p) for j in range(i, p)]
        self.first_codes = blk.codes
        self.first_products = []
        for i, j in self.first_ij:
            prod = blk.Z[:, i] * blk.Z[:, j]
            self.first_products.append(None if bool(np.all(prod == 1.0)) else prod)

    def _rest_pairs(self, first):
        """Slots of A22 = Zr' W Zr (lower triangle, dense) and A21 = Zr' W Z1 (sparse, fixed pattern)."""
        cols, vals = [], []          # each rest column a row touches, with its value
        off = 0
        for blk in self.rest:
            for j in range(blk.p):
                cols.append(off + blk.codes * blk.p + j)
                vals.append(blk.Z[:, j])
            off += blk.nlevels * blk.p
        q_r = self.q_r
        # each pair a <= b of a row's columns once, at its lower-triangle position (mirrored later);
        # columns of different terms never coincide, so a < b is always off the diagonal
        pairs = [(a, b) for a in range(len(cols)) for b in range(a, len(cols))]
        s22 = [np.maximum(cols[a], cols[b]) * q_r + np.minimum(cols[a], cols[b]) for a, b in pairs]
        v22 = [vals[a] * vals[b] for a, b in pairs]
        self.a22_sums = PairSums(s22, v22)
        self.a22_rows, self.a22_cols = np.divmod(self.a22_sums.unique, q_r)
        s21, v21 = [], []
        for a in range(len(cols)):
            for j in range(first.p):
                s21.append(cols[a] * self.q1 + first.codes * first.p + j)
                v21.append(vals[a] * first.Z[:, j])
        self.a21_sums = PairSums(s21, v21)
        r, c = np.divmod(self.a21_sums.unique, self.q1)
        self.a21_rows, self.a21_cols = r, c
        # the unique slots are sorted by row, then column: A21's CSR layout as it stands
        self.a21_indptr = np.searchsorted(r, np.arange(q_r + 1))

    # -- per PIRLS step ----------------------------------------------------------------------------
    def first_cross(self, W) -> np.ndarray:
        """(l1, p1, p1): Z_g' W Z_g per level of the first block."""
        A = np.empty((self.l1, self.p1, self.p1))
        for (i, j), prod in zip(self.first_ij, self.first_products):
            A[:, i, j] = A[:, j, i] = np.bincount(self.first_codes, weights=W if prod is None else W * prod,
                                                  minlength=self.l1)
        return A

    def rest_cross(self, W):
        """(A21 dense q_r x q1, A22 dense q_r x q_r symmetric)."""
        A21 = self.a21_sums.dense(W, self.q_r * self.q1).reshape(self.q_r, self.q1)
        return A21, self._a22(W)

    def _a22(self, W):
        """A22 = Zr' W Zr, dense and symmetric."""
        lower = self.a22_sums.dense(W, self.q_r * self.q_r).reshape(self.q_r, self.q_r)
        A22 = lower + lower.T                 # exact: each off-diagonal entry is x + 0
        A22[np.diag_indices(self.q_r)] = np.diagonal(lower)
        return A22

    def _sparse_coupling(self, W, t1: float, L11, lam_r):
        """(L21 sparse, M22 - L21 L21' + I dense) for a scalar first term (t1) and scalar rest terms."""
        import scipy.sparse as sp

        d1 = t1 / L11[:, 0, 0]
        data = self.a21_sums(W) * lam_r[self.a21_rows] * d1[self.a21_cols]
        L21 = sp.csr_matrix((data, self.a21_cols, self.a21_indptr), shape=(self.q_r, self.q1))
        M22 = self._a22(W)
        M22 *= lam_r[:, None]
        M22 *= lam_r[None, :]
        M22 -= (L21 @ L21.T).toarray()
        return L21, M22

    def lambdas(self, theta) -> Factor:
        """A Factor holding only Lambda at theta (for the linear predictor, before any weights)."""
        Ts = split_theta(self.blocks, np.asarray(theta, dtype=float))
        return Factor(Ts, None, None, None, None, np.nan, self._rest_lambda(Ts))

    def _rest_lambda(self, Ts):
        """Lambda of the rest blocks: a vector (its diagonal) when every rest term is scalar, else sparse."""
        if not self.rest:
            return None
        if all(b.p == 1 for b in self.rest):
            return np.concatenate([np.full(b.nlevels, T[0, 0]) for b, T in zip(self.rest, Ts[1:])])
        from lmmcli.engine.pls import lambda_matrix

        return lambda_matrix(self.rest, Ts[1:])

    def _rest_t(self, lam, R):
        """Lambda_r' R for the rest rows R (q_r x m)."""
        return lam[:, None] * R if isinstance(lam, np.ndarray) else np.asarray(lam.T @ R)

    def _rest_n(self, lam, R):
        """Lambda_r R."""
        return lam[:, None] * R if isinstance(lam, np.ndarray) else np.asarray(lam @ R)

    def _first_right(self, M, B):
        """M blockdiag_g(B_g) for a dense (r, q1) M and a (l1, p1, p1) stack B."""
        r = M.shape[0]
        if self.p1 == 1:
            return M * B[:, 0, 0][None, :]
        return np.einsum("rgi,gij->rgj", M.reshape(r, self.l1, self.p1), B).reshape(r, self.q1)

    def _split(self, theta):
        """(Ts, Lambda of the rest blocks) at theta; the last one is kept (a PIRLS run factors at one theta)."""
        theta = np.asarray(theta, dtype=float)
        key = theta.tobytes()
        if self._last_split is None or self._last_split[0] != key:
            Ts = split_theta(self.blocks, theta)
            self._last_split = (key, Ts, self._rest_lambda(Ts))
        return self._last_split[1:]

    def factor(self, W, theta) -> Factor:
        """The blocked Cholesky factor of Lambda' Z' W Z Lambda + I at weights W and theta."""
        if self.intercepts_dense:
            return self._intercepts_factor(W, *self._split(theta))
        Ts = split_theta(self.blocks, np.asarray(theta, dtype=float))
        A11 = self.first_cross(W)
        M11 = kern.congruence(Ts[0], A11)
        M11[:, range(self.p1), range(self.p1)] += 1.0
        L11 = kern.chol(M11)
        logdet = kern.logdet(L11)
        L21 = L22 = lam_r = None
        if self.sparse:
            lam_r = self._rest_lambda(Ts)
            L21, M22 = self._sparse_coupling(W, float(Ts[0][0, 0]), L11, lam_r)
        elif self.rest:
            A21, A22 = self.rest_cross(W)
            lam_r = self._rest_lambda(Ts)
            T1 = np.broadcast_to(Ts[0], (self.l1, self.p1, self.p1))
            # L21 = Lambda_r' A21 Lambda_1 L11^{-T}, all dense (q_r x q1)
            M21 = self._first_right(self._rest_t(lam_r, A21), T1)
            L21 = self._first_right(M21, kern.inv_lower(L11).transpose(0, 2, 1))
            M22 = self._rest_t(lam_r, self._rest_t(lam_r, A22).T)
            M22 -= L21 @ L21.T
        if self.rest:
            M22[np.diag_indices(self.q_r)] += 1.0      # (not ravel(): M22 may be F-ordered, ravel would copy)
            L22 = np.linalg.cholesky(M22)
            logdet += 2.0 * float(np.log(np.diagonal(L22)).sum())
        return Factor(Ts, L11, A11, L21, L22, logdet, lam_r)

    def _intercepts_factor(self, W, Ts, lam_r) -> Factor:
        """factor() for two scalar intercepts with a dense A21: the same blocks, with A11 and A22 (both
        diagonal: a row is in one level of each term) read from A21's column and row sums."""
        A21 = self.a21_sums.dense(W, self.q_r * self.q1).reshape(self.q_r, self.q1)
        a11 = A21.sum(axis=0)
        t1 = float(Ts[0][0, 0])
        m11 = a11 * (t1 * t1)
        m11 += 1.0
        if not np.all(m11 > 0):
            raise np.linalg.LinAlgError("not positive definite")
        l11 = np.sqrt(m11)
        L21 = A21 * lam_r[:, None]
        L21 *= t1 / l11                                   # Lambda_r' A21 Lambda_1 L11^{-T}
        M22 = -(L21 @ L21.T)
        M22[self.diag_r] += lam_r * lam_r * A21.sum(axis=1) + 1.0
        L22 = np.linalg.cholesky(M22)
        logdet = 2.0 * float(np.log(l11).sum()) + 2.0 * float(np.log(np.diagonal(L22)).sum())
        return Factor(Ts, l11[:, None, None], a11[:, None, None], L21, L22, logdet, lam_r, A21)

    def lambda_t(self, F: Factor, R: np.ndarray) -> np.ndarray:
        """Lambda' R for a (q, m) matrix R (rows ordered as Z's columns)."""
        m = R.shape[1]
        out = np.empty_like(R)
        out[:self.q1] = kern.left_mult_t(F.Ts[0], R[:self.q1].reshape(self.l1, self.p1, m)).reshape(self.q1, m)
        if self.rest:
            out[self.q1:] = self._rest_t(F.lam_r, R[self.q1:])
        return out

    def lambda_n(self, F: Factor, u: np.ndarray) -> np.ndarray:
        """b = Lambda u for a q-vector u."""
        out = np.empty_like(u)
        out[:self.q1] = (u[:self.q1].reshape(self.l1, self.p1) @ F.Ts[0].T).ravel()
        if self.rest:
            out[self.q1:] = self._rest_n(F.lam_r, u[self.q1:, None])[:, 0]
        return out

    def solve(self, F: Factor, R: np.ndarray) -> np.ndarray:
        """M^{-1} R for a (q, m) matrix R: forward then back substitution through the blocks."""
        m = R.shape[1]
        if F.A21 is not None:               # two scalar intercepts: L11 is a vector
            return self._scalar_solve(F, R)
        y1 = kern.fsolve(F.L11, R[:self.q1].reshape(self.l1, self.p1, m))
        if not self.rest:
            return kern.bsolve(F.L11, y1).reshape(self.q1, m)
        y1f = y1.reshape(self.q1, m)
        y2 = _tri_solve(F.L22, R[self.q1:] - F.L21 @ y1f)
        x2 = _tri_solve(F.L22, y2, transpose=True)
        r1 = (y1f - F.L21.T @ x2).reshape(self.l1, self.p1, m)
        x1 = kern.bsolve(F.L11, r1).reshape(self.q1, m)
        return np.vstack([x1, x2])

    def _scalar_solve(self, F: Factor, R: np.ndarray) -> np.ndarray:
        """solve() for a scalar first term (L11 diagonal), without the per-level reshapes."""
        l11 = F.L11[:, 0, :]                          # (q1, 1)
        out = np.empty_like(R)
        y1 = R[:self.q1] / l11
        x2 = out[self.q1:]
        x2[:] = _tri_solve(F.L22, _tri_solve(F.L22, R[self.q1:] - F.L21 @ y1), transpose=True)
        y1 -= F.L21.T @ x2
        np.divide(y1, l11, out=out[:self.q1])
        return out

    def _dense_g2(self, F: Factor, Li):
        """sum_r G_rgi G_rgj per level g, G = L22^{-1} L21 blockdiag(L11^{-1})."""
        G = _tri_solve(F.L22, self._first_right(F.L21, Li))
        Gb = G.reshape(self.q_r, self.l1, self.p1)
        return np.einsum("rgi,rgj->gij", Gb, Gb)

    def _sparse_g2(self, F: Factor, Li):
        """_dense_g2 for a sparse L21 (scalar first term), CHUNK columns of G at a time."""
        S = F.L21.multiply(Li[:, 0, 0][None, :]).tocsc()
        out = np.empty(self.q1)
        for start in range(0, self.q1, CHUNK):
            G = _tri_solve(F.L22, S[:, start:start + CHUNK].toarray())
            out[start:start + G.shape[1]] = np.einsum("rg,rg->g", G, G)
        return out[:, None, None]

    def cond_var(self, F: Factor) -> list[np.ndarray]:
        """Per block, (levels, p, p): the diagonal blocks of Lambda M^{-1} Lambda' (glmer's condVar)."""
        Li = kern.inv_lower(F.L11)
        V1 = Li.transpose(0, 2, 1) @ Li
        out = []
        if self.rest:
            # M^{-1} = [[L11^-T (I + L21' S^-1 L21) L11^-1, ...], [..., S^-1]],  S = L22 L22'
            V1 = V1 + (self._sparse_g2(F, Li) if self.sparse else self._dense_g2(F, Li))
            H = _tri_solve(F.L22, np.eye(self.q_r))
            P = H.T @ H
            lam = np.diag(F.lam_r) if isinstance(F.lam_r, np.ndarray) else F.lam_r.toarray()
            Vr = lam @ P @ lam.T
            pos = 0
            for blk in self.rest:
                k = blk.nlevels * blk.p
                sub = Vr[pos:pos + k, pos:pos + k].reshape(blk.nlevels, blk.p, blk.nlevels, blk.p)
                out.append(np.einsum("gigj->gij", sub))
                pos += k
        T1 = F.Ts[0]
        return [T1[None] @ V1 @ T1.T[None]] + out
