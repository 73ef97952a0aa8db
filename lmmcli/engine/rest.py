"""The dense "rest" part of a crossed or nested model: its fixed fill-in pattern and its dense factor.

pls.py's blocked factor (see its docstring) has a dense block L22 for all random terms but the first;
its matrix M22 = Lr' (A22 - A21 S A21') Lr + I is formed at every evaluation from a fill-in pattern
fixed by Z alone (RestPart, fill_pattern) and factored in place by LAPACK (potrf_lower).
"""

from __future__ import annotations

import numpy as np

from lmmcli.engine import blas
from lmmcli.errors import NumericalError


# Above this many (row, row) products the fixed fill-in pattern is not kept; a sparse product
# is formed at each evaluation instead (slower per call, but bounded memory).
MAX_FILL_PAIRS = 30_000_000
MAX_FILL_DIM = 6000      # K has q*q rows (an index array of that length)


class RestPart:
    """What the rest blocks' dense factor needs, fixed by Z alone (independent of theta and y).

    M22 = Lr' (A22 - A21 S A21') Lr + I, where S = blockdiag_g(T1 M_g^{-1} T1') comes from the
    first block. The fill-in A21 S A21' has a fixed sparsity pattern: every pair of nonzeros in
    the same first-block level. It is kept as a sparse matrix K with G.ravel()[K_rows] = K[:, :-1] @ S.ravel(),
    restricted to the entries the lower Cholesky factor reads; K's last column is vec(A22), so
    that A22 - G is one sparse product, K @ [-S; 1] (measured: 6.9 ms instead of 9.4 ms for the
    product and a separate subtraction, InstEval-shaped, q = 1156). K holds only the rows of entries
    that can be nonzero (K_rows: their positions in vec(M22)): on lme4's InstEval 145,400 of q^2 =
    1,336,336, and a product over the empty rows cost as much as the rest (schur 10.4 -> 3.6 ms).
    """

    def __init__(self, A21, A22, layout, l1: int, p1: int):
        self.A21 = A21.tocsr()
        self.A22 = A22
        self.layout = layout            # [(offset, levels, p)] of each rest block
        self.q = sum(l * p for _, l, p in layout)
        self.l1, self.p1 = l1, p1
        self.diagonal = all(p == 1 for _, _, p in layout)
        pattern = fill_pattern(A21.tocsc(), p1, self.level_start(), A22) if self.q <= MAX_FILL_DIM else None
        self.K, self.K_rows = pattern if pattern is not None else (None, None)
        if self.K is not None and self.diagonal:    # for each of K's rows, its (row block, column block) pair
            block = np.repeat(np.arange(len(layout)), [l for _, l, _ in layout])
            self.K_blocks = block[self.K_rows // self.q] * len(layout) + block[self.K_rows % self.q]
        self.big = None       # schur.ScalarSchur, formed at the first evaluation without K (scalar terms)
        self._a21_squared = None

    def level_start(self) -> np.ndarray:
        """For each rest row, the first row of its level's p x p block (so p = 1 gives arange)."""
        out = np.empty(self.q, dtype=np.int64)
        for off, l, p in self.layout:
            out[off:off + l * p] = off + np.repeat(np.arange(l) * p, p)
        return out

    def schur(self, S: np.ndarray) -> np.ndarray:
        """A22 - A21 blockdiag(S) A21', a new dense q x q array (only the lower triangle when K is kept)."""
        if self.K is not None:
            return self._from_K(self.K @ np.append(-S.ravel(), 1.0))
        if self.p1 == 1 and self.diagonal:       # (lambda_sym reads a p > 1 block's upper triangle too)
            return self.scalar_schur()(S.ravel())
        import scipy.sparse as sp

        Sb = sp.block_diag(list(S), format="csr") if self.p1 > 1 else sp.diags(S.ravel())
        return (self.A22 - self.A21 @ Sb @ self.A21.T).toarray()

    def lambda_schur(self, S: np.ndarray, Ts) -> np.ndarray:
        """Lr' (A22 - A21 blockdiag(S) A21') Lr (schur, then lambda_sym). With K and scalar rest terms
        Lr's scaling is applied to K's products (145,400 on InstEval), not to all q^2 entries."""
        if self.K is None or not self.diagonal:
            M = self.schur(S)
            self.lambda_sym(M, Ts)
            return M
        t = np.array([T[0, 0] for T in Ts])
        KS = self.K @ np.append(-S.ravel(), 1.0)
        KS *= np.outer(t, t).ravel()[self.K_blocks]
        return self._from_K(KS)

    def _from_K(self, KS: np.ndarray) -> np.ndarray:
        """The q x q array with K's products in their places and zeros elsewhere."""
        out = np.zeros(self.q * self.q)
        out[self.K_rows] = KS
        return out.reshape(self.q, self.q)

    def scalar_schur(self):
        """The exact blocked form of the fill-in for scalar terms without K (engine/schur.py), formed once."""
        if self.big is None:
            from lmmcli.engine.schur import ScalarSchur

            self.big = ScalarSchur(self.A21, self.A22)
        return self.big

    def pair_sums(self, P: np.ndarray, t: np.ndarray) -> np.ndarray:
        """K' vec(Q) for Q = Lr P Lr' (scalar rest terms, t their thetas; only P's entries in the pattern
        are read, and Lr's scaling is applied to those, not to all q^2): per first-term level g, the sum
        of A21[r, g] A21[s, g] Q[r, s] over the pattern's pairs, and last Q's inner product with A22 there."""
        return self.K.T @ (P.ravel()[self.K_rows] * np.outer(t, t).ravel()[self.K_blocks])

    def a21_squared(self):
        """The entries of A21 squared, transposed (first-term levels x rest effects), formed once."""
        if self._a21_squared is None:
            self._a21_squared = self.A21.multiply(self.A21).T.tocsr()
        return self._a21_squared

    def inverse_diagonal(self, L22, Ts, m_inv):
        """(diag of (L L')^{-1}'s first-term block, P = M22^{-1} (lower triangle)) for scalar terms, from
        the rest factor L22 and m_inv = 1 / m_g = L11_g^{-2} (the formula in pls.PlsModel._cond_var_scalar).
        Without K (q > MAX_FILL_DIM) only P's diagonal is returned valid: its lower triangle is reused for
        Lr P Lr', a q x q array less at 13,000 rest effects (the gradient, which reads all of P, needs K)."""
        from scipy.linalg.lapack import dpotri

        P = L22.copy()
        with blas.all_cores(2 * self.q ** 3 / 3):
            _, info = dpotri(P.T, lower=0, overwrite_c=1)     # lower triangle of P = M22^{-1}
        if info != 0:
            raise NumericalError("the random-effects factor is singular; no conditional variances")
        lam_r = self.lam(Ts[1:])                            # the diagonal of Lr
        if self.K is None:             # a_g' Q a_g through schur's pairs; Q in P's place (q^2 doubles once)
            p_diag = np.diagonal(P).copy()
            P *= lam_r[:, None]
            P *= lam_r[None, :]
            pair_sum = self.scalar_schur().quad(P)
            P[np.diag_indices_from(P)] = p_diag            # the caller reads only P's diagonal
        else:           # a_g' Lr P Lr' a_g from P's lower triangle: pairs r > s twice, r = s once
            t = np.array([T[0, 0] for T in Ts[1:]])
            pair_sum = 2.0 * self.pair_sums(P, t)[:-1] - self.a21_squared() @ (np.diagonal(P) * lam_r ** 2)
        return m_inv + (m_inv * Ts[0][0, 0]) ** 2 * pair_sum, P

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
    """(K, rows): K (sparse, CSC for p1 = 1, else CSR; one row per entry of vec(M22) in `rows`,
    l1*p1*p1 + 1 columns), the fixed sparsity of A22 - A21 S A21' read as one sparse product. With all
    q*q rows it would be

        K[r*q + s, g*p1*p1 + i*p1 + j] = A[r, (g,i)] A[s, (g,j)],   K[r*q + s, -1] = A22[r, s],

    for the pairs lvl[r] >= lvl[s] (the lower triangle the Cholesky factor reads; lvl[r] is the first
    row of r's own p x p block). Then (K @ [-vec(S); 1]).reshape(q, q) is A22 - A21 S A21' there;
    the rows that are all zero are left out of K and `rows` says where each kept one goes.

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
    # int32 throughout: entries and pairs number at most MAX_FILL_PAIRS, positions in vec(M22) at most
    # MAX_FILL_DIM^2 (3.6e7), both below 2^31; half the memory traffic of int64 (these arrays have
    # ~1.8M elements on InstEval, and their first touch of fresh memory is most of the cost)
    entry_col = np.repeat(np.arange(q1, dtype=np.int32), np.diff(A.indptr))
    entry_level, entry_comp = entry_col // p1, entry_col % p1
    first_of_level = level_first[entry_level].astype(np.int32)
    # scalar terms only: rows are sorted within a column, so pairing each entry with the ones
    # before it gives exactly the r >= s pairs; otherwise pair all and filter
    triangle = p1 == 1 and np.array_equal(lvl, np.arange(q))
    partners = (np.arange(len(entry_col), dtype=np.int32) - first_of_level + 1 if triangle
                else level_entries[entry_level].astype(np.int32))
    # each entry a is repeated once per partner b; the partners are its level's first ones, in order
    ends = np.cumsum(partners, dtype=np.int32)
    b = np.arange(ends[-1] if len(ends) else 0, dtype=np.int32)
    b += np.repeat(first_of_level - ends + partners, partners)
    A22 = A22.tocoo()
    keep = lvl[A22.row] >= lvl[A22.col]
    r22, s22, v22 = A22.row[keep], A22.col[keep], A22.data[keep]
    if triangle:       # every pair kept, in entry order: A's arrays repeated per partner (no index array a)
        r_q, a_data = np.repeat(A.indices * q, partners), np.repeat(A.data, partners)
        s, b_data = A.indices, A.data
    else:
        a = np.repeat(np.arange(len(entry_col), dtype=np.int32), partners)
        keep = lvl[A.indices[a]] >= lvl[A.indices[b]]
        a, b = a[keep], b[keep]
        r_q, a_data, s, b_data = A.indices[a] * q, A.data[a], A.indices, A.data
    m = len(b)
    # the position in vec(M22) of each product, then (in place) its row of K
    target = np.empty(m + len(r22), dtype=np.int32)
    np.take(s, b, out=target[:m])
    target[:m] += r_q
    target[m:] = r22 * q + s22
    values = np.empty(m + len(r22))
    np.take(b_data, b, out=values[:m])
    values[:m] *= a_data
    values[m:] = v22
    del r_q, a_data
    # K's rows numbered among the entries that occur (not all q^2, then a row selection: 112 instead
    # of 165 ms on lme4's InstEval, the same K)
    used = np.zeros(q * q, dtype=bool)
    used[target] = True
    rows = np.flatnonzero(used)
    rank = np.cumsum(used, dtype=np.int32) - 1
    np.take(rank, target, out=target)
    shape = (len(rows), l1 * p1 * p1 + 1)
    if triangle:
        # the pairs come column by column and A22's last: K is formed in CSC directly, without the COO
        # conversion's sort (InstEval: 34 -> 5 ms; its products are as fast), each column's pairs
        # starting where its first entry's do
        indptr = np.append(np.append(0, ends)[A.indptr], m + len(r22)).astype(np.int64)
        return sp.csc_matrix((values, target, indptr), shape=shape), rows
    column = np.concatenate([entry_level[a] * (p1 * p1) + entry_comp[a] * p1 + entry_comp[b] if p1 > 1
                             else entry_col[a], np.full(len(r22), l1 * p1 * p1, dtype=np.int32)])
    return sp.csr_matrix((values, (target, column)), shape=shape), rows


def potrf_lower(M: np.ndarray) -> float:
    """Cholesky of a C-ordered symmetric M in place (lower triangle read and written); returns log|M|.

    Raises np.linalg.LinAlgError when M is not positive definite. The upper triangle is left as is.
    """
    from scipy.linalg.lapack import dpotrf

    # M.T is Fortran-ordered; its upper triangle is M's lower one, so LAPACK works in place.
    with blas.all_cores(len(M) ** 3 / 3):
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


