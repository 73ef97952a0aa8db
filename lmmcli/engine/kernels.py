"""Fast kernels for pls: per-level cross-products and batched small Cholesky factors (the crossed
fill-in and the dense rest factor are in rest.py).

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
    if any(B.shape[1] >= SPARSE_GRAM_MIN for B in Bs):
        return [_level_cross_sparse(codes, nlev, A, B) for B in Bs]
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


def _level_cross_sparse(codes, nlev, A, B) -> np.ndarray:
    """pair_sums for a B of many columns: per column of A, the product of the (levels x n) sparse
    matrix of its values with B, O(n m) in one pass (a bincount per column of B read the rows 5,000
    times at 5,000 columns). The sums run over each level's rows in row order, as bincount's do, so
    the numbers are the same to the last bit."""
    import scipy.sparse as sp

    n = len(codes)
    out = np.empty((nlev, A.shape[1], B.shape[1]))
    rows = np.arange(n)
    for i in range(A.shape[1]):
        Zt = sp.csr_matrix((np.asarray(A[:, i], dtype=float), (np.asarray(codes), rows)), shape=(nlev, n))
        out[:, i, :] = Zt @ B
    return out


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
