"""engine/scaling.py's units for an aggregated fit: the same decision, from sums, and the stored
cross-products [X y] W, Z_k T_k formed from the pilot-shifted sums, so that a response of 1e9 +- 1
keeps its digits: [X y] W = S W + 1 (W' pilot)' with S the shifted columns.

Units here are W = [[diag(1/dx), -m e / c], [0, 1/c]] and T_k = diag(1/dz_k) (the engine also centres
a correlated term's slopes; diagonal units are as exact, and map back through the same Scaling).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lmmcli.aggregate.crossprod import CrossProducts
from lmmcli.engine.scaling import FAR_Z, SHIFT_TOL, Scaling, _far, _y_far


def _rms(sumsq, n: int) -> np.ndarray:
    r = np.sqrt(np.asarray(sumsq, dtype=float) / n)
    return np.where((r > 0) & np.isfinite(r), r, 1.0)


def _term_sumsq(cp: CrossProducts) -> list[np.ndarray]:
    """Each term's sum over rows of each Z column squared."""
    out = [np.einsum("gii->i", cp.D1)]
    if cp.A22 is not None:
        d, pos = cp.A22.diagonal(), 0
        for t in cp.terms[1:]:
            l, p = len(t.levels), len(t.columns)
            out.append(d[pos:pos + l * p].reshape(l, p).sum(axis=0))
            pos += l * p
    return out


def _constant_weights(cp: CrossProducts, intercept: int | None) -> np.ndarray | None:
    """e with X e = 1: the intercept's unit vector, or the least-squares weights when they reproduce 1."""
    p = cp.p
    if intercept is not None:
        e = np.zeros(p)
        e[intercept] = 1.0
        return e
    if p == 0:
        return None
    XtX, s = cp.XyXy[:p, :p], cp.col_sum[:p]
    e = np.linalg.lstsq(XtX, s, rcond=None)[0]
    resid = cp.n - 2 * e @ s + e @ XtX @ e
    return e if resid <= (SHIFT_TOL ** 2) * cp.n else None


def choose_units(agg) -> tuple[Scaling | None, float]:
    """engine.scaling.choose_scaling from the aggregated sums (None: the columns as they are), and the
    shift m of y (y_s = (y - m X e) / c)."""
    cp, sh = agg.cp, agg.shifted
    n, p = cp.n, cp.p
    dx = _rms(np.diag(cp.XyXy)[:p], n)
    dz = [_rms(s, n) for s in _term_sumsq(cp)]
    x_far, z_far = _far(dx), [_far(d, FAR_Z) for d in dz]
    mean = cp.col_sum[p] / n
    var = max(sh.S[p, p] / n - (sh.T[p] / n) ** 2, 0.0)
    sd = float(np.sqrt(var)) if var > 0 else 1.0
    rms = float(_rms(cp.XyXy[p, p], n))
    W, shift = np.eye(p + 1), 0.0
    if x_far:
        W[:p, :p] = np.diag(1.0 / dx)
    if _y_far(mean, sd) or _y_far(0.0, rms):
        e = _constant_weights(cp, agg.intercept) if n > 1 else None
        m, c = (mean, sd) if e is not None else (0.0, rms)
        if _y_far(m, c):
            if e is not None:
                W[:p, p] = -m * e / c
                shift = float(m)
            W[p, p] = 1.0 / c
    if np.array_equal(W, np.eye(p + 1)) and not any(z_far):
        return None, 0.0
    T = tuple(np.diag(1.0 / d) if far else np.eye(len(d)) for d, far in zip(dz, z_far))
    return Scaling(W, T), shift


def stored_crossproducts(agg, units: Scaling, m: float) -> CrossProducts:
    """The CrossProducts of [X y] W and Z_k T_k (diagonal T_k), from the shifted sums; m: y's shift."""
    cp, sh = agg.cp, agg.shifted
    p = cp.p
    W = units.W
    # [X y] = s + 1 pilot'. With X e = 1, s_X e is the constant 1 - pilot_X'e, so y's shift by m X e
    # moves into the constant part: [X y] W = s W0 + 1 a', W0 = W without its shift column,
    # a = W0' pilot except a_y = wyy (pilot_y - m): nothing of size m is cancelled.
    W0 = W.copy()
    W0[:p, p] = 0.0
    a = W0.T @ sh.pilot
    if m != 0.0:
        a[p] = W[p, p] * (sh.pilot[p] - m)
    b = W0.T @ sh.T
    XyXy = W0.T @ sh.S @ W0 + np.outer(a, b) + np.outer(b, a) + cp.n * np.outer(a, a)
    t1 = np.diag(units.T[0])
    ZtXy1 = (sh.ZS1 @ W0 + sh.zsum1[:, :, None] * a[None, None, :]) * t1[None, :, None]
    D1 = cp.D1 * np.outer(t1, t1)[None]
    A21 = A22 = A2Xy = None
    if cp.A22 is not None:
        import scipy.sparse as sp

        tr = np.concatenate([np.tile(np.diag(T), len(t.levels)) for T, t in zip(units.T[1:], cp.terms[1:])])
        R, C = sp.diags(tr), sp.diags(np.tile(t1, len(cp.terms[0].levels)))
        A21, A22 = (R @ cp.A21 @ C).tocsr(), (R @ cp.A22 @ R).tocsr()
        A2Xy = (sh.A2S @ W0 + sh.zsum2[:, None] * a[None, :]) * tr[:, None]
    col_sum = W.T @ cp.col_sum
    nan = np.full(p + 1, np.nan)
    return replace(cp, XyXy=XyXy, D1=D1, ZtXy1=ZtXy1, A21=A21, A22=A22, A2Xy=A2Xy, col_sum=col_sum,
                   col_min=nan, col_max=nan, units=units)


def engine_record(agg) -> CrossProducts:
    """The record the engine fits: the raw cross-products, or stored units when the numbers need them."""
    units, m = choose_units(agg)
    return agg.cp if units is None else stored_crossproducts(agg, units, m)
