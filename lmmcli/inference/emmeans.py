"""Estimated marginal means and their pairwise contrasts, as emmeans 1.8 computes them for lmer fits.

Reference grid (emmeans' ref_grid): every combination of the levels of the factors in the fixed part,
each covariate at its mean over the fitting rows (a function of a covariate, log(x), is evaluated at
the covariate's mean). The EMM of a combination of the `specs` factors (within a `by` group) is the
equally weighted mean of the grid's predictions over the other factors: L beta with L the mean of the
grid's rows of X. Standard errors sqrt(L V L') use pbkrtest's adjusted V for Kenward-Roger (emmeans'
default for lmer fits) and the plain V for Satterthwaite; each row and each contrast gets its own df
(pbkrtest's Lb_ddf, lmerTest's contest1D).

Pairwise contrasts: every pair i < j of the spec combinations in grid order (first factor fastest),
within each `by` group, labelled as emmeans labels them: levels of several factors joined by a space,
a factor whose levels all read as numbers gets its name in front ("B1 - B2"), and a label containing
-, +, / or * is put in parentheses ("ctrl - (low-dose)"). P-values are adjusted within each by group:
tukey (studentized range of the family's k means, each contrast with its own df, as emmeans; a family
of one contrast is reported unadjusted, "none"), holm, bonferroni or none.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from lmmcli.design.design import fixed_matrix
from lmmcli.distributions import t_ppf, t_two_sided_p, tukey_sf
from lmmcli.errors import ModelSpecError, UsageError
from lmmcli.formula import Name, deparse, names_in
from lmmcli.inference.anova import df_pieces
from lmmcli.inference.hypotheses import fitting_frame
from lmmcli.io.frame import Frame
from lmmcli.results import SCHEMA_VERSION, clean

ADJUSTS = ("tukey", "holm", "bonferroni", "none")
DF_METHODS = ("kenward-roger", "satterthwaite")
PAREN_CHARS = "-+/*"          # emmeans' option parens = "-|\\+|\\/|\\*"


@dataclass
class Emm:
    """One estimated marginal mean."""

    levels: dict
    emmean: float
    std_error: float
    df: float
    conf_low: float
    conf_high: float


@dataclass
class Contrast:
    """One pairwise difference of EMMs."""

    contrast: str
    by: dict | None
    estimate: float
    std_error: float
    df: float
    t_ratio: float
    p_value: float


@dataclass
class EmmeansResult:
    """emmeans(model, specs, by) and, when asked, pairs(): what `lmm emmeans` reports."""

    emmeans: list[Emm]
    contrasts: list[Contrast] | None
    specs: list[str]
    by: list[str]
    df_method: str
    adjust: str | None
    level: float
    formula: str
    method: str
    nobs: int
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        """The JSON document: `by` on contrasts only with --by, `contrasts` only with --pairwise."""
        d = clean(self)
        if d["contrasts"] is None:
            del d["contrasts"], d["adjust"]
        elif not self.by:
            for c in d["contrasts"]:
                del c["by"]
        return d


# -- the reference grid -----------------------------------------------------------------------------
@dataclass
class RefGrid:
    """The grid's factor levels (first factor fastest), covariate means, and X at every grid row."""

    factors: dict[str, tuple[str, ...]]
    means: dict[str, float]
    rows: list[dict]
    X: np.ndarray


def grid_variables(design, data) -> tuple[dict, dict]:
    """({factor column: levels}, {covariate column: mean over the fitting rows}) of the fixed part."""
    spec = design.spec
    factors, numeric_cols = {}, []
    for term in spec.formula.fixed:
        for e in term.factors:
            info = spec.variables[deparse(e)]
            if info.kind == "factor" and isinstance(e, Name):
                factors.setdefault(e.name, info.levels)
            else:
                numeric_cols += [c for c in sorted(names_in(e)) if c not in numeric_cols]
    frame = fitting_frame(design, data)
    means = {c: float(np.mean(frame[c].astype(float))) for c in numeric_cols if c not in factors}
    return factors, means


def reference_grid(design, data) -> RefGrid:
    """emmeans' ref_grid of a fitted design."""
    factors, means = grid_variables(design, data)
    names = list(factors)
    combos = [dict(zip(names, reversed(c))) for c in itertools.product(*[factors[f] for f in reversed(names)])]
    if not combos:
        combos = [{}]
    cols = {f: np.array([r[f] for r in combos], dtype=object) for f in names}
    cols.update({c: np.full(len(combos), m) for c, m in means.items()})
    X = fixed_matrix(design.spec, Frame(cols))
    return RefGrid(factors, means, combos, X)


# -- means ---------------------------------------------------------------------------------------
def check_df(df_method: str | None, reml: bool) -> str:
    """The df method: Kenward-Roger by default for REML fits (emmeans' default), Satterthwaite for ML fits;
    Kenward-Roger asked for an ML fit is refused, as lmerTest refuses it."""
    method = ("kenward-roger" if reml else "satterthwaite") if df_method is None else \
        df_method.strip().lower().replace("_", "-")
    if method not in DF_METHODS:
        raise UsageError(f"unknown --df method '{df_method}'", hint=f"use one of: {', '.join(DF_METHODS)}")
    if method == "kenward-roger" and not reml:
        raise UsageError("Kenward-Roger's method needs a REML fit (as lmerTest)",
                         hint="drop --ml, or use --df satterthwaite")
    return method


def check_options(specs, by, adjust: str, df_method: str | None, level: float, reml: bool, factors) -> str:
    """The df method (check_df); UsageErrors for an unknown adjustment, a bad level or bad factor names."""
    if adjust not in ADJUSTS:
        raise UsageError(f"unknown --adjust '{adjust}'", hint=f"use one of: {', '.join(ADJUSTS)}")
    if not 0 < level < 1:
        raise UsageError(f"--level must be between 0 and 1 (e.g. 0.95), got {level}")
    method = check_df(df_method, reml)
    if not specs:
        raise UsageError("--specs names no factor", hint="e.g. --specs job or --specs job,sex")
    for name in list(specs) + list(by):
        if name not in factors:
            known = ", ".join(factors) or "none"
            raise ModelSpecError(f"'{name}' is not a factor of the model's fixed part (factors: {known})",
                                 hint="--specs and --by take factors; use --factor COL for a numeric column")
    if set(specs) & set(by) or len(set(specs)) < len(specs) or len(set(by)) < len(by):
        raise UsageError("a factor appears twice in --specs and --by")
    return method


def _cells(grid: RefGrid, names: list[str]) -> list[dict]:
    """The combinations of these factors' levels, first factor fastest (emmeans' order)."""
    levels = [grid.factors[n] for n in names]
    return [dict(zip(names, reversed(c))) for c in itertools.product(*reversed(levels))]


def cell_matrix(grid: RefGrid, cells: list[dict]) -> np.ndarray:
    """One row per cell: the mean of the grid's X rows that have the cell's levels (equal weights)."""
    out = np.empty((len(cells), grid.X.shape[1]))
    for i, cell in enumerate(cells):
        match = [all(r[k] == v for k, v in cell.items()) for r in grid.rows]
        out[i] = grid.X[np.array(match)].mean(axis=0)
    return out


class _Inference:
    """The covariance, the df of a contrast and its t test, for one df method."""

    def __init__(self, fm, method: str):
        self.pieces = df_pieces(fm, method)
        self.V = self.pieces.Vadj if method == "kenward-roger" else self.pieces.vcov
        self.beta = fm.sol.beta

    def estimate(self, l: np.ndarray) -> tuple[float, float, float]:
        """(estimate, standard error, df) of l beta."""
        return float(l @ self.beta), float(np.sqrt(l @ self.V @ l)), self.pieces.df(l)


def means(cells, L, inf: _Inference, level: float) -> list[Emm]:
    """The EMM rows with their t intervals at `level`."""
    out = []
    for cell, l in zip(cells, L):
        est, se, df = inf.estimate(l)
        half = float(t_ppf(0.5 + level / 2, df)) * se
        out.append(Emm(cell, est, se, df, est - half, est + half))
    return out


# -- contrasts --------------------------------------------------------------------------------------
def is_numeric_label(text: str) -> bool:
    """R's !is.na(as.numeric(x)): the label reads as a finite or infinite number."""
    try:
        value = float(text.strip())
    except ValueError:
        return False
    return not math.isnan(value) and "_" not in text


def cell_labels(cells: list[dict], names: list[str], grid: RefGrid) -> list[str]:
    """emmeans' labels of the cells: levels joined by a space, numeric-looking factors prefixed by their name,
    labels with - + / * in parentheses."""
    prefixed = {n for n in names if all(is_numeric_label(lv) for lv in grid.factors[n])}
    out = []
    for cell in cells:
        text = " ".join(f"{n}{cell[n]}" if n in prefixed else cell[n] for n in names)
        out.append(f"({text})" if any(ch in text for ch in PAREN_CHARS) else text)
    return out


def adjust_p(p: np.ndarray, t: np.ndarray, df: np.ndarray, adjust: str, k: int) -> np.ndarray:
    """Adjusted p-values of one family of pairwise contrasts among k means."""
    m = len(p)
    if adjust == "none" or m <= 1:
        return p
    if adjust == "bonferroni":
        return np.minimum(1.0, p * m)
    if adjust == "holm":
        order = np.argsort(p, kind="stable")
        stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
        out = np.empty(m)
        out[order] = np.minimum(1.0, stepped)
        return out
    return np.array([tukey_sf(abs(ti) * np.sqrt(2.0), k, d) for ti, d in zip(t, df)])


def pairwise(cells, L, labels, inf: _Inference, adjust: str, by: dict | None) -> list[Contrast]:
    """All pairs i < j of one family (one by group), adjusted within it."""
    pairs = [(i, j) for i in range(len(cells)) for j in range(i + 1, len(cells))]
    rows = [inf.estimate(L[i] - L[j]) for i, j in pairs]
    est = np.array([r[0] for r in rows])
    se = np.array([r[1] for r in rows])
    df = np.array([r[2] for r in rows])
    t = est / se
    p = adjust_p(np.atleast_1d(t_two_sided_p(t, df)), t, df, adjust, len(cells))
    return [Contrast(f"{labels[i]} - {labels[j]}", by, float(est[k]), float(se[k]), float(df[k]), float(t[k]),
                     float(p[k])) for k, (i, j) in enumerate(pairs)]


def _notes(grid: RefGrid, specs, by, fm) -> list[str]:
    """emmeans' notes: averaged factors and their involvement in interactions."""
    used = set(specs) | set(by)
    averaged = [f for f in grid.factors if f not in used]
    notes = []
    if averaged:
        notes.append(f"results are averaged over the levels of: {', '.join(averaged)}")
        labels = [{deparse(e) for e in t.factors} & set(grid.factors) for t in fm.formula.fixed]
        if any(t & used and t - used for t in labels):
            notes.append("results may be misleading due to involvement in interactions")
    return notes


def emmeans(fm, data, specs, by=(), pairwise_: bool = False, adjust: str = "tukey", df_method: str | None = None,
            level: float = 0.95) -> EmmeansResult:
    """emmeans(model, specs, by, lmer.df) and, with pairwise_, pairs(adjust = adjust)."""
    specs, by = list(specs), list(by)
    if not fm.blocks:
        raise ModelSpecError("lmm emmeans is for mixed models; this formula has no random terms",
                             hint="add a random term such as (1 | group)")
    grid = reference_grid(fm.design, data)
    method = check_options(specs, by, adjust, df_method, level, fm.reml, grid.factors)
    inf = _Inference(fm, method)
    cells = _cells(grid, specs + by)
    L = cell_matrix(grid, cells)
    emms = means(cells, L, inf, level)
    notes = _notes(grid, specs, by, fm)
    if df_method is None and not fm.reml:
        notes.append("df by Satterthwaite's method: Kenward-Roger needs a REML fit")
    contrasts, used_adjust = None, None
    if pairwise_:
        contrasts, used_adjust = [], adjust
        spec_cells = _cells(grid, specs)
        labels = cell_labels(spec_cells, specs, grid)
        if len(spec_cells) == 2:
            used_adjust = "none"        # one contrast: nothing to adjust (emmeans drops the adjustment)
        for group in _cells(grid, by):
            idx = [i for i, c in enumerate(cells) if all(c[k] == v for k, v in group.items())]
            contrasts += pairwise([cells[i] for i in idx], L[idx], labels, inf, used_adjust, group or None)
    result = fm.result()
    return EmmeansResult(emms, contrasts, specs, by, method, used_adjust, level, str(fm.formula.text),
                         result.method, fm.design.n, notes, result.warnings)
