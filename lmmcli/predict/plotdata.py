"""What the plots show, as plain data: caterpillar intervals, group trajectories, residual diagnostics.

Everything statistical behind `lmm plot` is computed here (numpy/scipy, no matplotlib), so the
drawing code in plot.py and render_plot.py only draws. Intervals of the random effects are
estimate +/- z * conditional sd (lme4's ranef(condVar = TRUE), the sd merTools' plotREsim shows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmmcli.design.design import Evaluator, fixed_matrix, model_columns, offset_values, predictor_terms
from lmmcli.distributions import interval_z, norm_ppf
from lmmcli.errors import ModelSpecError, UsageError
from lmmcli.formula import names_in, Name, deparse
from lmmcli.io.frame import as_frame
from lmmcli.design.levels import value_labels
from lmmcli.results import FitResult

SMOOTH_POINTS = 20000   # the lowess of the residuals looks at most at this many (evenly spaced) rows
GRID_POINTS = 25   # points along each group's predicted line (curved when x enters through log(), ^, ...)


# -- caterpillar -------------------------------------------------------------------------------
@dataclass
class CaterpillarPanel:
    """One random term of one grouping factor: its levels sorted by estimate, with intervals."""

    group: str
    term: str
    levels: list[str]
    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float                       # confidence level of the intervals, e.g. 0.95

    @property
    def excludes_zero(self) -> np.ndarray:
        return (self.low > 0) | (self.high < 0)

    def __len__(self) -> int:
        return len(self.levels)


def caterpillar(result: FitResult, level: float = 0.95, aligned: bool = False) -> list[CaterpillarPanel]:
    """One panel per (grouping factor, term), levels sorted by their conditional mode; aligned: every panel of
    a grouping factor in the order of its first term's panel (lme4's dotplot), so a level sits on one row."""
    if not result.ngroups:
        raise ModelSpecError("the model has no random terms, so there are no random effects to plot")
    z = interval_z(level)
    keys = list(dict.fromkeys((re.group, re.term) for re in result.random_effects))
    panels = []
    for group, term in keys:
        rows = sorted((r for r in result.random_effects if (r.group, r.term) == (group, term)),
                      key=lambda r: r.estimate)
        est = np.array([r.estimate for r in rows])
        sd = np.array([r.std_error for r in rows])
        panels.append(CaterpillarPanel(group, term, [r.level for r in rows], est, est - z * sd,
                                       est + z * sd, level))
    return align_levels(panels) if aligned else panels


def align_levels(panels: list[CaterpillarPanel]) -> list[CaterpillarPanel]:
    """Each panel reordered to the level order of the first panel of its grouping factor."""
    first: dict[str, list[str]] = {}
    out = []
    for p in panels:
        order = first.setdefault(p.group, p.levels)
        pos = {lv: i for i, lv in enumerate(p.levels)}
        idx = np.array([pos[lv] for lv in order])
        out.append(CaterpillarPanel(p.group, p.term, list(order), p.estimate[idx], p.low[idx], p.high[idx],
                                    p.level))
    return out


# -- densities of the random effects ------------------------------------------------------------
@dataclass
class DensityPanel:
    """One random term's conditional modes: a Gaussian kernel density (R's density(), bw.nrd0) and the normal
    density N(0, sd^2) the model assumes, sd its estimated standard deviation."""

    group: str
    term: str
    values: np.ndarray
    grid: np.ndarray
    density: np.ndarray
    sd: float
    normal: np.ndarray


def bw_nrd0(x: np.ndarray) -> float:
    """R's bw.nrd0: 0.9 min(sd, IQR / 1.34) n^(-1/5) (Silverman's rule of thumb), never 0."""
    sd = float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
    q1, q3 = np.quantile(x, [0.25, 0.75])
    lo = min(sd, (q3 - q1) / 1.34)
    lo = lo or sd or abs(float(x[0])) or 1.0
    return 0.9 * lo * len(x) ** -0.2


def kernel_density(x: np.ndarray, grid: np.ndarray, bw: float) -> np.ndarray:
    """The Gaussian kernel density estimate of x at the grid points."""
    u = (grid[:, None] - x[None, :]) / bw
    return np.exp(-0.5 * u * u).sum(axis=1) / (len(x) * bw * np.sqrt(2 * np.pi))


def densities(result: FitResult, points: int = 256) -> list[DensityPanel]:
    """One panel per (grouping factor, term): the density of its conditional modes beside N(0, sd^2)."""
    if not result.ngroups:
        raise ModelSpecError("the model has no random terms, so there are no random effects to plot")
    sds = {(vc.group, vc.term): vc.sd for vc in result.variance_components}
    keys = list(dict.fromkeys((re.group, re.term) for re in result.random_effects))
    panels = []
    for group, term in keys:
        b = np.array([r.estimate for r in result.random_effects if (r.group, r.term) == (group, term)])
        sd = float(sds.get((group, term), np.std(b)))
        bw = bw_nrd0(b)
        half = max(np.abs(b).max() + 3 * bw, 3 * sd)
        grid = np.linspace(-half, half, points)
        normal = np.exp(-0.5 * (grid / sd) ** 2) / (sd * np.sqrt(2 * np.pi)) if sd > 0 else np.zeros(points)
        panels.append(DensityPanel(group, term, b, grid, kernel_density(b, grid, bw), sd, normal))
    return panels


# -- trajectories ------------------------------------------------------------------------------
@dataclass
class Trajectories:
    """The response over one numeric predictor, per group: data, predicted lines, the population line."""

    x_name: str
    y_name: str
    group: str                          # the grouping factor the lines belong to
    levels: list[str]
    x: list[np.ndarray]                 # per level, the data sorted by x
    y: list[np.ndarray]
    line_x: list[np.ndarray]            # per level, its predicted line over its own x range
    line_y: list[np.ndarray]
    pop_x: np.ndarray                   # the population line (fixed effects only) over all x
    pop_y: np.ndarray
    highlight: list[int]                # indices into levels drawn in bold (a seeded sample)
    held: list[str]                     # other predictors, held at their mean (numeric) or reference level


def numeric_predictors(fm) -> list[str]:
    """Columns that enter the fixed part as numeric variables (as themselves or inside one function of one
    column, e.g. poly(Time, 2) or log(dose)), in formula order."""
    spec = fm.design.spec
    out = []
    for term in fm.formula.fixed:
        for e in term.factors:
            cols = names_in(e)
            if spec.variables[deparse(e)].kind != "factor" and len(cols) == 1 and next(iter(cols)) not in out:
                out.append(next(iter(cols)))
    return out


def choose_x(fm, x: str | None) -> str:
    """The predictor on the x axis: the one asked for, else the first numeric one."""
    names = numeric_predictors(fm)
    if x is None:
        if not names:
            raise ModelSpecError(f"the fixed part of '{fm.formula.text}' has no numeric predictor to draw "
                                 "the response over", hint="`lmm plot fitted` needs one, e.g. y ~ time + (time | g)")
        return names[0]
    if x not in names:
        shown = ", ".join(names) or "none"
        raise UsageError(f"--x {x}: not a numeric predictor of the fixed part (numeric predictors: {shown})")
    return x


def _typical_row(used, spec, x_name: str) -> dict:
    """Values for the other columns on a prediction grid: numeric ones at their mean, factors at the reference."""
    out = {}
    for col in used.columns:
        if col == x_name:
            continue
        info = spec.variables.get(deparse(Name(col)))
        if info is not None and info.kind == "factor":
            labels = value_labels(used[col])
            out[col] = used[col].iloc[int(np.argmax(labels == info.levels[0]))]
        elif info is None and used[col].dtype.kind in "iuf" or info is not None and info.kind == "numeric":
            out[col] = float(used[col].mean())    # also a column seen only inside poly(), offset(), ...
        else:
            out[col] = used[col].iloc[0]
    return out


def _grid_frame(used, spec, x_name: str, xs: np.ndarray):
    """A data frame with x = xs and every other column at its typical value."""
    import pandas as pd

    typical = _typical_row(used, spec, x_name)
    grid = pd.DataFrame({col: [val] * len(xs) for col, val in typical.items()})
    grid[x_name] = xs
    return grid


def _random_columns(fm, grid, group: str) -> list[tuple[int, np.ndarray]]:
    """(block index, Z columns on the grid) for each random term of `group`."""
    spec = fm.design.spec
    ev = Evaluator.for_spec(spec, grid)
    out = []
    for rt in fm.formula.random:
        if rt.group_label != group:
            continue
        names, Z = model_columns(rt.terms, rt.intercept, spec, ev)
        k = next(i for i, blk in enumerate(fm.blocks) if blk.group == group and list(blk.terms) == names)
        out.append((k, Z))
    return out


@dataclass
class Coefficients:
    """What the lines are drawn from: beta, the conditional modes per block (levels x terms), and the
    inverse link that puts X beta + Z b on the response scale (None: the identity, a linear model)."""

    beta: np.ndarray
    b: list
    linkinv: object = None

    def response(self, eta: np.ndarray) -> np.ndarray:
        return eta if self.linkinv is None else self.linkinv(eta)


def _group_lines(fm, coefs: Coefficients, used, x_name: str, xv: np.ndarray, codes: np.ndarray, group: str):
    """Each level's predicted line X beta + Z b over the level's own x range (its random terms only)."""
    nlev = len(fm.blocks[0].levels)
    lo = np.array([xv[codes == g].min() for g in range(nlev)])
    hi = np.array([xv[codes == g].max() for g in range(nlev)])
    t = np.linspace(0.0, 1.0, GRID_POINTS)
    xs = (lo[:, None] + (hi - lo)[:, None] * t[None, :]).ravel()
    grid = _grid_frame(used, fm.design.spec, x_name, xs)
    line = fixed_matrix(fm.design.spec, grid) @ coefs.beta + offset_values(fm.design.spec, grid)
    rows_level = np.repeat(np.arange(nlev), GRID_POINTS)
    for k, Z in _random_columns(fm, grid, group):
        line += np.einsum("ij,ij->i", Z, coefs.b[k][rows_level])
    return list(xs.reshape(nlev, -1)), list(coefs.response(line).reshape(nlev, -1))


def trajectories(fm, df, x: str | None = None, n_highlight: int = 6, seed: int = 0,
                 groups: list[str] | None = None, coefs: Coefficients | None = None) -> Trajectories:
    """The data and predicted lines per level of the largest grouping factor, and the population line; the
    highlighted groups are `groups` (levels by name) when given, else a seeded sample of n_highlight.
    coefs: a GLMM's (lines on the response scale, through the inverse link); default the linear fit's."""
    coefs = coefs or Coefficients(fm.sol.beta, fm.sol.b)
    if not fm.blocks:
        raise ModelSpecError("the model has no random terms, so there are no groups to draw")
    x_name = choose_x(fm, x)
    blk = fm.blocks[0]
    used = as_frame(df).select(sorted(fm.formula.columns())).take(fm.design.rows).to_pandas()
    xv = used[x_name].to_numpy(dtype=float)
    order = [np.flatnonzero(blk.codes == g) for g in range(blk.nlevels)]
    order = [idx[np.argsort(xv[idx], kind="stable")] for idx in order]
    line_x, line_y = _group_lines(fm, coefs, used, x_name, xv, blk.codes, blk.group)
    pop_x = np.linspace(xv.min(), xv.max(), GRID_POINTS * 4)
    pop_grid = _grid_frame(used, fm.design.spec, x_name, pop_x)
    pop_y = coefs.response(fixed_matrix(fm.design.spec, pop_grid) @ coefs.beta + offset_values(fm.design.spec, pop_grid))
    pick = chosen_groups(blk, groups) if groups else sampled_groups(blk.nlevels, n_highlight, seed)
    return Trajectories(x_name, fm.design.response, blk.group, list(blk.levels),
                        [xv[i] for i in order], [fm.design.y[i] for i in order], line_x, line_y,
                        pop_x, pop_y, pick, _held(fm, x_name))


def sampled_groups(nlevels: int, n: int, seed: int) -> list[int]:
    """A seeded sample of n level indices, in level order."""
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(nlevels, size=min(max(n, 0), nlevels), replace=False))


def chosen_groups(blk, names) -> list[int]:
    """The indices of the named levels, in the order given; an unknown name is an error naming the levels."""
    index = {str(lv): i for i, lv in enumerate(blk.levels)}
    unknown = [n for n in names if n not in index]
    if unknown:
        shown = ", ".join(map(str, blk.levels[:8])) + (", ..." if blk.nlevels > 8 else "")
        raise ModelSpecError(f"--groups: {', '.join(repr(u) for u in unknown)} is not a level of {blk.group}",
                             hint=f"levels of {blk.group}: {shown}")
    return list(dict.fromkeys(index[n] for n in names))


def _held(fm, x_name: str) -> list[str]:
    """Predictors other than x (fixed part and random slopes), in formula order."""
    exprs = {deparse(e): e for term in predictor_terms(fm.formula) for e in term.factors}
    return [lb for lb, e in exprs.items() if names_in(e) != {x_name}]   # poly(x, 2) moves with x


# -- diagnostics -------------------------------------------------------------------------------
@dataclass
class QQ:
    """A normal QQ plot: sorted sample against normal quantiles, with R's qqline (through the quartiles)."""

    title: str
    theoretical: np.ndarray
    sample: np.ndarray
    intercept: float
    slope: float


@dataclass
class Diagnostics:
    """Residuals against fitted values (raw and standardized, residual / sigma, with a lowess smoother of the
    standardized ones), and QQ plots of the residuals and of each random term."""

    response: str
    fitted: np.ndarray
    residuals: np.ndarray
    qq: list[QQ]
    std_residuals: np.ndarray | None = None
    smooth_x: np.ndarray | None = None
    smooth_y: np.ndarray | None = None


def lowess(x: np.ndarray, y: np.ndarray, span: float = 2 / 3, points: int = 60):
    """A locally weighted linear fit of y on x (tricube weights over the nearest span * n points, as lowess
    without its robustness steps), evaluated at `points` x values over the range: (grid, smooth)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) > SMOOTH_POINTS:            # a smoother's shape needs no million points: an even subsample
        keep = np.linspace(0, len(x) - 1, SMOOTH_POINTS).astype(np.int64)
        x, y = x[keep], y[keep]
    grid = np.linspace(x.min(), x.max(), points) if len(x) else x
    k = max(int(np.ceil(span * len(x))), min(len(x), 3))
    out = np.empty(len(grid))
    for i, g in enumerate(grid):
        d = np.abs(x - g)
        h = np.partition(d, k - 1)[k - 1] if k <= len(d) else d.max()
        w = np.clip(1 - (d / (h if h > 0 else 1.0)) ** 3, 0, None) ** 3
        sw, swx, swy = w.sum(), (w * x).sum(), (w * y).sum()
        mx, my = swx / sw, swy / sw
        vx = (w * (x - mx) ** 2).sum()
        slope = (w * (x - mx) * (y - my)).sum() / vx if vx > 0 else 0.0
        out[i] = my + slope * (g - mx)
    return grid, out


def ppoints(n: int) -> np.ndarray:
    """R's ppoints(n): (i - a) / (n + 1 - 2a), a = 3/8 for n <= 10, else 1/2."""
    a = 0.375 if n <= 10 else 0.5
    return (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)


def normal_qq(values, title: str) -> QQ:
    """QQ data for `values` and R's qqline: the line through the first and third quartiles."""
    sample = np.sort(np.asarray(values, dtype=float))
    theo = norm_ppf(ppoints(len(sample)))
    q1, q3 = np.quantile(sample, [0.25, 0.75])
    z1, z3 = norm_ppf([0.25, 0.75])
    slope = (q3 - q1) / (z3 - z1)
    return QQ(title, theo, sample, float(q1 - slope * z1), float(slope))


def diagnostics(fm) -> Diagnostics:
    """Response residuals y - (X beta + Z b) (lme4's resid()), and the QQ data."""
    fitted = fm.fitted()
    resid = fm.design.y - fitted
    qq = [normal_qq(resid, "Residuals")]
    for blk, b in zip(fm.blocks, fm.sol.b):
        qq.extend(normal_qq(b[:, j], f"{blk.group}: {term}") for j, term in enumerate(blk.terms))
    std = resid / fm.sol.sigma
    sx, sy = lowess(fitted, std)
    return Diagnostics(fm.design.response, fitted, resid, qq, std, sx, sy)
