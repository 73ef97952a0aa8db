"""Well-conditioned units for fits with extreme numbers, and the exact map back to the original ones.

The model y = X beta + Z b + e is fitted in stored units (crossprod.py)

    [X_s y_s] = [X y] W,    Z_k,s = Z_k T_k,

W = [[Wxx, wxy], [0, wyy]] (X_s uses only X; y_s = X wxy + wyy y, a shift through X's column space)
and T_k upper triangular. The stored model is the same model in other units:

    beta = (Wxx beta_s - wxy) / wyy,   b_k = T_k b_k,s / wyy,   sigma = sigma_s / wyy,
    Lambda_k Lambda_k' = T_k Lambda_k,s Lambda_k,s' T_k'  (Lambda_k: the lower factor of that, by QR),
    RX' RX = Wxx^-T RX_s' RX_s Wxx^-1,   logdet_L unchanged,
    objective = objective_s - 2 dof log wyy - (REML) 2 log |det Wxx|   (dof = n - p for REML, n for ML).

Chosen units (choose_scaling, from the rows, before any product is formed, so that no digit is lost
to cancellation): y_s = (y - mean) / sd when X's column space holds the constant (else y / rms),
X_s = X / rms per column, and per random term Z_k / rms; a correlated term with an intercept has
its other columns centred and scaled, (z - mean(z)) / sd(z), the way scale(age) would (issue 12:
a slope on age in the hundreds gets theta of order 1 and uncorrelated from the intercept, so the
optimizer reaches the optimum lme4 reaches only after scale(age)). The likelihood is invariant,
and everything is mapped back exactly, so results are on the original scale. Units are used only
when some scale is far from 1: moderate data takes the plain path, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmmcli.engine.kernels import _is_ones

FAR = 1e3          # a y or X scale outside [1/FAR, FAR], or a shift beyond FAR spreads, triggers rescaling
FAR_Z = 30.0       # a random term's column scale outside [1/FAR_Z, FAR_Z] does too (slopes on x ~ 100s)
SHIFT_TOL = 1e-8   # how exactly X e must reproduce the constant column


@dataclass(frozen=True)
class Scaling:
    """Stored units: [X y]_s = [X y] W, Z_k,s = Z_k T_k (see the module docstring)."""

    W: np.ndarray                  # (m, m), W[p, :p] = 0
    T: tuple                       # per random term, (p_k, p_k) upper triangular

    @property
    def p(self) -> int:
        return len(self.W) - 1

    @property
    def wyy(self) -> float:
        return float(self.W[-1, -1])

    @property
    def Wxx(self) -> np.ndarray:
        return self.W[:-1, :-1]

    def same(self, other: "Scaling") -> bool:
        """The same units (for merging records)."""
        return np.array_equal(self.W, other.W) and len(self.T) == len(other.T) and \
            all(np.array_equal(a, b) for a, b in zip(self.T, other.T))

    def for_terms(self, ks) -> "Scaling":
        """The units of a record with only random terms ks."""
        return Scaling(self.W, tuple(self.T[k] for k in ks))

    # -- theta ------------------------------------------------------------------------------------
    def theta_to_original(self, terms, theta_s) -> np.ndarray:
        """theta of Lambda_k, the lower factor of T_k Lambda_k,s (Lambda_k,s T_k')."""
        return _theta_of(terms, [lower_factor(T @ L)[0] for T, L in zip(self.T, _split(terms, theta_s))])

    def theta_to_scaled(self, terms, theta) -> np.ndarray:
        """The inverse of theta_to_original: Lambda_k,s, the lower factor of T_k^-1 Lambda_k."""
        return _theta_of(terms, [lower_factor(np.linalg.solve(T, L))[0]
                                 for T, L in zip(self.T, _split(terms, theta))])

    # -- the rest of a solution -------------------------------------------------------------------
    def objective_offset(self, n: int, reml: bool) -> float:
        """objective - objective_s."""
        p = self.p
        out = -2.0 * (n - p if reml else n) * np.log(self.wyy)
        if reml and p:
            out -= 2.0 * float(np.linalg.slogdet(self.Wxx)[1])
        return float(out)

    def beta_to_original(self, beta_s) -> np.ndarray:
        return (self.Wxx @ beta_s - self.W[:-1, -1]) / self.wyy

    def RX_to_original(self, RX_s) -> np.ndarray:
        """An upper-triangular RX with RX'RX = Wxx^-T RX_s'RX_s Wxx^-1 (positive diagonal)."""
        if self.p == 0:
            return RX_s.copy()
        Wxx = self.Wxx
        if _is_diagonal(Wxx):
            return RX_s / np.diag(Wxx)[None, :]
        R = np.linalg.qr(np.linalg.solve(Wxx.T, RX_s.T).T, mode="r")
        return R * np.where(np.diag(R) < 0, -1.0, 1.0)[:, None]

    def solution_to_original(self, sol, terms, n: int):
        """A stored-units PlsSolution in the original units (formulas in the module docstring)."""
        from lmmcli.engine.pls import PlsSolution

        w = self.wyy
        Lams = [lower_factor(T @ L) for T, L in zip(self.T, _split(terms, sol.theta))]
        theta = _theta_of(terms, [L for L, _ in Lams])
        b = [bk @ T.T / w for bk, T in zip(sol.b, self.T)]
        u = [uk @ Q.T / w for uk, (_, Q) in zip(sol.u, Lams)]
        cond_var = None
        if sol.cond_var is not None:
            cond_var = [T[None] @ V @ T.T[None] / w / w for V, T in zip(sol.cond_var, self.T)]
        ldx = 2.0 * float(np.linalg.slogdet(self.Wxx)[1]) if self.p else 0.0
        return PlsSolution(theta, self.beta_to_original(sol.beta), b, u, sol.pwrss / w / w, sol.logdet_L,
                           sol.logdet_RX - ldx, self.RX_to_original(sol.RX), sol.sigma / w,
                           sol.objective + self.objective_offset(n, sol.reml), sol.reml, cond_var)


def lower_factor(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(L, Q): L lower triangular with a non-negative diagonal and Q orthogonal, A = L Q (so L L' = A A').

    From the QR factorisation A' = Q~ R: A = R' Q~'. A lower-triangular A (T_k diagonal) is kept as it is.
    """
    if np.allclose(np.triu(A, 1), 0.0, rtol=0.0, atol=0.0):
        s = np.where(np.diag(A) < 0, -1.0, 1.0)
        return A * s[None, :], np.diag(s)
    Qt, R = np.linalg.qr(A.T)
    s = np.where(np.diag(R) < 0, -1.0, 1.0)
    return R.T * s[None, :], (Qt * s[None, :]).T


def _is_diagonal(A: np.ndarray) -> bool:
    return not np.any(A - np.diag(np.diag(A)))


def _split(terms, theta) -> list[np.ndarray]:
    from lmmcli.engine.pls import split_theta

    return split_theta(terms, np.asarray(theta, dtype=float))


def _theta_of(terms, Ls) -> np.ndarray:
    """theta from the lower-triangular factors T_k (the inverse of split_theta)."""
    out = [L[i, j] for t, L in zip(terms, Ls) for i, j in t.theta_index()]
    return np.array(out, dtype=float)


# -- choosing the units, from the rows ---------------------------------------------------------------
def _rms(A: np.ndarray) -> np.ndarray:
    """Root mean square of each column; 1 for an all-zero column."""
    # einsum: no n x p temporary (np.square's cost 0.3 s at 1e7 rows)
    r = np.sqrt(np.einsum("ij,ij->j", A, A) / len(A)) if len(A) else np.ones(A.shape[1])
    return np.where((r > 0) & np.isfinite(r), r, 1.0)


def _finite_scale(A: np.ndarray) -> np.ndarray:
    """Each column's largest magnitude (a power of two, so dividing by it is exact), 1 for zero columns.

    rms would overflow for values beyond ~1e154; this never does.
    """
    # (max and -min rather than max(abs(A)): no n x p temporary, 600 MB at 15,000 x 5,000)
    mx = np.maximum(A.max(axis=0), -A.min(axis=0)) if len(A) else np.ones(A.shape[1])
    ok = (mx > 0) & np.isfinite(mx)
    return np.where(ok, np.exp2(np.floor(np.log2(np.where(ok, mx, 1.0)))), 1.0)


def _safe_rms(A: np.ndarray) -> np.ndarray:
    """rms of each column, computed after dividing by its largest magnitude (no overflow or underflow)."""
    s = _finite_scale(A)
    return _rms(A / s) * s


def _constant_weights(X: np.ndarray) -> np.ndarray | None:
    """e with X e = 1 when the constant is in the column space of X (an intercept, or all levels of a factor)."""
    if X.shape[1] == 0:
        return None
    e = np.linalg.lstsq(X, np.ones(len(X)), rcond=None)[0]
    return e if np.max(np.abs(X @ e - 1.0)) < SHIFT_TOL else None


def _far(scales, far: float | None = None) -> bool:
    """Any scale outside [1/far, far] (far: FAR by default)."""
    far = FAR if far is None else far
    scales = np.asarray(scales, dtype=float)
    return bool(np.any((scales > far) | (scales < 1 / far)))


def _response_units(y: np.ndarray, shifted: bool) -> tuple[float, float]:
    """(m, c): y's mean and sd when X can absorb a shift, else 0 and y's root mean square."""
    if shifted:
        s = float(_finite_scale(y[:, None])[0])
        ys = y / s
        m, c = float(np.mean(ys)) * s, float(np.std(ys)) * s
    else:
        m, c = 0.0, float(_safe_rms(y[:, None])[0])
    return m, (c if c > 0 and np.isfinite(c) else 1.0)


def _y_far(m: float, c: float) -> bool:
    return _far([c]) or abs(m) > FAR * c


def _term_units(blk, dz: np.ndarray) -> np.ndarray:
    """T_k: centre and scale the non-intercept columns of a correlated term with an intercept, else 1 / rms."""
    Z = blk.Z
    if getattr(blk, "correlated", True) and blk.Z.shape[1] > 1 and _is_ones(Z[:, 0]):
        s = _finite_scale(Z)
        mu = np.mean(Z / s, axis=0) * s
        sd = np.std(Z / s, axis=0) * s
        sd = np.where((sd > 0) & np.isfinite(sd), sd, 1.0)
        T = np.diag(1.0 / sd)
        T[0, 0] = 1.0
        T[0, 1:] = -mu[1:] / sd[1:]
        return T
    return np.diag(1.0 / dz)


def choose_scaling(X: np.ndarray, y: np.ndarray, blocks) -> Scaling | None:
    """The stored units this problem needs, or None when every scale is moderate (the usual case).

    Each part is rescaled only where it is far from moderate: y (scale, and shift when X holds the
    constant), X (per-column scales), each random term (T_k). A part left alone keeps its coordinates,
    so theta is the same in stored and original units when only y is extreme (Reaction * 1e-9).
    """
    p = X.shape[1]
    dx = _safe_rms(X)
    dz = [_safe_rms(blk.Z) for blk in blocks]
    x_far = _far(dx)
    z_far = [_far(d, FAR_Z) for d in dz]
    # Whether X holds the constant (a least-squares solve over all n rows: 1 s at 1e7 rows) matters
    # only for y's units; when y is moderate either way no shift is needed.
    y_maybe = _y_far(*_response_units(y, True)) or _y_far(*_response_units(y, False))
    if not (x_far or any(z_far) or y_maybe):
        return None
    W = np.eye(p + 1)
    if x_far:
        W[:p, :p] = np.diag(1.0 / dx)
    if y_maybe:
        e = _constant_weights(X / dx) if len(y) > 1 else None
        m, c = _response_units(y, e is not None)
        if _y_far(m, c):
            if e is not None:
                W[:p, p] = -m * (e / dx) / c
            W[p, p] = 1.0 / c
    T = tuple(_term_units(blk, d) if far else np.eye(len(d)) for blk, d, far in zip(blocks, dz, z_far))
    if np.array_equal(W, np.eye(p + 1)) and not any(z_far):
        return None
    return Scaling(W, T)


def response_units(X: np.ndarray, y: np.ndarray, terms) -> Scaling:
    """Units that store y standardized and leave X and Z as they are (for refits of a plain record).

    A plain record keeps y's mean in its products, and the objective's rounding noise grows with it
    (measured, sleepstudy's Reaction: 3e-11 against 2e-12 with y standardized); refits from a nearby
    optimum stop only to within that noise, so they agree across y's units only when y is stored alike.
    """
    p = X.shape[1]
    e = _constant_weights(X) if len(y) > 1 else None
    m, c = _response_units(np.asarray(y, dtype=float), e is not None)
    W = np.eye(p + 1)
    if e is not None:
        W[:p, p] = -m * e / c
    W[p, p] = 1.0 / c
    return Scaling(W, tuple(np.eye(t.p) for t in terms))


def fixed_at(cp, j: int, x: float):
    """The record of the model with beta_j fixed at x (original units): X_j moved into the offset.

    In original units the new [X' y'] = [X y] M (X_j dropped, y' = y - x X_j); in stored units that is
    [X y]_s W^-1 M W', with W' = W without row and column j (so the other columns keep their units).
    """
    m = cp.m
    keep = [k for k in range(m) if k != j]
    M = np.eye(m)[:, keep]
    M[j, -1] = -x
    names = [cp.columns[k] for k in keep]
    if cp.units is None:
        return cp.recombined(M, names)
    W2 = cp.units.W[np.ix_(keep, keep)]
    return cp.recombined(np.linalg.solve(cp.units.W, M @ W2), names, Scaling(W2, cp.units.T))


# -- units for a record taken as it is (e.g. from a database's GROUP BY) ---------------------------
def rescaled(cp):
    """A record stored as it is (units None) in diagonal units when some column's scale is far from 1.

    Only scales, from the record's own diagonals (rms = sqrt(sum x^2 / n)): a shift after the
    products would cancel digits, so it is left to choose_scaling, which sees the rows. Returns cp
    itself when it has units already or every scale is moderate.
    """
    if cp.units is not None or cp.n == 0:
        return cp
    p = cp.p
    dxy = _positive(np.sqrt(np.diag(cp.XyXy) / cp.n))
    dz = [_positive(np.sqrt(np.diag(cp.term_gram(k)) / cp.n)) for k in range(len(cp.terms))]
    far_x, far_y = _far(dxy[:p]), _far(dxy[p:])
    far_z = [_far(d, FAR_Z) for d in dz]
    if not (far_x or far_y or any(far_z)):
        return cp
    w = np.ones(p + 1)
    if far_x:
        w[:p] = 1.0 / dxy[:p]
    if far_y:
        w[p] = 1.0 / dxy[p]
    t = [1.0 / d if far else np.ones(len(d)) for d, far in zip(dz, far_z)]
    return with_diagonal_units(cp, w, t)


def _positive(v: np.ndarray) -> np.ndarray:
    return np.where((v > 0) & np.isfinite(v), v, 1.0)


def with_diagonal_units(cp, w: np.ndarray, t: list[np.ndarray]):
    """cp's record with [X y] columns times w and term k's Z columns times t[k] (all positive)."""
    from dataclasses import replace

    Z1 = None
    D1, ZtXy1 = cp.D1, cp.ZtXy1
    if cp.terms:
        Z1 = t[0]
        D1 = D1 * np.outer(Z1, Z1)[None]
        ZtXy1 = ZtXy1 * Z1[None, :, None] * w[None, None, :]
    A21, A22, A2Xy = cp.A21, cp.A22, cp.A2Xy
    if len(cp.terms) > 1:
        import scipy.sparse as sp

        tr = np.concatenate([np.tile(tk, term.nlevels) for tk, term in zip(t[1:], cp.terms[1:])])
        t1 = np.tile(Z1, cp.terms[0].nlevels)
        A21 = (sp.diags(tr) @ A21 @ sp.diags(t1)).tocsr()
        A22 = (sp.diags(tr) @ A22 @ sp.diags(tr)).tocsr()
        A2Xy = tr[:, None] * A2Xy * w[None, :]
    units = Scaling(np.diag(w), tuple(np.diag(tk) for tk in t))
    return replace(cp, XyXy=cp.XyXy * np.outer(w, w), D1=D1, ZtXy1=ZtXy1, A21=A21, A22=A22, A2Xy=A2Xy,
                   col_sum=cp.col_sum * w, col_min=cp.col_min * w, col_max=cp.col_max * w, units=units)
