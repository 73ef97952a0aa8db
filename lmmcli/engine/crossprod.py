"""The engine's input: the cross-products of [Z X y] and nothing else (no rows).

Every number the profiled REML/ML objective needs is a sum over rows of products of two columns of
[Z X y], so a `CrossProducts` can be formed from one batch of rows (`from_rows`), from several
batches or workers (`merge`, which is associative: sums add, minima and maxima combine), or straight
from a database's GROUP BY (lmmcli/aggregate, which fills the same fields; see
/work/notes/CROSSPRODUCTS.md for the agreed field names). Profiling and bootstrapping change the
response or move columns of X into an offset: every field is linear in [X y], so `with_response`
and `recombined` form the new record without touching X or Z again, and `term` gives a scalar
term's one-term record from the fields already formed.

Units. Extreme numbers (values ~1e9 or ~1e-9, or a shift of 1e9 over a spread of 1) lose digits
when multiplied out, so the columns can be rescaled and shifted *before* the products (see
scaling.py, which chooses the units): `units.W` and `units.T` record it,

    [X y]_stored = [X y] W,     Z_k,stored = Z_k T_k,

and every array here is of the stored columns. `units` is None for columns taken as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmmcli.engine import kernels as kern
from lmmcli.errors import ModelSpecError

# The dense part (all random effects after the largest term) must fit in memory as a square matrix.
MAX_DENSE_REST = 20000

WIDE_COLUMNS = 16       # above this many columns, reduce along axis 0 (see _column_stats)


@dataclass(frozen=True)
class TermInfo:
    """One random-effects term, in engine order (largest number of levels first)."""

    group: str                   # grouping factor's name as lme4 prints it, e.g. "Subject", "sample:batch"
    columns: tuple[str, ...]     # Z column names, e.g. ("(Intercept)", "Days")
    levels: tuple[str, ...]      # level labels, in R's order (codes index into this)
    correlated: bool = True      # False for (x || g): only the diagonal of T_k is a parameter

    @property
    def p(self) -> int:
        return len(self.columns)

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    def theta_index(self) -> list[tuple[int, int]]:
        """(row, col) of T filled by each theta element: the lower triangle column by column, as lme4."""
        if not self.correlated:
            return [(j, j) for j in range(self.p)]
        return [(i, j) for j in range(self.p) for i in range(j, self.p)]


def term_info(blk) -> TermInfo:
    """The TermInfo of a block of rows (anything with group, terms, levels and correlated, as design.ReBlock)."""
    return TermInfo(blk.group, tuple(blk.terms), tuple(blk.levels), bool(getattr(blk, "correlated", True)))


@dataclass(frozen=True)
class CrossProducts:
    """Everything the engine needs of the data: n, names, and the cross-products of [Z X y] (m = p + 1)."""

    n: int                       # rows used
    columns: tuple[str, ...]     # X column names then the response name (len m)
    XyXy: np.ndarray             # (m, m)  [X y]'[X y]
    terms: tuple[TermInfo, ...]  # all random terms; terms[0] is "the first term"
    counts1: np.ndarray          # (l1,) rows per level of the first term
    D1: np.ndarray               # (l1, p1, p1) per level Z_i'Z_i of the first term
    ZtXy1: np.ndarray            # (l1, p1, m)  per level Z_i'[X y] of the first term
    A21: object | None           # (q_r, q1) sparse CSR Z_rest'Z_1, columns level-major (level * p1 + j)
    A22: object | None           # (q_r, q_r) sparse CSR Z_rest'Z_rest, rest terms stacked in order
    A2Xy: np.ndarray | None      # (q_r, m) Z_rest'[X y]
    col_sum: np.ndarray          # (m,) column sums of [X y]
    col_min: np.ndarray          # (m,) (NaN where unknown, e.g. after recombined())
    col_max: np.ndarray          # (m,)
    nonfinite: np.ndarray        # (m,) int, count of non-finite values seen (0 after row dropping)
    units: object | None = None  # scaling.Scaling (W, T) the columns were stored in; None: as they are

    @property
    def m(self) -> int:
        return len(self.XyXy)

    @property
    def p(self) -> int:
        return self.m - 1

    @property
    def q_rest(self) -> int:
        """Number of random effects after the first term."""
        return sum(t.nlevels * t.p for t in self.terms[1:])

    def term_gram(self, k: int) -> np.ndarray:
        """Z_k'Z_k summed over all levels of term k (p_k x p_k), in stored units."""
        t = self.terms[k]
        if k == 0:
            return self.D1.sum(axis=0)
        off = sum(s.nlevels * s.p for s in self.terms[1:k])
        q = t.nlevels * t.p
        B = self.A22[off:off + q, off:off + q].toarray().reshape(t.nlevels, t.p, t.nlevels, t.p)
        return np.einsum("gigj->ij", B)

    # -- constructors ----------------------------------------------------------------------------
    @classmethod
    def from_rows(cls, X, y, blocks, columns=None, units=None) -> "CrossProducts":
        """The cross-products of one batch of rows: X (n, p), y (n,), blocks with codes, Z and TermInfo's fields.

        columns: X's names then y's (default x1.., y); units: store the columns as [X y] W, Z_k T_k.
        """
        X = np.asarray(X, dtype=float)
        n, p = X.shape
        Xy = np.empty((n, p + 1))               # one n x m array, filled in place (no extra copy)
        Xy[:, :p] = X
        Xy[:, p] = y
        Zs = [blk.Z for blk in blocks]
        if units is not None:
            Xy = kern.times_small(Xy, units.W)
            Zs = [Z @ T for Z, T in zip(Zs, units.T)]
        codes = [np.asarray(blk.codes) for blk in blocks]
        terms = tuple(term_info(blk) for blk in blocks)
        names = tuple(columns) if columns is not None else tuple(f"x{j + 1}" for j in range(p)) + ("y",)
        return cls._of_rows(Xy, terms, codes, Zs, names, units)

    @classmethod
    def _of_rows(cls, Xy, terms, codes, Zs, names, units) -> "CrossProducts":
        """The record of stored-unit rows [X y] and per-term (codes, Z)."""
        n, m = Xy.shape
        finite = np.isfinite(Xy)
        first = _first_term(terms, codes, Zs, Xy)
        rest = _rest_terms(terms, codes, Zs, Xy)
        col_sum, col_min, col_max = _column_stats(Xy)
        return cls(n, names, kern.gram(Xy), terms, *first, *rest, col_sum, col_min, col_max,
                   (~finite).sum(axis=0) if not finite.all() else np.zeros(m, dtype=np.int64), units)

    def with_response(self, y, X, blocks) -> "CrossProducts":
        """The same design with response y (original units): only the products with y are formed.

        X and blocks are the design's rows (needed for X'y and Z'y); X's own products are kept.
        """
        p, u = self.p, self.units
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if u is None:
            Xs, ys, Zs = X, y, [blk.Z for blk in blocks]
        else:
            Xs = X @ u.W[:p, :p]
            ys = X @ u.W[:p, p] + y * u.W[p, p]
            Zs = [blk.Z @ T for blk, T in zip(blocks, u.T)]
        XyXy = self.XyXy.copy()
        XyXy[:p, p] = XyXy[p, :p] = Xs.T @ ys
        XyXy[p, p] = ys @ ys
        ZtXy1, A2Xy = self.ZtXy1, self.A2Xy
        if self.terms:
            blk = blocks[0]
            ZtXy1 = self.ZtXy1.copy()
            ZtXy1[:, :, p] = kern.pair_sums(np.asarray(blk.codes), self.terms[0].nlevels, Zs[0], ys[:, None])[:, :, 0]
            if len(self.terms) > 1:
                A2Xy = self.A2Xy.copy()
                A2Xy[:, p] = sparse_model_matrix(self.terms[1:], [b.codes for b in blocks[1:]], Zs[1:]).T @ ys
        return _replace(self, XyXy=XyXy, ZtXy1=ZtXy1, A2Xy=A2Xy,
                        col_sum=_set(self.col_sum, p, ys.sum()), col_min=_set(self.col_min, p, _reduce1(ys, np.min)),
                        col_max=_set(self.col_max, p, _reduce1(ys, np.max)),
                        nonfinite=_set(self.nonfinite, p, int((~np.isfinite(ys)).sum())))

    def recombined(self, M, columns=None, units=None) -> "CrossProducts":
        """The record of [X y]_stored M (M: m x m', in stored units), e.g. a column moved into an offset.

        Every product is linear in [X y], so no row is needed. columns: the new names (default: generic);
        units: the new record's units (how its stored columns relate to the original ones; the caller
        knows, see scaling.fixed_at). Column minima and maxima are unknown afterwards (NaN).
        """
        M = np.asarray(M, dtype=float)
        m2 = M.shape[1]
        names = tuple(columns) if columns is not None else tuple(f"x{j + 1}" for j in range(m2 - 1)) + ("y",)
        return _replace(self, columns=names, XyXy=M.T @ self.XyXy @ M, ZtXy1=self.ZtXy1 @ M,
                        A2Xy=None if self.A2Xy is None else self.A2Xy @ M, col_sum=self.col_sum @ M,
                        col_min=np.full(m2, np.nan), col_max=np.full(m2, np.nan),
                        nonfinite=(self.nonfinite @ (M != 0)).astype(np.int64), units=units)

    def term(self, k: int) -> "CrossProducts":
        """The record with scalar random term k alone, from the fields already formed (no rows).

        A scalar term's Z'Z is diagonal (its per-level sums of z^2), so term k's D is the diagonal of
        its block of A22 (or D1 for the first term); its Z'[X y] is its rows of A2Xy (or ZtXy1).
        Rows per level are known for the first term and for an intercept; otherwise they are NaN.
        """
        t = self.terms[k]
        if t.p != 1:
            raise ValueError("term() is for scalar random terms")
        if k == 0:
            d, zxy, counts = self.D1[:, 0, 0], self.ZtXy1[:, 0, :], self.counts1
        else:
            off = sum(s.nlevels for s in self.terms[1:k])
            d = self.A22.diagonal()[off:off + t.nlevels]
            zxy = self.A2Xy[off:off + t.nlevels]
            counts = d.copy() if t.columns[0] == "(Intercept)" and self.units is None else np.full(t.nlevels, np.nan)
        units = None if self.units is None else self.units.for_terms([k])
        return _replace(self, terms=(t,), counts1=np.asarray(counts, dtype=float), D1=d[:, None, None].copy(),
                        ZtXy1=zxy[:, None, :].copy(), A21=None, A22=None, A2Xy=None, units=units)


    def without_first(self) -> "CrossProducts":
        """The record without the first term, the second becoming first, from the fields already formed.

        For scalar rest terms: the second term's Z'Z is then diagonal (its block of A22's diagonal),
        its Z'[X y] the first rows of A2Xy, and A21, A22, A2Xy lose its rows and columns.
        """
        if len(self.terms) < 2 or any(t.p != 1 for t in self.terms[1:]):
            raise ValueError("without_first() needs scalar terms after the first")
        t, l = self.terms[1], self.terms[1].nlevels
        A22 = self.A22.tocsr()
        d = A22.diagonal()[:l]
        counts = d.copy() if t.columns[0] == "(Intercept)" and self.units is None else np.full(l, np.nan)
        more = len(self.terms) > 2
        units = None if self.units is None else self.units.for_terms(range(1, len(self.terms)))
        return _replace(self, terms=self.terms[1:], counts1=np.asarray(counts, dtype=float),
                        D1=d[:, None, None].copy(), ZtXy1=self.A2Xy[:l, None, :].copy(),
                        A21=A22[l:, :l].tocsr() if more else None, A22=A22[l:, l:].tocsr() if more else None,
                        A2Xy=self.A2Xy[l:].copy() if more else None, units=units)

def merge(a: CrossProducts, b: CrossProducts) -> CrossProducts:
    """The record of the rows of a and b together (same columns, terms, levels and units)."""
    if a.columns != b.columns or a.terms != b.terms:
        raise ValueError("merge needs records of the same columns and random terms (with the same levels)")
    if (a.units is None) != (b.units is None) or (a.units is not None and not a.units.same(b.units)):
        raise ValueError("merge needs records stored in the same units")

    def add(x, y):
        return None if x is None else x + y

    return CrossProducts(
        a.n + b.n, a.columns, a.XyXy + b.XyXy, a.terms, a.counts1 + b.counts1, a.D1 + b.D1, a.ZtXy1 + b.ZtXy1,
        None if a.A21 is None else (a.A21 + b.A21).tocsr(), None if a.A22 is None else (a.A22 + b.A22).tocsr(),
        add(a.A2Xy, b.A2Xy), a.col_sum + b.col_sum, np.fmin(a.col_min, b.col_min), np.fmax(a.col_max, b.col_max),
        a.nonfinite + b.nonfinite, a.units)


# -- helpers ------------------------------------------------------------------------------------
def _replace(cp: CrossProducts, **fields) -> CrossProducts:
    """A new record with some fields replaced (the record itself is never changed)."""
    from dataclasses import replace

    return replace(cp, **fields)


def _set(v: np.ndarray, j: int, value) -> np.ndarray:
    out = v.copy()
    out[j] = value
    return out


def _column_stats(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column sums, minima and maxima (NaN for no rows). For a few columns one column at a time: reducing
    a C-ordered n x m array along axis 0 is ~4x slower there (1e6 x 3: 50 ms against 14 ms per statistic);
    for many columns the strided column reads are the slow part (15,000 x 5,002: 1.8 s against 0.15 s)."""
    m = A.shape[1]
    if not len(A):
        return np.zeros(m), np.full(m, np.nan), np.full(m, np.nan)
    if m > WIDE_COLUMNS:
        return A.sum(axis=0), A.min(axis=0), A.max(axis=0)
    cols = [A[:, j] for j in range(m)]
    return (np.array([c.sum() for c in cols]), np.array([c.min() for c in cols]), np.array([c.max() for c in cols]))


def _reduce1(v: np.ndarray, f) -> float:
    return float(f(v)) if len(v) else float("nan")


def _first_term(terms, codes, Zs, Xy):
    """counts1, D1, ZtXy1 of the first term (empty arrays without random terms)."""
    m = Xy.shape[1]
    if not terms:
        return np.zeros(0), np.zeros((0, 0, 0)), np.zeros((0, 0, m))
    t = terms[0]
    counts = np.bincount(codes[0], minlength=t.nlevels).astype(float)
    D1, ZtXy1 = kern.level_cross(codes[0], t.nlevels, Zs[0], [Zs[0], Xy])
    return counts, D1, ZtXy1


def _rest_terms(terms, codes, Zs, Xy):
    """A21, A22, A2Xy of the terms after the first (None without them)."""
    rest = terms[1:]
    if not rest:
        return None, None, None
    q_r = sum(t.nlevels * t.p for t in rest)
    if q_r > MAX_DENSE_REST:
        raise ModelSpecError(
            f"the random terms after the largest one have {q_r} random effects together; "
            f"lmm handles at most {MAX_DENSE_REST} there",
            hint="put the grouping factor with the most levels in its own term, or use fewer levels")
    Z1 = sparse_model_matrix(terms[:1], codes[:1], Zs[:1])
    Zr = sparse_model_matrix(rest, codes[1:], Zs[1:])
    return (Zr.T @ Z1).tocsr(), (Zr.T @ Zr).tocsr(), np.asarray(Zr.T @ Xy)


def sparse_model_matrix(terms, codes, Zs):
    """The n x q sparse model matrix of some terms (columns level-major within each term)."""
    import scipy.sparse as sp

    mats = []
    for t, c, Z in zip(terms, codes, Zs):
        n, p = Z.shape
        rows = np.repeat(np.arange(n), p)
        cols = (np.asarray(c)[:, None] * p + np.arange(p)[None, :]).ravel()
        mats.append(sp.csr_matrix((Z.ravel(), (rows, cols)), shape=(n, t.nlevels * p)))
    return sp.hstack(mats, format="csr")
