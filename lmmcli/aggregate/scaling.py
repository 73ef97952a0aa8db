"""engine/scaling.py's rescaling for an aggregated fit: the same decision and units, from sums.

The scaled cross-products are formed from the pilot-shifted sums (stats.Shifted), not from the raw
ones, so that a response of 1e9 +- 1 keeps its digits: [X y] M = S M + 1 (M' pilot)'.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lmmcli.aggregate.crossprod import CrossProducts, pls_model, term_block
from lmmcli.engine.optimize import fit_theta
from lmmcli.engine.scaling import FAR, Scaling, _far, _y_far, solution_to_original

SHIFT_TOL = 1e-8


def _rms(sumsq: np.ndarray, n: int) -> np.ndarray:
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


def choose_scaling(agg) -> Scaling | None:
    """engine.scaling.choose_scaling from the aggregated sums."""
    cp, sh = agg.cp, agg.shifted
    n, p = cp.n, cp.p
    dx = _rms(np.diag(cp.XyXy)[:p], n)
    dz = [_rms(s, n) for s in _term_sumsq(cp)]
    mean = cp.col_sum[p] / n
    var = max(sh.S[p, p] / n - (sh.T[p] / n) ** 2, 0.0)
    sd = np.sqrt(var) if var > 0 else 1.0
    rms = float(_rms(cp.XyXy[p, p], n))
    if not _far(np.concatenate([dx, *dz])) and not _y_far(mean, sd) and not _y_far(0.0, rms):
        return None
    e = _constant_weights(cp, agg.intercept) if n > 1 else None
    m, c = (mean, sd) if e is not None else (0.0, rms)
    if not (_far(np.concatenate([[c], dx, *dz])) or abs(m) > FAR * c):
        return None
    return Scaling(float(c), float(m), e if e is not None else np.zeros(p), dx, dz)


def scaled_crossproducts(agg, s: Scaling) -> CrossProducts:
    """The CrossProducts of X / dx, (y - m X e) / c and Z_k / dz_k, from the shifted sums (X e = 1 whenever
    m != 0, as choose_scaling decides)."""
    cp, sh = agg.cp, agg.shifted
    p, m = cp.p, cp.p + 1
    # [X y] = s + 1 pilot' (s: the shifted columns). With X e = 1, s_X e is the constant 1 - pilot_X'e,
    # so the shift of y by m X e moves into the constant part: [X y] M = s M0 + 1 a', where M0 only
    # divides by the units and a = (pilot_X / dx, (pilot_y - m) / c). Nothing of size m is cancelled.
    M = np.zeros((m, m))
    M[:p, :p] = np.diag(1.0 / s.dx)
    M[p, p] = 1.0 / s.c
    a = M.T @ sh.pilot
    a[p] = (sh.pilot[p] - s.m) / s.c
    b = M.T @ sh.T
    XyXy = M.T @ sh.S @ M + np.outer(a, b) + np.outer(b, a) + cp.n * np.outer(a, a)
    dz1 = s.dz[0]
    ZtXy1 = (sh.ZS1 @ M + sh.zsum1[:, :, None] * a[None, None, :]) / dz1[None, :, None]
    D1 = cp.D1 / np.outer(dz1, dz1)[None]
    A21 = A22 = A2Xy = None
    if cp.A22 is not None:
        import scipy.sparse as sp

        dzr = np.concatenate([np.tile(d, len(t.levels)) for d, t in zip(s.dz[1:], cp.terms[1:])])
        R, C = sp.diags(1.0 / dzr), sp.diags(np.tile(1.0 / dz1, len(cp.terms[0].levels)))
        A21, A22 = (R @ cp.A21 @ C).tocsr(), (R @ cp.A22 @ R).tocsr()
        A2Xy = (sh.A2S @ M + sh.zsum2[:, None] * a[None, :]) / dzr[:, None]
    return replace(cp, XyXy=XyXy, D1=D1, ZtXy1=ZtXy1, A21=A21, A22=A22, A2Xy=A2Xy)


def optimize_and_solve_moments(model, agg, reml: bool):
    """engine.scaling.optimize_and_solve for an aggregated fit: (opt, solution, scaled theta or None)."""
    s = choose_scaling(agg)
    if s is None:
        opt = fit_theta(model)
        return opt, model.solve(opt.theta), None
    blocks = [term_block(t) for t in agg.cp.terms]
    ms = pls_model(scaled_crossproducts(agg, s), reml)
    opt_s = fit_theta(ms)
    sol = solution_to_original(ms.solve(opt_s.theta), s, blocks, agg.cp.n)
    opt = replace(opt_s, theta0=s.theta_to_original(blocks, opt_s.theta0), theta=sol.theta, fmin=sol.objective)
    return opt, sol, np.asarray(opt_s.theta, dtype=float)
