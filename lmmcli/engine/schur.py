"""The crossed fill-in at scale: A22 - A21 diag(s) A21' for a scalar first term, exact, in BLAS where it pays.

Why this module exists: with a scalar first term (p1 = 1, e.g. (1|user)) and more rest effects than
kernels.MAX_FILL_DIM (e.g. 13,000 items), kernels.RestPart keeps no fill pattern, and each objective
evaluation forms the weighted Gram matrix of A21's columns,

    G = A21 diag(s) A21' = sum_g s_g a_g a_g'      (a_g: column g of A21, the rest effects of level g),

which costs sum_g nnz(a_g)^2 multiply-adds. In a MovieLens-shaped design that sum is ~1e10 and is
dominated by the heavy levels (users with thousands of ratings): a sparse product does them at
~1e8 multiply-adds a second, while a heavy level's a_g a_g' is nearly dense. So the columns are split
once, by their number of nonzeros:

- heavy columns (nnz >= dense_min) are kept as one dense q x h matrix H, and their share is BLAS's
  symmetric rank-k update, G_H = (H diag(sqrt s)) (H diag(sqrt s))' in chunks of CHUNK columns;
  H is stored in float32 when every entry is exactly a float32 (counts always are), and each chunk is
  widened to float64 before the product, so nothing is rounded that the plain product would not round;
- for the light columns, the rows with the most nonzeros among them (the popular items; how many is
  chosen by a cost model) form a dense k x k block updated the same way, and only the products that
  involve another row are sparse, formed in blocks of rows.

Both are the plain product's sums in another order (the tests compare with A22 - A21 S A21' formed
by scipy to rounding). The split point balances the two costs: a heavy column costs q^2 / 2 in the
rank-k update (at ~5e10 a second) where it would cost nnz^2 sparse (at ~1e8): dense from
nnz >= q * DENSE_FRACTION (measured: 6% puts 1,238 of 270,000 MovieLens-shaped users there, 2 s;
3% puts 7,123, 22.7 s, for 3 s less sparse work).

Both cores: the rank-k updates run with every BLAS thread (blas.all_cores, though the CLI keeps one for
small problems), and the sparse row blocks and quad's pair sums run in one Python thread per core
(scipy's sparse product and numpy's gathers release the GIL; each block writes entries no other touches).
"""

from __future__ import annotations

import numpy as np

from lmmcli.engine import blas

CHUNK = 512               # heavy columns per rank-k update (q x CHUNK float64: 53 MB at q = 13,000)
DENSE_FRACTION = 0.06     # a column with at least this fraction of q nonzeros goes to the dense part
ROW_BLOCK = 512           # rows of the light part's sparse product formed at a time (per thread)
USER_CHUNK = 8192         # light columns per rank-k update of the popular block
# Measured on the MovieLens-shaped bench data (2 cores): a rank-k update does ~5e10 multiply-adds a
# second, scipy's sparse product ~1.3e8; the popular block's size is chosen by these two rates.
DENSE_RATE, SPARSE_RATE = 5e10, 1.3e8
POPULAR_CANDIDATES = (0, 250, 500, 1000, 1500, 2000, 3000, 4000)
# Schur results kept (ScalarSchur.__call__): each a packed lower triangle, q (q + 1) / 2 doubles (0.68 GB
# at q = 13,000). Three: the convergence check's points have three first-term thetas (a-, a, a+), and the
# solution at the optimum asks for a again after them; with two, a was evicted and formed anew (~18 s).
CACHED = 3
PAIRS = 20_000_000        # pairs of nonzeros gathered at a time in quad (index arrays of ~0.5 GB)


class ScalarSchur:
    """A22 - A21 diag(s) A21' (lower triangle, dense, C order) for any s >= 0, from A21 (q x l1) and A22.

    Columns with many nonzeros (heavy levels) are one dense block (rank-k updates over all rows).
    The other (light) columns are split by rows: the `popular` rows with the most nonzeros among the
    light columns form a dense k x k block (rank-k updates again), and only the products that involve
    another row are sparse -- with MovieLens-like popularity most of a light user's pairs are between
    popular items.
    """

    def __init__(self, A21, A22, dense_min: int | None = None, popular: int | None = None):
        import scipy.sparse as sp

        A = sp.csc_matrix(A21)
        A.sort_indices()
        self.q, self.l1 = A.shape
        nnz = np.diff(A.indptr)
        dense_min = max(1, int(DENSE_FRACTION * self.q)) if dense_min is None else dense_min
        self.heavy = np.flatnonzero(nnz >= dense_min)
        self.light = np.flatnonzero(nnz < dense_min)
        self.H = _exact_float32(A[:, self.heavy].toarray())
        L = A[:, self.light].tocsr()               # rows: rest effects; the light columns only
        by_count = np.argsort(-np.diff(L.indptr), kind="stable")
        k = _popular_size(L, by_count) if popular is None else min(popular, self.q)
        self.P, self.N = np.sort(by_count[:k]), np.sort(by_count[k:])
        self.LP = L[self.P].tocsc()                 # popular rows x light columns (densified a chunk at a time)
        self.LN = L[self.N]                         # the other rows
        self.Lt = L.T.tocsr()                       # light columns x all rows
        self.Lq, self.nP = _popular_first(L.tocsc(), self.P, self.q)
        self.A22 = sp.csr_matrix(A22)
        self._cache = []           # [(s, packed lower triangle)] of the last CACHED distinct calls, oldest first

    def __call__(self, s: np.ndarray) -> np.ndarray:
        """The lower triangle of A22 - A21 diag(s) A21' as a new C-ordered q x q array (upper: zero).

        The last CACHED results are kept: s depends on the first term's theta only, and the optimizer's
        first steps and the convergence check's differences alternate between a few first-term thetas
        (the check's eight points have three: with two kept, four are formed instead of eight).
        """
        s = np.asarray(s, dtype=float).ravel()
        for i, (key, packed) in enumerate(self._cache):
            if np.array_equal(s, key):
                self._cache.append(self._cache.pop(i))
                return _unpack_lower(packed, self.q)
        M = self._form(s)
        self._cache = self._cache[len(self._cache) + 1 - CACHED:] + [(s.copy(), _pack_lower(M))]
        return M

    def _form(self, s: np.ndarray) -> np.ndarray:
        # BLAS fills the upper triangle of the Fortran-ordered U = M'; M = U.T is C-ordered, lower.
        U = np.zeros((self.q, self.q), order="F")
        _rank_k(U, self.H, s[self.heavy], -1.0)
        M = U.T
        self._light(M, s[self.light])
        A22 = self.A22.tocoo()
        low = A22.row >= A22.col
        np.add.at(M, (A22.row[low], A22.col[low]), A22.data[low])
        return M

    def _light(self, M: np.ndarray, s: np.ndarray) -> None:
        """M's lower triangle -= sum over light columns of s_g a_g a_g'."""
        import scipy.sparse as sp

        if not len(s):
            return
        P = self.P
        if len(P):
            G = np.zeros((len(P), len(P)), order="F")
            for lo in range(0, len(s), USER_CHUNK):
                _rank_k(G, self.LP[:, lo:lo + USER_CHUNK].toarray(order="F"), s[lo:lo + USER_CHUNK], 1.0)
            M[np.ix_(P, P)] -= _symmetric_from_upper(G)
        LS = (self.LN @ sp.diags(s)).tocsr()
        # scipy's sparse product releases the GIL: the row blocks go to one thread per core. Each block
        # writes its own rows of M and their (popular row, own row) entries: no two blocks touch the same entry.
        _in_threads(lambda lo: self._light_rows(M, LS, lo), range(0, len(self.N), ROW_BLOCK))

    def _light_rows(self, M: np.ndarray, LS, lo: int) -> None:
        """The products of the other rows lo..lo + ROW_BLOCK (against every row). An entry above the
        diagonal belongs, transposed, to the lower triangle when its column is popular (a row of N
        comes in its own turn); the others are dropped."""
        rows, P = self.N[lo:lo + ROW_BLOCK], self.P
        B = (LS[lo:lo + ROW_BLOCK] @ self.Lt).toarray()
        if len(P):
            M[np.ix_(P, rows)] -= np.where(P[None, :] > rows[:, None], B[:, P], 0.0).T
        np.putmask(B, np.arange(self.q)[None, :] > rows[:, None], 0.0)
        M[rows] -= B

    def quad(self, Q: np.ndarray) -> np.ndarray:
        """a_g' Q a_g for every column g of A21, for a symmetric Q given by its lower triangle (C order;
        its upper triangle is overwritten with the lower one's values).

        The transpose of the Schur product (the same pairs): for the conditional variances of the
        first term. Heavy columns and the popular block by BLAS's symmetric product, the pairs that
        involve another row one by one.
        """
        out = np.empty(self.l1)
        out[self.heavy] = _sym_quad(Q.T, self.H)
        _fill_upper(Q)
        light = _light_pairs(self.Lq, self.nP, Q.ravel(), self.q)
        if len(self.P):
            X = Q[np.ix_(self.P, self.P)]
            QP = np.asfortranarray(np.tril(X) + np.tril(X, -1).T)
            for lo in range(0, len(light), USER_CHUNK):
                light[lo:lo + USER_CHUNK] += _sym_quad(QP, self.LP[:, lo:lo + USER_CHUNK].toarray(order="F"))
        out[self.light] = light
        return out


def _fill_upper(Q: np.ndarray, block: int = 512) -> None:
    """Q's upper triangle <- its lower one, in place (blocks of rows: no q x q temporary)."""
    q = len(Q)
    for lo in range(0, q, block):
        hi = min(lo + block, q)
        Q[lo:hi, hi:] = Q[hi:, lo:hi].T
        X = Q[lo:hi, lo:hi]
        X[...] = np.tril(X) + np.tril(X, -1).T


def _pack_lower(M: np.ndarray) -> np.ndarray:
    """M's lower triangle, row by row, in one vector (row r at r (r + 1) / 2)."""
    q = len(M)
    out = np.empty(q * (q + 1) // 2)

    def rows(r_range):
        for r in r_range:
            out[r * (r + 1) // 2:(r + 1) * (r + 2) // 2] = M[r, :r + 1]

    _in_threads(rows, _row_ranges(q))      # (numpy's copies release the GIL)
    return out


def _unpack_lower(packed: np.ndarray, q: int) -> np.ndarray:
    """The q x q C-ordered array with _pack_lower's lower triangle (upper: zero)."""
    M = np.zeros((q, q))

    def rows(r_range):
        for r in r_range:
            M[r, :r + 1] = packed[r * (r + 1) // 2:(r + 1) * (r + 2) // 2]

    _in_threads(rows, _row_ranges(q))
    return M


def _row_ranges(q: int, parts: int = 16) -> list[range]:
    """0..q split into `parts` ranges of about equal lower-triangle area."""
    edges = np.unique(np.round(q * np.sqrt(np.linspace(0.0, 1.0, parts + 1))).astype(int))
    return [range(a, b) for a, b in zip(edges[:-1], edges[1:])]


def _exact_float32(H: np.ndarray) -> np.ndarray:
    """H (Fortran order) in float32 when that loses nothing (counts), else as it is."""
    H32 = H.astype(np.float32)
    return np.asfortranarray(H32 if np.array_equal(H32, H) else H)


def _rank_k(U: np.ndarray, H: np.ndarray, s: np.ndarray, sign: float) -> None:
    """U's upper triangle += sign * sum_g s_g h_g h_g' over H's columns (BLAS dsyrk, CHUNK columns at a time)."""
    from scipy.linalg.blas import dsyrk

    root = np.sqrt(s)
    with blas.all_cores(U.shape[0] ** 2 * H.shape[1] / 2):
        for lo in range(0, H.shape[1], CHUNK):
            B = np.asfortranarray(H[:, lo:lo + CHUNK], dtype=np.float64) * root[lo:lo + CHUNK]
            dsyrk(sign, B, beta=1.0, c=U, trans=0, lower=0, overwrite_c=1)


def _symmetric_from_upper(G: np.ndarray) -> np.ndarray:
    return np.triu(G) + np.triu(G, 1).T


def _sym_quad(QF: np.ndarray, H: np.ndarray) -> np.ndarray:
    """h_g' Q h_g for each column of H; QF: Fortran-ordered, Q's values in its upper triangle."""
    from scipy.linalg.blas import dsymm

    out = np.empty(H.shape[1])
    with blas.all_cores(QF.shape[0] ** 2 * H.shape[1]):
        for lo in range(0, H.shape[1], CHUNK):
            B = np.asfortranarray(H[:, lo:lo + CHUNK], dtype=np.float64)
            out[lo:lo + CHUNK] = np.einsum("ij,ij->j", B, dsymm(1.0, QF, B, side=0, lower=0))
    return out


def _popular_size(L, by_count: np.ndarray) -> int:
    """The number of popular rows that minimises the modelled cost of one light product.

    Dense: l k^2 / 2 multiply-adds at DENSE_RATE; sparse: each light column's nonzeros in the other
    rows times all its nonzeros, at SPARSE_RATE.
    """
    rank = np.empty(len(by_count), dtype=np.int64)
    rank[by_count] = np.arange(len(by_count))
    C = L.tocsc()
    col = np.repeat(np.arange(C.shape[1]), np.diff(C.indptr))
    n = np.diff(C.indptr).astype(float)
    entry_rank = rank[C.indices]
    best, best_cost = 0, np.inf
    for k in (k for k in POPULAR_CANDIDATES if k <= len(by_count)):
        n_other = np.bincount(col, weights=(entry_rank >= k).astype(float), minlength=C.shape[1])
        cost = C.shape[1] * k * k / 2 / DENSE_RATE + float(n_other @ n) / SPARSE_RATE
        if cost < best_cost:
            best, best_cost = k, cost
    return best


def _popular_first(C, P: np.ndarray, q: int):
    """C (CSC) with each column's entries reordered, the popular rows first, and each column's
    number of popular entries."""
    popular = np.zeros(q, dtype=bool)
    popular[P] = True
    col = np.repeat(np.arange(C.shape[1]), np.diff(C.indptr))
    order = np.lexsort((~popular[C.indices], col))
    out = C.copy()
    out.indices, out.data = C.indices[order], C.data[order]
    return out, np.bincount(col, weights=popular[C.indices].astype(float), minlength=C.shape[1]).astype(np.int64)


def _light_pairs(C, nP: np.ndarray, flat: np.ndarray, q: int) -> np.ndarray:
    """For each column g of C (popular entries first): the sum over its pairs of entries that are not
    both popular, sum_{r, s} C[r,g] C[s,g] Q[r,s], with the symmetric Q raveled in `flat` (PAIRS at a time)."""
    nnz = np.diff(C.indptr).astype(np.int64)
    # pairs (a, b), b <= a in the column's order, a not popular: sum over a of its position + 1
    pairs = (nnz * (nnz + 1) - nP * (nP + 1)) // 2
    ends = np.cumsum(pairs)
    out = np.zeros(len(nnz))
    bounds, lo, per_thread = [], 0, PAIRS // blas.cores()     # (the threads' index arrays: PAIRS in all)
    while lo < len(nnz):
        hi = max(int(np.searchsorted(ends, (ends[lo - 1] if lo else 0) + per_thread, side="right")), lo + 1)
        bounds.append((lo, hi))
        lo = hi

    def chunk(b):
        out[b[0]:b[1]] = _pair_sums(C, nP, flat, q, *b)

    _in_threads(chunk, bounds)      # numpy's gathers and sums release the GIL: one thread per core
    return out


def _in_threads(fn, items) -> None:
    """fn(item) for every item, in one thread per core (fn writes its results in place; errors propagate)."""
    items = list(items)
    if blas.cores() == 1 or len(items) < 2:
        for item in items:
            fn(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(blas.cores()) as pool:
        for _ in pool.map(fn, items):
            pass


def _pair_sums(C, nP: np.ndarray, flat: np.ndarray, q: int, lo: int, hi: int) -> np.ndarray:
    """_light_pairs for columns lo..hi, Q (`flat`) symmetric: each entry a that is not popular with itself
    and, twice, with every entry b before it in its column (b < a; a popular pair comes in no turn)."""
    start, stop = C.indptr[lo], C.indptr[hi]
    counts = np.diff(C.indptr[lo:hi + 1])
    col = np.repeat(np.arange(hi - lo), counts)
    first = np.repeat(C.indptr[lo:hi] - start, counts)         # each entry's column's first entry
    own = np.arange(stop - start) - first                      # its position within the column
    other = own >= np.repeat(nP[lo:hi], counts)
    rows, vals = C.indices[start:stop].astype(np.int64), C.data[start:stop]
    out = np.bincount(col, weights=np.where(other, vals * vals * flat[rows * (q + 1)], 0.0), minlength=hi - lo)
    partners = np.where(other, own, 0)
    # the pairs of entry a are b = first[a] .. first[a] + own[a] - 1; k counts all pairs of the chunk
    offset = np.cumsum(partners) - partners - first
    b = np.arange(int(partners.sum())) - np.repeat(offset, partners)
    w = np.repeat(vals, partners) * vals[b]
    w *= flat[np.repeat(rows * q, partners) + rows[b]]          # Q[r, t]: row r of Q, read along t
    return out + 2.0 * np.bincount(np.repeat(col, partners), weights=w, minlength=hi - lo)
