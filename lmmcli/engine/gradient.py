"""The gradient of the deviance's pieces with respect to theta, in closed form.

The deviance (profiled or not) is made of logdet_L = log|A|, A = Lambda'Z'Z Lambda + I (BMBW 18),
logdet_RX = log|RX'RX| and pwrss; pls.py forms them at a theta. With Lambda_i = dLambda/dtheta_i and
M = [[A, Lambda'Z'X], [X'Z Lambda, X'X]] (so log|M| = logdet_L + logdet_RX),

    d log|A| / dtheta_i = 2 tr(A^-1 Lambda'Z'Z Lambda_i) = 2 [tr(Lambda^-1 Lambda_i) - tr(A^-1 Lambda^-1 Lambda_i)],

because Lambda'Z'Z = (A - I) Lambda^-1 (Lambda invertible: no diagonal theta at 0). The same holds for M
with (M^-1)_uu = A^-1 + F F' in place of A^-1, F = L^-T RZX RX^-1, so d logdet_RX = -2 tr(F F' Lambda^-1 Lambda_i).
By the envelope theorem (pwrss is a minimum over beta and u) and Lambda'Z'r = u at the solution,

    d pwrss / dtheta_i = -2 r'Z Lambda_i u = -2 u' Lambda^-1 Lambda_i u.

Per random term k (T_k lower triangular, l_k levels, theta_i its entry (r, c)), Lambda^-1 Lambda_i is
I_l (x) T_k^-1 e_r e_c', so each trace needs only a p_k x p_k sum over the term's levels:

    d logdet_L = 2 [(l_k I - W_k) T_k^-1]_cr,   d logdet_RX = -2 [V_k T_k^-1]_cr,   d pwrss = -2 [T_k^-T U_k]_rc,

W_k = sum_g (A^-1)_gg, V_k = sum_g F_g F_g', U_k = sum_g u_g u_g' (g the term's levels, p_k x p_k blocks).
The diagonal blocks of A^-1 are what conditional variances need (pls._cond_var): for one random term
L11_g^-T L11_g^-1; for scalar crossed or nested terms rest.RestPart.inverse_diagonal, through the fill
pattern. Other layouts (vector-valued terms beside others, no fill pattern) have no closed form here:
`available` says so, and callers difference the objective instead. Cost: one solution, and for crossed
terms one dense inverse of the rest factor (LAPACK potri, about twice the factor's flops).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmmcli.engine import kernels as kern

MIN_DIAGONAL = 1e-6     # below this a diagonal theta counts as on the boundary (Lambda not invertible)


@dataclass
class DevianceGradient:
    """The deviance's pieces at theta and their gradients with respect to theta; RX for Var(beta) there."""

    theta: np.ndarray
    logdet_L: float
    pwrss: float
    logdet_RX: float
    d_logdet_L: np.ndarray
    d_pwrss: np.ndarray
    d_logdet_RX: np.ndarray
    RX: np.ndarray
    criterion: float = float("nan")      # the profiled objective at theta (PlsSolution.objective)

    def objective(self, n: int, p: int, reml: bool) -> np.ndarray:
        """The gradient of the profiled objective (BMBW 34 for ML, 41 for REML; sigma profiled out)."""
        dof = n - p if reml else n
        g = self.d_logdet_L + dof * self.d_pwrss / self.pwrss
        return g + self.d_logdet_RX if reml else g


def available(model) -> bool:
    """Whether the closed form covers this PlsModel's layout: one random term, or scalar terms whose
    rest part keeps its fill pattern."""
    if not model.blocks:
        return False
    if not model.rest:
        return True
    rp = model.rest_part
    return model.p1 == 1 and rp.diagonal and rp.K is not None


def interior(model, theta) -> bool:
    """Whether every diagonal theta is clear of 0 (Lambda invertible), as the closed form needs."""
    return bool(np.all(np.asarray(theta, dtype=float)[model.lower == 0] > MIN_DIAGONAL))


# Central differences of the gradient (the convergence check's Hessian, Satterthwaite's) take steps of this
# share of |theta| (of theta's natural scale, 1 / rms of its Z column, for an off-diagonal theta near 0).
# Measured on sleepstudy (Days|Subject) and lme4's InstEval: Satterthwaite's df differ from Richardson
# differences of the deviance by 2e-4 relative at 1e-2, 2e-6 at 1e-3, 5e-8 at 1e-4 (the error goes as the
# step squared; the gradient's rounding, ~1e-12 relative, stays far below it).
STEP = 1e-4


@dataclass
class Curvature:
    """The gradient at theta and at theta +- h_i e_i (stored units): what a Hessian by central differences needs."""

    center: DevianceGradient
    h: np.ndarray
    plus: list
    minus: list

    def hessian(self, grad) -> np.ndarray:
        """The symmetrised central-difference Jacobian of grad(DevianceGradient) -> vector."""
        H = np.column_stack([(grad(a) - grad(b)) / (2.0 * h) for a, b, h in zip(self.plus, self.minus, self.h)])
        return (H + H.T) / 2.0


_MEMO: "weakref.WeakKeyDictionary" = None


def curvature(model, theta, known: tuple | None = None) -> Curvature | None:
    """The Curvature of a PlsModel at theta (stored units), or None where the closed form does not apply
    (`available`, wide models, a theta on the boundary). Memoised per model: the convergence check and
    Satterthwaite's df ask at the same optimum (Satterthwaite's theta, mapped back from the original
    units, equal to the check's to rounding, finds the check's points). known: forward(model, theta),
    whose center and plus points are reused (then only the k minus points are solved)."""
    global _MEMO
    import weakref

    from lmmcli.engine import wide

    theta = np.asarray(theta, dtype=float)
    if not (available(model) and len(theta)) or wide.applies(model):
        return None
    if _MEMO is None:
        _MEMO = weakref.WeakKeyDictionary()
    memo = _MEMO.setdefault(model, [])
    for c in memo:
        if np.allclose(c.center.theta, theta, rtol=1e-12, atol=1e-300):
            return c
    h = steps(model, theta)
    points = [theta + s * h[i] * np.eye(len(theta))[i] for i in range(len(theta)) for s in (1.0, -1.0)]
    if not all(interior(model, t) for t in [theta] + points):
        return None
    if known is None:
        pts = [at(model, t) for t in points]
        center, plus, minus = at(model, theta), pts[0::2], pts[1::2]
    else:
        (center, plus), minus = known, [at(model, t) for t in points[1::2]]
    memo[:] = memo[-3:] + [Curvature(center, h, plus, minus)]
    return memo[-1]


def steps(model, theta) -> np.ndarray:
    """The difference step of each theta element: STEP of |theta| (of its natural scale, theta_scale,
    where an off-diagonal theta is near 0)."""
    return STEP * np.where(model.lower == 0, np.abs(theta), np.maximum(np.abs(theta), theta_scale(model)))


def forward(model, theta) -> tuple[DevianceGradient, list] | None:
    """(at(theta), at(theta + h_i e_i) for each i): a Hessian by forward differences of the gradient
    (k + 1 solutions, error ~STEP relative; Curvature's central ones need 2k + 1), or None where the
    closed form does not apply at these points (as curvature)."""
    from lmmcli.engine import wide

    theta = np.asarray(theta, dtype=float)
    if not (available(model) and len(theta)) or wide.applies(model):
        return None
    h = steps(model, theta)
    points = [theta + h[i] * np.eye(len(theta))[i] for i in range(len(theta))]
    if not all(interior(model, t) for t in [theta] + points):
        return None
    return at(model, theta), [at(model, t) for t in points]


def moved(model, c: Curvature, center: DevianceGradient) -> Curvature:
    """c with its center moved to center (at() of a nearby theta, a Newton step from c's): c's
    difference points, whose Hessian differs from the new theta's own by as little; memoised as its
    Curvature."""
    out = Curvature(center, c.h, c.plus, c.minus)
    memo = _MEMO.setdefault(model, [])
    memo[:] = memo[-3:] + [out]
    return out


def theta_scale(model) -> np.ndarray:
    """The natural size of each theta element (i, j): 1 / rms of its term's Z column i (T's row i has units
    1 / units(z_i)), so that difference steps near theta = 0 suit a covariate of any magnitude."""
    out = []
    for blk, rms in zip(model.blocks, model.z_rms()):
        out += [1.0 / rms[i] if rms[i] > 0 else 1.0 for i, _j in blk.theta_index()]
    return np.array(out)


class OriginalUnits:
    """A Curvature of the stored-units model seen from a model in original units (engine.fit.ScaledModel,
    or the PlsModel itself): the same points, each DevianceGradient mapped to the original units, and the
    original-units steps. Diagonal units only, where theta's map is linear."""

    def __init__(self, model):
        self.model, self.inner = model, getattr(model, "inner", model)
        self.units = self.inner.cp.units if self.inner is not model else None
        if self.units is not None:
            u = self.units
            self.J = np.array([1.0 / T[r, r] for blk, T in zip(self.inner.blocks, u.T) for r, _c in blk.theta_index()])
            self.ldx = 2.0 * float(np.linalg.slogdet(u.Wxx)[1]) if self.inner.p else 0.0

    @classmethod
    def of(cls, model) -> "OriginalUnits | None":
        """The view, or None when the units are not diagonal (or not positive)."""
        inner = getattr(model, "inner", model)
        units = inner.cp.units if inner is not model else None
        if units is not None and not all(np.array_equal(T, np.diag(np.diag(T))) and np.all(np.diag(T) > 0)
                                         for T in units.T):
            return None
        return cls(model)

    def curvature(self, theta) -> Curvature | None:
        """The model's Curvature at an original-units theta, in the original units."""
        stored = np.asarray(theta, dtype=float) if self.units is None else self.model.stored_theta(theta)
        c = curvature(self.inner, stored)
        if c is None or self.units is None:
            return c
        return Curvature(self.original(c.center), c.h / self.J, [self.original(g) for g in c.plus],
                         [self.original(g) for g in c.minus])

    def original(self, g: DevianceGradient) -> DevianceGradient:
        u, J = self.units, self.J
        w2 = u.wyy ** 2
        return DevianceGradient(u.theta_to_original(self.inner.blocks, g.theta), g.logdet_L, g.pwrss / w2,
                                g.logdet_RX - self.ldx, g.d_logdet_L * J, g.d_pwrss * J / w2,
                                g.d_logdet_RX * J, u.RX_to_original(g.RX),
                                g.criterion + u.objective_offset(self.inner.n, self.inner.reml))


def at(model, theta) -> DevianceGradient:
    """The deviance's pieces and their gradients at theta (stored units) for a model with `available`
    and `interior` theta."""
    sol, F = model.solve_factored(np.asarray(theta, dtype=float))
    W = _inverse_blocks(model, F)
    V = _fixed_blocks(model, F, sol.RX.T)
    d_L, d_RX, d_b = [], [], []
    for blk, T, Wk, Vk, uk in zip(model.blocks, F.Ts, W, V, sol.u):
        Ti = np.linalg.inv(T)
        GL = 2.0 * (blk.nlevels * np.eye(blk.p) - Wk) @ Ti
        GX = -2.0 * Vk @ Ti
        Gb = -2.0 * Ti.T @ (uk.T @ uk)
        for r, c in blk.theta_index():
            d_L.append(GL[c, r])
            d_RX.append(GX[c, r])
            d_b.append(Gb[r, c])
    return DevianceGradient(sol.theta, sol.logdet_L, sol.pwrss, sol.logdet_RX, np.array(d_L), np.array(d_b),
                            np.array(d_RX), sol.RX, sol.objective)


def _inverse_blocks(model, F) -> list[np.ndarray]:
    """W_k = sum over term k's levels of the diagonal blocks of A^-1 = (L L')^-1."""
    Li = kern.inv_lower(F.L11)
    if not model.rest:
        return [np.einsum("gki,gkj->ij", Li, Li)]
    if F.inverse is None:
        F.inverse = model.rest_part.inverse_diagonal(F.L22, F.Ts, Li[:, 0, 0] ** 2)
    v1, P = F.inverse
    p_diag = np.diagonal(P)
    out, pos = [np.array([[v1.sum()]])], 0
    for blk in model.rest:
        out.append(np.array([[p_diag[pos:pos + blk.nlevels].sum()]]))
        pos += blk.nlevels
    return out


def _fixed_blocks(model, F, Lxx) -> list[np.ndarray]:
    """V_k = sum over term k's levels of F_g F_g', F = L^-T RZX RX^-1 (zero without fixed effects)."""
    p = model.p
    if p == 0:
        return [np.zeros((blk.p, blk.p)) for blk in model.blocks]
    # RZX RX^-1 = (RX^-T RZX')': a lower-triangular solve by Lxx = RX' (p is small: numpy's solve)
    R1 = np.linalg.solve(Lxx, F.C1[:, :, :p].reshape(-1, p).T).T.reshape(model.l1, model.p1, p)
    R2 = np.linalg.solve(Lxx, F.C2[:, :p].T).T if model.rest else None
    x1, x2 = model.back_solve(F, R1, R2)
    out, pos = [np.einsum("gic,gjc->ij", x1, x1)], 0
    for blk in model.rest:
        k = blk.nlevels * blk.p
        xk = x2[pos:pos + k].reshape(blk.nlevels, blk.p, p)
        out.append(np.einsum("gic,gjc->ij", xk, xk))
        pos += k
    return out
