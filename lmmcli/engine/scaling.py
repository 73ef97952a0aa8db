"""Internal rescaling of y, X and Z for fits with very large or very small numbers (values ~1e9 or ~1e-9).

The model y = X beta + Z b + e is fitted as y_s = (y - m) / c, X_s = X Dx^-1, Z_s = Z Dz^-1
(Dx, Dz diagonal; the shift m only when the column space of X holds the constant 1, so that
X e = 1 absorbs it). The scaled model is the same model in other units:

    beta = c Dx^-1 beta_s + m e,   b = c Dz^-1 b_s,   u = u_s,   sigma = c sigma_s,
    T = Dz^-1 T_s (so theta's element (i, j) is divided by dz_i),   RX = RX_s Dx,
    objective = objective_s + 2 dof log c + (REML) 2 sum log dx      (dof = n - p for REML, n for ML).

The optimizer then sees theta of order 1 (its start, steps and tolerances assume that), and the
cross-products do not lose digits to cancellation. Everything is mapped back exactly, so the
FittedModel is on the original scale. Scaling is used only when some scale is far from 1.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lmmcli.engine.optimize import OptSummary, fit_theta
from lmmcli.engine.pls import PlsModel, PlsSolution

FAR = 1e3          # a scale outside [1/FAR, FAR], or a shift beyond FAR spreads, triggers rescaling
SHIFT_TOL = 1e-8   # how exactly X e must reproduce the constant column


@dataclass
class Scaling:
    """Units of the scaled problem: y_s = (y - m) / c, X_s = X / dx, Z_k,s = Z_k / dz[k]."""

    c: float
    m: float
    e: np.ndarray
    dx: np.ndarray
    dz: list

    def theta_to_original(self, blocks, theta_s) -> np.ndarray:
        """theta of T = Dz^-1 T_s: each element (i, j) divided by dz_i."""
        return np.asarray(theta_s, dtype=float) / self._theta_units(blocks)

    def theta_to_scaled(self, blocks, theta) -> np.ndarray:
        """The inverse of theta_to_original."""
        return np.asarray(theta, dtype=float) * self._theta_units(blocks)

    def _theta_units(self, blocks) -> np.ndarray:
        """dz_i for each theta element (i, j), in theta's order."""
        return np.array([d[i] for blk, d in zip(blocks, self.dz) for i, _j in blk.theta_index()], dtype=float)


def _rms(A: np.ndarray) -> np.ndarray:
    """Root mean square of each column; 1 for an all-zero column."""
    # einsum: no n x p temporary (np.square's cost 0.3 s at 1e7 rows)
    r = np.sqrt(np.einsum("ij,ij->j", A, A) / len(A)) if len(A) else np.ones(A.shape[1])
    return np.where((r > 0) & np.isfinite(r), r, 1.0)


def _constant_weights(X: np.ndarray) -> np.ndarray | None:
    """e with X e = 1 when the constant is in the column space of X (an intercept, or all levels of a factor)."""
    if X.shape[1] == 0:
        return None
    e = np.linalg.lstsq(X, np.ones(len(X)), rcond=None)[0]
    return e if np.max(np.abs(X @ e - 1.0)) < SHIFT_TOL else None


def _far(scales) -> bool:
    """Any scale outside [1/FAR, FAR]."""
    scales = np.asarray(scales, dtype=float)
    return bool(np.any((scales > FAR) | (scales < 1 / FAR)))


def _response_units(y: np.ndarray, shifted: bool) -> tuple[float, float]:
    """(m, c): y's mean and sd when X can absorb a shift, else 0 and y's root mean square."""
    m, c = (float(np.mean(y)), float(np.std(y))) if shifted else (0.0, float(_rms(y[:, None])[0]))
    return m, (c if c > 0 and np.isfinite(c) else 1.0)


def _y_far(m: float, c: float) -> bool:
    return _far([c]) or abs(m) > FAR * c


def choose_scaling(X: np.ndarray, y: np.ndarray, blocks) -> Scaling | None:
    """The rescaling this problem needs, or None when every scale is moderate (the usual case)."""
    dx = _rms(X)
    dz = [_rms(blk.Z) for blk in blocks]
    # Whether X holds the constant (a least-squares solve over all n rows: 1 s at 1e7 rows) matters
    # only for y's units; when y is moderate either way, and so are X and Z, no scaling is needed.
    if not _far(np.concatenate([dx, *dz])) and not _y_far(*_response_units(y, True)) \
            and not _y_far(*_response_units(y, False)):
        return None
    e = _constant_weights(X / dx) if len(y) > 1 else None
    m, c = _response_units(y, e is not None)
    if not (_far(np.concatenate([[c], dx, *dz])) or abs(m) > FAR * c):
        return None
    return Scaling(c, m, e / dx if e is not None else np.zeros(X.shape[1]), dx, dz)


def scaled_model(X, y, blocks, s: Scaling, reml: bool) -> PlsModel:
    """The PLS model in the scaled units."""
    blocks_s = [replace(blk, Z=blk.Z / d) for blk, d in zip(blocks, s.dz)]
    return PlsModel(X / s.dx, (y - s.m) / s.c, blocks_s, reml=reml)


def solution_to_original(sol: PlsSolution, s: Scaling, blocks, n: int) -> PlsSolution:
    """Map a scaled solution back to the original units (formulas in the module docstring)."""
    p = len(s.dx)
    dof = n - p if sol.reml else n
    beta = s.c * sol.beta / s.dx + s.m * s.e
    b = [s.c * bk / d[None, :] for bk, d in zip(sol.b, s.dz)]
    logdet_RX = sol.logdet_RX + 2.0 * float(np.sum(np.log(s.dx)))
    objective = sol.objective + 2.0 * dof * np.log(s.c) + (2.0 * float(np.sum(np.log(s.dx))) if sol.reml else 0.0)
    cond_var = None
    if sol.cond_var is not None:
        cond_var = [s.c ** 2 * V / np.outer(d, d)[None] for V, d in zip(sol.cond_var, s.dz)]
    return PlsSolution(s.theta_to_original(blocks, sol.theta), beta, b, [u.copy() for u in sol.u],
                       s.c ** 2 * sol.pwrss, sol.logdet_L, logdet_RX, sol.RX * s.dx[None, :],
                       s.c * sol.sigma, float(objective), sol.reml, cond_var)


def optimize_and_solve(model: PlsModel, X, y, blocks) -> tuple[OptSummary, PlsSolution, np.ndarray | None]:
    """Optimise theta (rescaled when the numbers are extreme); return (opt, solution, scaled theta or None).

    The optimizer summary and the solution are on the original scale either way.
    """
    s = choose_scaling(X, y, blocks)
    if s is None:
        opt = fit_theta(model)
        return opt, model.solve(opt.theta), None
    ms = scaled_model(X, y, blocks, s, model.reml)
    opt_s = fit_theta(ms)
    sol = solution_to_original(ms.solve(opt_s.theta), s, blocks, len(y))
    opt = replace(opt_s, theta0=s.theta_to_original(blocks, opt_s.theta0), theta=sol.theta, fmin=sol.objective)
    return opt, sol, np.asarray(opt_s.theta, dtype=float)
