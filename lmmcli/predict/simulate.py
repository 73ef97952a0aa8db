"""Simulated data: from a specification (random intercepts, optional random slopes), or from a fitted model.

From a specification, with G groups of m rows each (n = G m) and predictors x_1..x_k:
    x_ij ~ N(0, 1) independently,
    (b0_g, b1_g) ~ N(0, [[sd_group^2, cor sd_group sd_slope], [., sd_slope^2]]),
    y = beta_0 + sum_j beta_j x_j + b0_g + b1_g x_1 + e,   e ~ N(0, sd_resid^2).
The random slope, if any, is on the first predictor named in --fixed. Draws come from numpy's
default_rng(seed) in a fixed order (x, then b, then e), so a seed always gives the same data.

From a fitted model (lme4's simulate(), use.u = FALSE): new spherical random effects u ~ N(0, I),
b = sigma T u per level, and y* = X beta + Z b + sigma e, for each of nsim simulations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from lmmcli.errors import UsageError

_TOKEN = re.compile(r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)"
                    r"|(?P<op>[-+*]))")


class FixedSpecError(UsageError):
    """--fixed cannot be read; `text` and `span` point at the offending characters (for the caret)."""

    def __init__(self, message: str, text: str, span: tuple[int, int], hint: str | None = None):
        super().__init__(message, hint or 'write it as an intercept plus coefficient*name terms, e.g. "2 + 0.5*x"')
        self.text = text
        self.span = span


@dataclass
class FixedSpec:
    """beta_0 and the coefficients of the named predictors, in the order written."""

    intercept: float = 0.0
    coefs: dict[str, float] = field(default_factory=dict)


# -- parsing --fixed without eval --------------------------------------------------------------
def _tokens(text: str) -> list[tuple[str, str, tuple[int, int]]]:
    """(kind, text, span) tokens; anything else is an error pointing at it."""
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise FixedSpecError(f"unexpected character '{text[pos:].lstrip()[0]}' in --fixed", text,
                                 (len(text) - len(text[pos:].lstrip()),) * 2)
        kind = m.lastgroup
        out.append((kind, m.group(kind), m.span(kind)))
        pos = m.end()
    return out


def _term(toks, i, text):
    """One signed term starting at toks[i]: (name or None, coefficient, next index)."""
    sign = 1.0
    while i < len(toks) and toks[i][0] == "op" and toks[i][1] in "+-":
        sign = -sign if toks[i][1] == "-" else sign
        i += 1
    if i >= len(toks):
        raise FixedSpecError("--fixed ends where a term was expected", text, (len(text), len(text) + 1))
    kind, val, span = toks[i]
    if kind == "op":
        raise FixedSpecError(f"unexpected '{val}' in --fixed", text, span)
    if i + 1 < len(toks) and toks[i + 1][1] == "*":
        return _product(toks, i, text, sign)
    return (val, sign, i + 1) if kind == "name" else (None, sign * float(val), i + 1)


def _product(toks, i, text, sign):
    """number*name or name*number."""
    k1, v1, s1 = toks[i]
    k2, v2, s2 = toks[i + 2] if i + 2 < len(toks) else ("end", "", (len(text), len(text) + 1))
    if {k1, k2} != {"num", "name"}:
        raise FixedSpecError("each product in --fixed must be a number times a name", text, (s1[0], s2[1]))
    num, name = (v1, v2) if k1 == "num" else (v2, v1)
    return name, sign * float(num), i + 3


def parse_fixed(text: str) -> FixedSpec:
    """'2 + 0.5*x - 0.3*z' -> FixedSpec(2.0, {'x': 0.5, 'z': -0.3}); a bare name has coefficient 1."""
    toks = _tokens(text)
    if not toks:
        raise FixedSpecError("--fixed is empty", text, (0, 1))
    spec, i = FixedSpec(), 0
    while i < len(toks):
        if i > 0:
            if toks[i][0] != "op" or toks[i][1] not in "+-":
                raise FixedSpecError(f"expected '+' or '-' before '{toks[i][1]}'", text, toks[i][2])
        start = toks[i][2]
        name, coef, i = _term(toks, i, text)
        if name is None:
            spec.intercept += coef
        elif name in spec.coefs:
            raise FixedSpecError(f"'{name}' appears twice in --fixed", text, start)
        else:
            spec.coefs[name] = coef
    return spec


# -- from a specification ----------------------------------------------------------------------
@dataclass
class SimSpec:
    """The design and the true parameters of a simulation."""

    groups: int
    per_group: int
    fixed: FixedSpec
    sd_group: float
    sd_resid: float
    sd_slope: float = 0.0
    cor: float = 0.0
    group_col: str = "group"
    response: str = "y"


def check_spec(s: SimSpec) -> None:
    """Counts positive, sds non-negative, |cor| <= 1, a slope only with a predictor, names distinct."""
    if s.groups < 1 or s.per_group < 1:
        raise UsageError(f"--groups and --per-group must be at least 1 (got {s.groups} and {s.per_group})")
    for opt, v in (("--sd-group", s.sd_group), ("--sd-resid", s.sd_resid), ("--sd-slope", s.sd_slope)):
        if not np.isfinite(v) or v < 0:
            raise UsageError(f"{opt} must be a non-negative number, got {v}")
    if not -1 <= s.cor <= 1:
        raise UsageError(f"--cor must be between -1 and 1, got {s.cor}")
    if s.cor != 0 and (s.sd_slope == 0 or s.sd_group == 0):
        raise UsageError("--cor needs both --sd-group and --sd-slope above 0 (it correlates intercepts and slopes)")
    if s.sd_slope > 0 and not s.fixed.coefs:
        raise UsageError("--sd-slope needs a predictor in --fixed (the slope is on its first name), e.g. \"2 + 0.5*x\"")
    clash = {s.group_col, s.response} & set(s.fixed.coefs)
    if clash:
        raise UsageError(f"--fixed uses the name '{clash.pop()}', which is taken by the response or the group column")


def group_cov_factor(s: SimSpec) -> np.ndarray:
    """Lower-triangular L with L L' = the covariance of (intercept, slope); exact also for |cor| = 1."""
    return np.array([[s.sd_group, 0.0],
                     [s.cor * s.sd_slope, s.sd_slope * np.sqrt(1.0 - s.cor ** 2)]])


def simulate_spec(s: SimSpec, seed: int | None = None) -> dict[str, np.ndarray]:
    """The simulated columns: the predictors, the response and the group (labels 1..G)."""
    check_spec(s)
    rng = np.random.default_rng(seed)
    n, names = s.groups * s.per_group, list(s.fixed.coefs)
    g = np.repeat(np.arange(s.groups), s.per_group)
    X = rng.standard_normal((n, len(names)))
    b = rng.standard_normal((s.groups, 2)) @ group_cov_factor(s).T
    y = s.fixed.intercept + X @ np.array([s.fixed.coefs[k] for k in names]) + b[g, 0]
    if names:
        y = y + b[g, 1] * X[:, 0]
    y = y + s.sd_resid * rng.standard_normal(n)
    cols = {name: X[:, j] for j, name in enumerate(names)}
    cols[s.response] = y
    cols[s.group_col] = g + 1
    return cols


# -- from a fitted model -----------------------------------------------------------------------
def simulate_model(fm, nsim: int, seed: int | None = None, use_u: bool = False) -> np.ndarray:
    """(n, nsim) new responses for the fitting rows (lme4's simulate(); use_u keeps the fitted b); with the
    offset and, under prior weights, residual variance sigma^2 / w."""
    from lmmcli.engine.pls import split_theta

    if nsim < 1:
        raise UsageError(f"--nsim must be at least 1, got {nsim}")
    rng = np.random.default_rng(seed)
    sigma, n = fm.sol.sigma, fm.design.n
    mu = fm.design.X @ fm.sol.beta + fm.offset()
    sims = np.repeat(mu[:, None], nsim, axis=1)
    if use_u:
        sims += fm.z_times_b()[:, None]
    else:
        for blk, T in zip(fm.blocks, split_theta(fm.blocks, fm.sol.theta)):
            b = sigma * rng.standard_normal((nsim, blk.nlevels, blk.p)) @ T.T
            sims += np.einsum("ij,sij->is", blk.Z, b[:, blk.codes, :])
    noise = sigma * rng.standard_normal((n, nsim))
    if fm.design.weights is not None:     # residual variance sigma^2 / w, as lme4's simulate()
        noise /= np.sqrt(fm.design.weights)[:, None]
    return sims + noise


def sim_columns(sims: np.ndarray, rows: np.ndarray, n_input: int, taken=()) -> dict[str, np.ndarray]:
    """sim_1..sim_N over all input rows (NaN where a row was dropped for missing values)."""
    out = {}
    for j in range(sims.shape[1]):
        name = f"sim_{j + 1}"
        if name in taken:
            raise UsageError(f"the data already has a column '{name}'", hint="rename it before simulating")
        col = np.full(n_input, np.nan)
        col[rows] = sims[:, j]
        out[name] = col
    return out
