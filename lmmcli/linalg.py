"""Small dense/sparse linear-algebra helpers shared by the design and the engine (both need A'A)."""

from __future__ import annotations

import numpy as np

SPARSE_GRAM_MIN, SPARSE_GRAM_FILL = 200, 0.05   # a sparse A'A for this many columns, at most this fill


def gram(A: np.ndarray, divisor: np.ndarray | None = None) -> np.ndarray:
    """A'A (of A with each column divided by divisor's entry when given); through a sparse product when
    A is mostly zeros (indicator columns of a factor with many levels: at 15,000 x 5,000 the dense
    product is 4e11 flops, the sparse one milliseconds, and the scaled copy is never formed densely)."""
    n, m = A.shape
    if m < SPARSE_GRAM_MIN or np.count_nonzero(A[:min(n, 1000)]) > SPARSE_GRAM_FILL * min(n, 1000) * m:
        if divisor is not None:
            A = A / divisor
        return A.T @ A
    S = _sparse_rows(A)
    if divisor is not None:
        S.data /= divisor[S.indices]
    return (S.T @ S).toarray(order="C")     # C order, as A.T @ A: later BLAS calls round alike


def _sparse_rows(A: np.ndarray):
    """A as a CSR matrix, by one pass of A != 0 over the C-ordered values (scipy's conversion of a
    15,000 x 5,001 array took 0.47 s, this 0.37 s; the product from it another 0.2 s less). The same
    entries in the same order, so A'A from it is the same to the last bit."""
    import scipy.sparse as sp

    if not A.flags.c_contiguous:
        return sp.csr_matrix(A)
    n, m = A.shape
    flat = A.reshape(-1)
    nz = np.flatnonzero(flat != 0)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(nz // m, minlength=n), out=indptr[1:])
    return sp.csr_matrix((flat[nz], nz % m, indptr), shape=(n, m))


class SplitGram:
    """A symmetric positive definite A whose columns `diag` have a diagonal block in it (the indicator
    columns of one factor: disjoint supports), factored by eliminating that block first.

    With the diagonal columns first, A = [[D, B], [B', C]] and its Schur complement S = C - B' D^-1 B
    = Lc Lc' (k x k, k = the other columns). Then, with F = D^-1 B and H = [F; -I] Lc^-T (p x k),

        log|A| = sum log D + log|S|,    A^-1 = blockdiag(D^-1, 0) + H H',

    so solves, log|A| and diag A^-1 cost O(p k^2) instead of O(p^3) (an arrow-shaped X'X of a
    5,000-level factor, an intercept and a slope: k = 2). A^-1 y is exact linear algebra, only the
    rounding differs from a dense Cholesky's.
    """

    def __init__(self, A: np.ndarray, diag: np.ndarray):
        p = len(A)
        self.p, self.diag = p, diag
        self.dense = np.setdiff1d(np.arange(p), diag)
        self.d = A[diag, diag].copy()
        if not np.all(self.d > 0):
            raise np.linalg.LinAlgError("the matrix is not positive definite")
        F = A[np.ix_(diag, self.dense)] / self.d[:, None]
        S = A[np.ix_(self.dense, self.dense)] - A[np.ix_(self.dense, diag)] @ F
        self.Lc = np.linalg.cholesky(S) if len(S) else S
        self.logdet = float(np.log(self.d).sum() + 2.0 * np.log(np.diag(self.Lc)).sum())
        G = np.zeros((p, len(self.dense)))
        G[diag], G[self.dense] = F, -np.eye(len(self.dense))
        self.H = _solve_lower(self.Lc, G.T).T if len(S) else G

    def _d_full(self) -> np.ndarray:
        """D^-1 on the diagonal columns, 0 on the others."""
        out = np.zeros(self.p)
        out[self.diag] = 1.0 / self.d
        return out

    def solve(self, R: np.ndarray) -> np.ndarray:
        """A^-1 R."""
        R = np.asarray(R, dtype=float)
        dinv = self._d_full()
        return (dinv[:, None] * R if R.ndim == 2 else dinv * R) + self.H @ (self.H.T @ R)

    def whiten(self, B: np.ndarray) -> np.ndarray:
        """K with K'K = B' A^-1 B (for any B of p rows): D^-1/2 B's diagonal rows stacked on H'B."""
        B = np.asarray(B, dtype=float)
        sd = np.sqrt(self.d)
        top = B[self.diag] / (sd[:, None] if B.ndim == 2 else sd)
        return np.concatenate([top, self.H.T @ B])

    def inverse_diagonal(self, W=None) -> np.ndarray:
        """diag A^-1, or diag W A^-1 W' for a sparse-ish W (p x p)."""
        if W is None:
            return self._d_full() + np.einsum("ij,ij->i", self.H, self.H)
        import scipy.sparse as sp

        Ws = sp.csr_matrix(W)
        WH = np.asarray(Ws @ self.H)
        return np.asarray(Ws.multiply(Ws) @ self._d_full()).ravel() + np.einsum("ij,ij->i", WH, WH)

    def inverse(self, W=None) -> np.ndarray:
        """A^-1 (or W A^-1 W') as a dense p x p matrix: a diagonal plus H H' (O(p^2 k))."""
        import scipy.sparse as sp

        H = self.H if W is None else np.asarray(sp.csr_matrix(W) @ self.H)
        out = H @ H.T
        if W is None:
            out[np.diag_indices(self.p)] += self._d_full()
        else:
            Ws = sp.csr_matrix(W)
            out += np.asarray((Ws @ sp.diags(self._d_full()) @ Ws.T).todense())
        return out


def _solve_lower(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """L^-1 B for a lower-triangular L."""
    from scipy.linalg import solve_triangular

    return solve_triangular(L, B, lower=True)


def diagonal_block(A: np.ndarray, max_dense: int = 500) -> np.ndarray | None:
    """Columns of A whose principal block is diagonal (greedily, fewest off-diagonal nonzeros first),
    when A is at least SPARSE_GRAM_MIN wide and at most max_dense columns, and a quarter of them, are
    left out (else the split gains little); else None."""
    p = len(A)
    if p < SPARSE_GRAM_MIN:
        return None
    nz = A != 0
    nz[np.diag_indices(p)] = False
    count = nz.sum(axis=0)
    chosen = np.zeros(p, dtype=bool)
    light = np.flatnonzero(count < p // 2)
    if not nz[np.ix_(light, light)].any():     # the usual case, one factor's indicators: no greedy loop
        chosen[light] = True
    else:
        for j in np.argsort(count, kind="stable"):
            if not nz[j, chosen].any():
                chosen[j] = True
    return np.flatnonzero(chosen) if p - chosen.sum() <= min(max_dense, p // 4) else None


def split_gram(A: np.ndarray) -> SplitGram | None:
    """A's SplitGram when A has a large diagonal block (see diagonal_block), else None; raises
    np.linalg.LinAlgError when A is found not positive definite."""
    diag = diagonal_block(A)
    return None if diag is None else SplitGram(A, diag)
