"""Aliased fixed-effect columns: R's rule (keep the first, drop later columns in the span of earlier ones)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lmmcli.linalg import gram

if TYPE_CHECKING:
    from lmmcli.design.design import ModelSpec

ALIAS_TOL = 1e-9
SPLIT_MARGIN = 1e3    # _clearly_full_rank's margin over ALIAS_TOL for rounding


def aliased_columns(X: np.ndarray) -> list[int]:
    """Columns in the span of earlier ones (R's rule: keep the first, drop later aliased columns)."""
    # each column over a power of two near its largest value: the test is scale-free, and X'X of
    # columns of 1e200 would overflow (the division by a power of two is exact)
    # (max and -min rather than max(abs(X)): no n x p temporary)
    top = np.maximum(X.max(axis=0), -X.min(axis=0)) if len(X) else np.ones(X.shape[1])
    ok = (top > 0) & np.isfinite(top)
    return aliased_from_gram(gram(X, np.where(ok, np.exp2(np.floor(np.log2(np.where(ok, top, 1.0)))), 1.0)))


def aliased_from_gram(XtX: np.ndarray) -> list[int]:
    """aliased_columns from X'X alone (what an aggregated fit has).

    Column j is aliased when its squared distance from the span of the kept earlier columns, the
    Cholesky pivot d_j of X'X, is at most ALIAS_TOL * (X'X)_jj. The pivots come from LAPACK's
    Cholesky of the not-yet-judged columns given the kept ones (O(p^3), 1 s at p = 5,000, where a
    solve per column is O(p^4)); after a dropped column the rest is factored again.
    """
    p = XtX.shape[1]
    if _clearly_full_rank(XtX):
        return []
    try:                     # the usual case, full rank: one factor, and numpy only (scipy costs start-up)
        if np.all(np.diag(np.linalg.cholesky(XtX)) ** 2 > ALIAS_TOL * np.maximum(np.diag(XtX), 1e-300)):
            return []
    except np.linalg.LinAlgError:
        pass
    from scipy.linalg import solve_triangular
    from scipy.linalg.lapack import dpotrf

    keep, drop, L_keep, start = [], [], np.zeros((0, 0)), 0
    while start < p:
        rest = np.arange(start, p)
        B = solve_triangular(L_keep, XtX[np.ix_(keep, rest)], lower=True) if keep else np.zeros((0, len(rest)))
        S = XtX[np.ix_(rest, rest)] - B.T @ B
        L, info = dpotrf(S, lower=1, clean=1)
        d = np.diag(L) ** 2
        ok = d > ALIAS_TOL * np.maximum(np.diag(XtX)[rest], 1e-300)
        if info > 0:
            ok[info - 1:] = False
        bad = int(np.argmin(ok)) if not ok.all() else len(rest)
        # columns before the first bad one are kept: their rows of the factor are final
        L_new = np.zeros((len(keep) + bad,) * 2)
        L_new[:len(keep), :len(keep)] = L_keep
        L_new[len(keep):, :len(keep)] = B[:, :bad].T
        L_new[len(keep):, len(keep):] = L[:bad, :bad]
        keep, L_keep = keep + rest[:bad].tolist(), L_new
        if bad < len(rest):
            drop.append(int(rest[bad]))
        start += bad + 1
    return drop


def _clearly_full_rank(XtX: np.ndarray) -> bool:
    """Whether every column is clearly outside the span of all the others, found in O(p) for an X'X with
    a large diagonal block (linalg.split_gram: a factor's indicator columns); False when not known.

    A column's squared distance from the span of all the other columns, 1 / (X'X)^-1_jj, is at most
    its distance from the span of the earlier ones (the pivot aliased_from_gram tests). So when it
    passes the test with SPLIT_MARGIN to spare (room for rounding), no column is aliased.
    """
    from lmmcli.linalg import split_gram

    try:
        split = split_gram(XtX)
    except np.linalg.LinAlgError:
        return False
    if split is None:
        return False
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        dist2 = 1.0 / split.inverse_diagonal()
    return bool(np.all(dist2 > SPLIT_MARGIN * ALIAS_TOL * np.maximum(np.diag(XtX), 1e-300)))


def drop_aliased(spec: ModelSpec, names: list[str], X: np.ndarray):
    """(X without its aliased columns, [lme4's rank-deficiency warning]); records the kept and dropped
    names in spec."""
    drop = aliased_columns(X) if X.shape[1] else []
    spec.aliased = [names[j] for j in drop]
    spec.fixed_names = [nm for j, nm in enumerate(names) if j not in set(drop)]
    if not drop:
        return X, []
    return np.delete(X, drop, axis=1), ["fixed-effect model matrix is rank deficient so dropping "
                                        f"{len(drop)} column{'s' if len(drop) > 1 else ''}: {', '.join(spec.aliased)}"]
