"""Fast kernels for pls: per-level cross-products, batched small Cholesky factors, the crossed fill-in.

Why this module exists: an objective evaluation must cost O(levels), not O(rows), and at 10^4-10^5
levels the per-call overhead of np.linalg on stacks of 1x1 or 2x2 matrices dominates. The closed
forms below are the Cholesky factor, triangular solves and inverse written out element by element,
vectorised over levels; p >= 3 falls back to np.linalg (the general path, used by the tests as the
reference for the closed forms).

Stacks are (levels, p, p) for matrices and (levels, p, m) for right-hand sides, as in pls.
"""

from __future__ import annotations

import numpy as np

from lmmcli.linalg import SPARSE_GRAM_MIN, gram  # noqa: F401  (re-exported: kern.gram, kern.SPARSE_GRAM_MIN)


# -- cross-products by level, formed once -------------------------------------------------------


def solve_upper(U: np.ndarray, b: np.ndarray) -> np.ndarray:
    """U^{-1} b for an upper-triangular U (a triangular solve by LAPACK when U is large, numpy's otherwise)."""
    if U.shape[0] < SPARSE_GRAM_MIN:
        return np.linalg.solve(U, b)
    from scipy.linalg import solve_triangular

    return solve_triangular(U, b, lower=False)


def times_small(A: np.ndarray, W: np.ndarray) -> np.ndarray:
    """A W for an n x m A and an m x m W that is mostly zeros (units: diagonal plus a centring row):
    O(n nnz(W)) through a sparse W when m is large, where the dense product is O(n m^2) (4e11 flops at
    15,000 x 5,001)."""
    m = W.shape[0]
    if m < SPARSE_GRAM_MIN or np.count_nonzero(W) > 4 * m:
        return A @ W
    import scipy.sparse as sp

    return np.asarray((sp.csc_matrix(W).T @ A.T).T)


def inverse_gram_upper(R: np.ndarray) -> np.ndarray:
    """(R'R)^{-1} = R^{-1} R^{-T} for an upper-triangular R by LAPACK's triangular inverse and BLAS's syrk."""
    from scipy.linalg.blas import dsyrk
    from scipy.linalg.lapack import dtrtri

    Rinv, info = dtrtri(R, lower=0)
    if info != 0:
        raise np.linalg.LinAlgError("the triangular factor is singular")
    V = dsyrk(1.0, Rinv)                  # the upper triangle of Rinv Rinv' (half a product's flops)
    full = V + V.T                        # syrk leaves the strict lower triangle 0
    full[np.diag_indices_from(full)] = np.diag(V)
    return full


def _is_ones(v: np.ndarray) -> bool:
    """Whether a column is all ones (an intercept), so products with it need no multiplication."""
    return len(v) > 0 and bool(v[0] == 1.0) and bool(np.all(v == 1.0))


def pair_sums(codes, nlev, A, B) -> np.ndarray:
    """sum over rows of each level of A[:, i] * B[:, j] -> (nlev, A.shape[1], B.shape[1])."""
    return level_cross(codes, nlev, A, [B])[0]


def level_cross(codes, nlev, A, Bs) -> list[np.ndarray]:
    """pair_sums(codes, nlev, A, B) for each B in Bs, sharing work.

    Products are formed one column pair at a time (one n-vector temporary, never n x k), a column
    pair that occurs twice (a slope that is also a fixed effect) is summed once, and intercept
    columns are not multiplied at all.
    """
    cols, keys = _distinct_columns([A] + list(Bs))
    done: dict[tuple[int, int], np.ndarray] = {}
    outs, pos = [], A.shape[1]
    for B in Bs:
        out = np.empty((nlev, A.shape[1], B.shape[1]))
        for i in range(A.shape[1]):
            for j in range(B.shape[1]):
                a, b = keys[i], keys[pos + j]
                k = (min(a, b), max(a, b))
                if k not in done:
                    done[k] = _level_sum(codes, nlev, cols[k[0]], cols[k[1]])
                out[:, i, j] = done[k]
        outs.append(out)
        pos += B.shape[1]
    return outs


def _distinct_columns(mats):
    """The distinct columns among the matrices' ((values, is_ones) each) and each column's key into them.

    Candidates are found by a fingerprint (first rows and sum), so m columns cost O(m), not O(m^2)
    comparisons (at 5,000 indicator columns the pairwise scan was 12 million comparisons)."""
    cols, keys, seen = [], [], {}
    for M in mats:
        # a fingerprint per column: its projection on fixed pseudo-random weights (equal columns, equal numbers)
        proj = np.asarray(M.T @ np.random.default_rng(0).standard_normal(M.shape[0])) if M.shape[1] > 16 else None
        for j in range(M.shape[1]):
            v = M[:, j]
            fp = (v[:16].tobytes(), float(v.sum()) if proj is None else float(proj[j]))
            k = next((i for i in seen.get(fp, ()) if _same(cols[i][0], v)), None)
            if k is None:
                cols.append((v, _is_ones(v)))
                k = len(cols) - 1
                seen.setdefault(fp, []).append(k)
            keys.append(k)
    return cols, keys


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal columns; the first rows are compared first, so different columns cost almost nothing."""
    return bool(np.array_equal(a[:16], b[:16])) and bool(np.array_equal(a, b))


def _level_sum(codes, nlev, a, b) -> np.ndarray:
    """bincount of a * b by level, skipping multiplications by an intercept."""
    (va, ones_a), (vb, ones_b) = a, b
    if ones_a and ones_b:
        w = None
    elif ones_a or ones_b:
        w = vb if ones_a else va
    else:
        w = va * vb
    return np.bincount(codes, weights=w, minlength=nlev).astype(float)


# -- batched small Cholesky kernels ---------------------------------------------------------------
def chol(M: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a (l, p, p) stack; raises np.linalg.LinAlgError if one is not PD."""
    p = M.shape[1]
    if p == 1:
        d = M[:, 0, 0]
        if not np.all(d > 0):
            raise np.linalg.LinAlgError("not positive definite")
        return np.sqrt(M)
    if p == 2:
        return _chol2(M)
    return np.linalg.cholesky(M)


def _chol2(M):
    """[[a, .], [b, c]] = L L' with L = [[l11, 0], [l21, l22]]."""
    a, b, c = M[:, 0, 0], M[:, 1, 0], M[:, 1, 1]
    if not np.all(a > 0):
        raise np.linalg.LinAlgError("not positive definite")
    l11 = np.sqrt(a)
    l21 = b / l11
    s = c - l21 * l21
    if not np.all(s > 0):
        raise np.linalg.LinAlgError("not positive definite")
    L = np.zeros_like(M)
    L[:, 0, 0], L[:, 1, 0], L[:, 1, 1] = l11, l21, np.sqrt(s)
    return L


def fsolve(L: np.ndarray, R: np.ndarray) -> np.ndarray:
    """L^{-1} R for lower-triangular L (l, p, p) and R (l, p, m)."""
    p = L.shape[1]
    if p == 1:
        return R / L
    if p == 2:
        x0 = R[:, 0, :] / L[:, 0, 0, None]
        x1 = (R[:, 1, :] - L[:, 1, 0, None] * x0) / L[:, 1, 1, None]
        return np.stack([x0, x1], axis=1)
    return np.linalg.solve(L, R)


def bsolve(L: np.ndarray, R: np.ndarray) -> np.ndarray:
    """L^{-T} R for lower-triangular L (l, p, p) and R (l, p, m)."""
    p = L.shape[1]
    if p == 1:
        return R / L
    if p == 2:
        x1 = R[:, 1, :] / L[:, 1, 1, None]
        x0 = (R[:, 0, :] - L[:, 1, 0, None] * x1) / L[:, 0, 0, None]
        return np.stack([x0, x1], axis=1)
    return np.linalg.solve(L.transpose(0, 2, 1), R)


def inv_lower(L: np.ndarray) -> np.ndarray:
    """L^{-1} for a stack of lower-triangular factors."""
    p = L.shape[1]
    if p == 1:
        return 1.0 / L
    if p == 2:
        out = np.zeros_like(L)
        i00, i11 = 1.0 / L[:, 0, 0], 1.0 / L[:, 1, 1]
        out[:, 0, 0], out[:, 1, 1] = i00, i11
        out[:, 1, 0] = -L[:, 1, 0] * i00 * i11
        return out
    return np.linalg.inv(L)


def logdet(L: np.ndarray) -> float:
    """log |L L'| summed over the stack: 2 sum log diag(L)."""
    d = np.diagonal(L, axis1=1, axis2=2)
    return 2.0 * float(np.log(d.prod(axis=1)).sum()) if L.shape[1] <= 2 else 2.0 * float(np.log(d).sum())


def stack_mult(A: np.ndarray, R: np.ndarray) -> np.ndarray:
    """A_g R_g for every g: (l, p, p) times (l, p, m)."""
    if A.shape[1] == 1:
        return A * R
    return A @ R


def congruence(T: np.ndarray, D: np.ndarray) -> np.ndarray:
    """T' D_g T for every g of a (l, p, p) stack, as two flat matrix products."""
    l, p, _ = D.shape
    if p == 1:
        return D * (T[0, 0] ** 2)
    DT = (D.reshape(l * p, p) @ T).reshape(l, p, p)           # D_g T
    return (DT.transpose(0, 2, 1).reshape(l * p, p) @ T).reshape(l, p, p)  # (D_g T)' T = T' D_g T


def left_mult_t(T: np.ndarray, R: np.ndarray) -> np.ndarray:
    """T' R_g for every g of a (l, p, m) stack."""
    l, p, m = R.shape
    if p == 1:
        return R * T[0, 0]
    return (T.T @ R.transpose(1, 0, 2).reshape(p, l * m)).reshape(p, l, m).transpose(1, 0, 2)


# -- the dense "rest" part of a crossed or nested model ------------------------------------------
# Above this many (row, row) products the fixed fill-in pattern is not kept; a sparse product
# is formed at each evaluation instead (slower per call, but bounded memory).
MAX_FILL_PAIRS = 30_000_000
MAX_FILL_DIM = 6000      # K has q*q rows (an index array of that length)


class RestPart:
    """What the rest blocks' dense factor needs, fixed by Z alone (independent of theta and y).

    M22 = Lr' (A22 - A21 S A21') Lr + I, where S = blockdiag_g(T1 M_g^{-1} T1') comes from the
    first block. The fill-in A21 S A21' has a fixed sparsity pattern: every pair of nonzeros in
    the same first-block level. It is kept as a sparse matrix K with G.ravel() = K[:, :-1] @ S.ravel(),
    restricted to the entries the lower Cholesky factor reads; K's last column is vec(A22), so
    that A22 - G is one sparse product, K @ [-S; 1] (measured: 6.9 ms instead of 9.4 ms for the
    product and a separate subtraction, InstEval-shaped, q = 1156).
    """

    def __init__(self, A21, A22, layout, l1: int, p1: int):
        self.A21 = A21.tocsr()
        self.A22 = A22
        self.layout = layout            # [(offset, levels, p)] of each rest block
        self.q = sum(l * p for _, l, p in layout)
        self.l1, self.p1 = l1, p1
        self.diagonal = all(p == 1 for _, _, p in layout)
        self.K = fill_pattern(A21.tocsc(), p1, self.level_start(), A22) if self.q <= MAX_FILL_DIM else None
        self.big = None       # schur.ScalarSchur, formed at the first evaluation without K (scalar terms)

    def level_start(self) -> np.ndarray:
        """For each rest row, the first row of its level's p x p block (so p = 1 gives arange)."""
        out = np.empty(self.q, dtype=np.int64)
        for off, l, p in self.layout:
            out[off:off + l * p] = off + np.repeat(np.arange(l) * p, p)
        return out

    def schur(self, S: np.ndarray) -> np.ndarray:
        """A22 - A21 blockdiag(S) A21', a new dense q x q array (only the lower triangle when K is kept)."""
        if self.K is not None:
            return (self.K @ np.append(-S.ravel(), 1.0)).reshape(self.q, self.q)
        if self.p1 == 1 and self.diagonal:       # (lambda_sym reads a p > 1 block's upper triangle too)
            return self.scalar_schur()(S.ravel())
        import scipy.sparse as sp

        Sb = sp.block_diag(list(S), format="csr") if self.p1 > 1 else sp.diags(S.ravel())
        return (self.A22 - self.A21 @ Sb @ self.A21.T).toarray()

    def scalar_schur(self):
        """The exact blocked form of the fill-in for a scalar first term (engine/schur.py), formed once."""
        if self.big is None:
            from lmmcli.engine.schur import ScalarSchur

            self.big = ScalarSchur(self.A21, self.A22)
        return self.big

    def pair_quad(self, Q: np.ndarray) -> np.ndarray:
        """a_g' Q a_g for every column g of A21 (scalar terms), Q symmetric given by its lower triangle."""
        if self.K is None:
            return self.scalar_schur().quad(Q)
        return 2.0 * (self.K.T @ Q.ravel())[:-1] - self.A21.multiply(self.A21).T @ np.diagonal(Q)

    def lambda_sym(self, M: np.ndarray, Ts) -> None:
        """M <- Lr' M Lr in place (Lr = blockdiag_k(I_levels (x) T_k))."""
        if self.diagonal:
            lam = self.lam(Ts)
            for (off, l, _), T in zip(self.layout, Ts):   # lam is constant on a block: one pass
                M[off:off + l] *= T[0, 0] * lam[None, :]
            return
        for (off, l, p), T in zip(self.layout, Ts):
            sl = slice(off, off + l * p)
            M[sl] = (T.T @ M[sl].reshape(l, p, self.q)).reshape(l * p, self.q)
            M[:, sl] = (M[:, sl].reshape(self.q, l, p) @ T).reshape(self.q, l * p)

    def lambda_t(self, R: np.ndarray, Ts) -> np.ndarray:
        """Lr' R for R (q, m)."""
        if self.diagonal:
            return self.lam(Ts)[:, None] * R
        out = np.empty_like(R)
        for (off, l, p), T in zip(self.layout, Ts):
            sl = slice(off, off + l * p)
            out[sl] = (T.T @ R[sl].reshape(l, p, -1)).reshape(l * p, -1)
        return out

    def lambda_n(self, R: np.ndarray, Ts) -> np.ndarray:
        """Lr R for R (q,) or (q, m)."""
        if self.diagonal:
            lam = self.lam(Ts)
            return lam * R if R.ndim == 1 else lam[:, None] * R
        out = np.empty_like(R)
        for (off, l, p), T in zip(self.layout, Ts):
            sl = slice(off, off + l * p)
            out[sl] = (T @ R[sl].reshape(l, p, -1)).reshape(out[sl].shape)
        return out

    def lam(self, Ts) -> np.ndarray:
        """The diagonal of Lr when every rest block is scalar."""
        return np.concatenate([np.full(l, T[0, 0]) for (_, l, _), T in zip(self.layout, Ts)])


def fill_pattern(A, p1: int, lvl: np.ndarray, A22):
    """K (q*q x l1*p1*p1 + 1, CSR), the fixed sparsity of A22 - A21 S A21' read as one sparse product:

        K[r*q + s, g*p1*p1 + i*p1 + j] = A[r, (g,i)] A[s, (g,j)],   K[r*q + s, -1] = A22[r, s],

    for the pairs lvl[r] >= lvl[s] (the lower triangle the Cholesky factor reads; lvl[r] is the first
    row of r's own p x p block). Then (K @ [-vec(S); 1]).reshape(q, q) is A22 - A21 S A21' there.

    A is A21 in CSC form (q rest effects x q1 = l1*p1 first-term effects, level-major), A22 sparse.
    None when the pairs would number more than MAX_FILL_PAIRS.

    Worked example (p1 = 1, so S is one number S_g per first-term level g; three rest effects, lvl = r):

        A21 = [[2, 0],        level g = 0 holds rows r = 0, 1;  level g = 1 holds rows r = 1, 2
               [1, 1],
               [0, 3]]

        K[0*3+0, 0] = 2*2 = 4    K[1*3+0, 0] = 1*2 = 2    K[1*3+1, 0] = 1*1 = 1      (level 0)
        K[1*3+1, 1] = 1*1 = 1    K[2*3+1, 1] = 3*1 = 3    K[2*3+2, 1] = 3*3 = 9      (level 1)

    so e.g. row 1*3+1 gives A22[1,1] - (1 S_0 + 1 S_1) = (A22 - A21 S A21')[1, 1]. Every row of a
    level is paired with every row of the same level: the cost is sum_g (entries of level g)^2.
    """
    import scipy.sparse as sp

    A.sort_indices()
    q, q1 = A.shape
    l1 = q1 // p1
    level_first = A.indptr[0:q1:p1]                          # first stored entry of each level
    level_entries = A.indptr[p1::p1] - level_first           # stored entries per level
    if int((level_entries.astype(np.int64) ** 2).sum()) > MAX_FILL_PAIRS:
        return None
    entry_col = np.repeat(np.arange(q1, dtype=np.int32), np.diff(A.indptr))
    entry_level, entry_comp = entry_col // p1, entry_col % p1
    first_of_level = level_first[entry_level].astype(np.int64)
    # scalar terms only: rows are sorted within a column, so pairing each entry with the ones
    # before it gives exactly the r >= s pairs; otherwise pair all and filter
    triangle = p1 == 1 and np.array_equal(lvl, np.arange(q))
    partners = (np.arange(len(entry_col), dtype=np.int64) - first_of_level + 1 if triangle
                else level_entries[entry_level].astype(np.int64))
    # each entry a is repeated once per partner b; the partners are its level's first ones, in order
    a = np.repeat(np.arange(len(entry_col), dtype=np.int32), partners)
    start = np.repeat(first_of_level - np.cumsum(partners) + partners, partners)
    b = (np.arange(len(a), dtype=np.int64) + start).astype(np.int32)
    r, s = A.indices[a], A.indices[b]
    if not triangle:
        keep = lvl[r] >= lvl[s]
        a, b, r, s = a[keep], b[keep], r[keep], s[keep]
    A22 = A22.tocoo()
    keep = lvl[A22.row] >= lvl[A22.col]
    r22, s22, v22 = A22.row[keep], A22.col[keep], A22.data[keep]
    target = np.concatenate([r.astype(np.int64) * q + s, r22.astype(np.int64) * q + s22])
    column = np.concatenate([entry_level[a] * (p1 * p1) + entry_comp[a] * p1 + entry_comp[b],
                             np.full(len(r22), l1 * p1 * p1)])
    values = np.concatenate([A.data[a] * A.data[b], v22])
    return sp.csr_matrix((values, (target, column)), shape=(q * q, l1 * p1 * p1 + 1))


def potrf_lower(M: np.ndarray) -> float:
    """Cholesky of a C-ordered symmetric M in place (lower triangle read and written); returns log|M|.

    Raises np.linalg.LinAlgError when M is not positive definite. The upper triangle is left as is.
    """
    from scipy.linalg.lapack import dpotrf

    # M.T is Fortran-ordered; its upper triangle is M's lower one, so LAPACK works in place.
    _, info = dpotrf(M.T, lower=0, clean=0, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError("not positive definite")
    return 2.0 * float(np.log(np.diagonal(M)).sum())


def trsm_lower(L: np.ndarray, R: np.ndarray) -> np.ndarray:
    """L^{-1} R for a C-ordered lower-triangular L whose upper triangle may hold anything."""
    from scipy.linalg import solve_triangular

    return solve_triangular(L.T, R, trans="T", lower=False, check_finite=False)


def trsm_lower_t(L: np.ndarray, R: np.ndarray) -> np.ndarray:
    """L^{-T} R for the same L."""
    from scipy.linalg import solve_triangular

    return solve_triangular(L.T, R, trans="N", lower=False, check_finite=False)


# -- the first block's share of the objective in closed form (p <= 2) ------------------------------
def soa(D: np.ndarray, ZtXy: np.ndarray):
    """D's distinct entries and Z'[X y]'s rows as contiguous per-level arrays (for first_block)."""
    p = D.shape[1]
    d = [np.ascontiguousarray(D[:, i, j]) for i in range(p) for j in range(i + 1)]
    return d, [np.ascontiguousarray(ZtXy[:, i, :]) for i in range(p)]


def first_block(T: np.ndarray, d, Z):
    """For M_g = T' D_g T + I and S_g = T M_g^{-1} T' (p = 1 or 2, vectorised over levels):
    (sum_g log|M_g|, sum_g Z_g' S_g Z_g, S as a (l, p, p) stack).

    sum_g Z_g' S_g Z_g is C1'C1 of the blocked factor, so the objective needs neither L11 nor C1.
    """
    if len(Z) == 1:
        t2 = T[0, 0] ** 2
        m = t2 * d[0] + 1.0
        if not np.all(m > 0):
            raise np.linalg.LinAlgError("not positive definite")
        s = t2 / m
        return float(np.log(m).sum()), Z[0].T @ (s[:, None] * Z[0]), s[:, None, None]
    (t11, t21, t22), (d00, d01, d11) = (T[0, 0], T[1, 0], T[1, 1]), d
    m00 = t11 * t11 * d00 + 2.0 * t11 * t21 * d01 + t21 * t21 * d11 + 1.0
    m01 = t22 * (t11 * d01 + t21 * d11)
    m11 = t22 * t22 * d11 + 1.0
    det = m00 * m11 - m01 * m01
    if not (np.all(m00 > 0) and np.all(det > 0)):
        raise np.linalg.LinAlgError("not positive definite")
    i00, i01, i11 = m11 / det, -m01 / det, m00 / det       # M^{-1}
    r0, r1 = t21 * i00 + t22 * i01, t21 * i01 + t22 * i11   # second row of T M^{-1}
    s00, s01, s11 = t11 * t11 * i00, t11 * r0, t21 * r0 + t22 * r1
    Z0, Z1 = Z
    X01 = Z0.T @ (s01[:, None] * Z1)
    CtC = Z0.T @ (s00[:, None] * Z0) + Z1.T @ (s11[:, None] * Z1) + X01 + X01.T
    S = np.empty((len(d00), 2, 2))
    S[:, 0, 0], S[:, 0, 1], S[:, 1, 0], S[:, 1, 1] = s00, s01, s01, s11
    return float(np.log(det).sum()), CtC, S
