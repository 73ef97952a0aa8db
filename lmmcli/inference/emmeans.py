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

from lmmcli.design.design import Evaluator, model_columns, offset_values
from lmmcli.distributions import t_ppf, t_two_sided_p, tukey_sf
from lmmcli.errors import ModelSpecError, UsageError
from lmmcli.formula import deparse
from lmmcli.io.frame import Frame
from lmmcli.results import SCHEMA_VERSION, clean

ADJUSTS = ("tukey", "holm", "bonferroni", "none")
DF_METHODS = ("kenward-roger", "satterthwaite")
PAREN_CHARS = "-+/*"          # emmeans' option parens = "-|\\+|\\/|\\*"
ESTIMABLE_TOL = 1e-8          # emmeans' (estimability's) is.estble tolerance


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
    """The grid's factor levels (first factor fastest), covariate means, and X at every grid row: all of the
    model matrix's columns (X_full), and `keep`, the columns the fit kept; `nonest` spans the directions in
    which the fitting X says nothing (empty cells), None when no column was aliased."""

    factors: dict[str, tuple[str, ...]]
    means: dict[str, float]
    rows: list[dict]
    X_full: np.ndarray
    keep: list[int] = None
    nonest: np.ndarray | None = None
    offset: np.ndarray | None = None       # the offset() terms at each grid row (emmeans adds them)

    @property
    def X(self) -> np.ndarray:
        return self.X_full if self.keep is None else self.X_full[:, self.keep]

    def estimable(self, l_full: np.ndarray) -> bool:
        """emmeans' is.estble: l is (numerically) orthogonal to the non-estimable directions."""
        if self.nonest is None:
            return True
        return float(np.sum((l_full @ self.nonest) ** 2)) <= ESTIMABLE_TOL * float(l_full @ l_full)


def reference_grid(basis) -> RefGrid:
    """emmeans' ref_grid of an AnalysisBasis."""
    factors, means, spec = basis.grid_factors, basis.covariate_means, basis.spec
    names = list(factors)
    combos = [dict(zip(names, reversed(c))) for c in itertools.product(*[factors[f] for f in reversed(names)])]
    if not combos:
        combos = [{}]
    cols = {f: np.array([r[f] for r in combos], dtype=object) for f in names}
    cols.update({c: np.full(len(combos), m) for c, m in means.items()})
    all_names, X_full = model_columns(spec.formula.fixed, spec.formula.intercept, spec,
                                      Evaluator.for_spec(spec, Frame(cols)), fixed=True)
    offset = offset_values(spec, Frame(cols)) if getattr(spec.formula, "offsets", ()) else None
    keep = None if basis.nonest is None else [all_names.index(nm) for nm in spec.fixed_names]
    return RefGrid(factors, means, combos, X_full, keep, basis.nonest, offset)


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


def cell_matrix(grid: RefGrid, cells: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(L, offsets): one row per cell over all model-matrix columns, the mean of the grid's rows that have
    the cell's levels (equal weights), and the mean of their offsets (0 without offset terms)."""
    out, off = np.empty((len(cells), grid.X_full.shape[1])), np.zeros(len(cells))
    for i, cell in enumerate(cells):
        match = np.array([all(r[k] == v for k, v in cell.items()) for r in grid.rows])
        out[i] = grid.X_full[match].mean(axis=0)
        if grid.offset is not None:
            off[i] = grid.offset[match].mean()
    return out, off


class _Inference:
    """The covariance, the df of a contrast and its t test, for one df method."""

    def __init__(self, basis, method: str, grid: RefGrid):
        self.pieces = basis.df_pieces(method)
        self.V = self.pieces.Vadj if method == "kenward-roger" else self.pieces.vcov
        self.beta = basis.beta
        self.grid = grid

    def estimate(self, l_full: np.ndarray, offset: float = 0.0) -> tuple[float | None, float | None, float | None]:
        """(estimate, standard error, df) of l beta + offset; Nones when l is not estimable (an empty cell)."""
        if not self.grid.estimable(l_full):
            return None, None, None
        l = l_full if self.grid.keep is None else l_full[self.grid.keep]
        return float(l @ self.beta) + offset, float(np.sqrt(l @ self.V @ l)), self.pieces.df(l)


def means(cells, L, off, inf: _Inference, level: float) -> list[Emm]:
    """The EMM rows with their t intervals at `level` (Nones for a non-estimable mean, as emmeans' nonEst)."""
    out = []
    for cell, l, o in zip(cells, L, off):
        est, se, df = inf.estimate(l, o)
        if est is None:
            out.append(Emm(cell, None, None, None, None, None))
            continue
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
    """Adjusted p-values of one family of pairwise contrasts among k means (NaN entries, non-estimable
    contrasts, stay NaN and do not count)."""
    ok = ~np.isnan(p)
    if not ok.all():
        out = np.full(len(p), np.nan)
        out[ok] = adjust_p(p[ok], None if t is None else t[ok], None if df is None else df[ok], adjust, k)
        return out
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


def pairwise(cells, L, off, labels, inf: _Inference, adjust: str, by: dict | None) -> list[Contrast]:
    """All pairs i < j of one family (one by group), adjusted within it."""
    pairs = [(i, j) for i in range(len(cells)) for j in range(i + 1, len(cells))]
    rows = [inf.estimate(L[i] - L[j], off[i] - off[j]) for i, j in pairs]
    est, se, df = (np.array([np.nan if r[c] is None else r[c] for r in rows], dtype=float) for c in range(3))
    t = est / se
    p = np.array([np.nan if np.isnan(ti) else t_two_sided_p(ti, d) for ti, d in zip(t, df)], dtype=float)
    p = adjust_p(p, t, df, adjust, len(cells))
    return [Contrast(f"{labels[i]} - {labels[j]}", by, *(_none(v[k]) for v in (est, se, df, t, p)))
            for k, (i, j) in enumerate(pairs)]


def _none(x: float) -> float | None:
    """NaN (a non-estimable contrast) as None."""
    return None if np.isnan(x) else float(x)


def _notes(grid: RefGrid, specs, by, basis) -> list[str]:
    """emmeans' notes: averaged factors and their involvement in interactions."""
    used = set(specs) | set(by)
    averaged = [f for f in grid.factors if f not in used]
    notes = []
    if averaged:
        notes.append(f"results are averaged over the levels of: {', '.join(averaged)}")
        labels = [{deparse(e) for e in t.factors} & set(grid.factors) for t in basis.spec.formula.fixed]
        if any(t & used and t - used for t in labels):
            notes.append("results may be misleading due to involvement in interactions")
    return notes


def emmeans_of(basis, specs, by=(), pairwise_: bool = False, adjust: str = "tukey", df_method: str | None = None,
               level: float = 0.95) -> EmmeansResult:
    """emmeans(model, specs, by, lmer.df) and, with pairwise_, pairs(adjust = adjust), of an AnalysisBasis."""
    specs, by = list(specs), list(by)
    grid = reference_grid(basis)
    method = check_options(specs, by, adjust, df_method, level, basis.reml, grid.factors)
    inf = _Inference(basis, method, grid)
    cells = _cells(grid, specs + by)
    L, off = cell_matrix(grid, cells)      # over all model-matrix columns; _Inference keeps the fitted ones
    emms = means(cells, L, off, inf, level)
    notes = _notes(grid, specs, by, basis)
    if any(e.emmean is None for e in emms):
        notes.append("some means are not estimable (they involve a combination of levels with no data): "
                     "their values are empty, as emmeans' nonEst")
    if df_method is None and not basis.reml:
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
            contrasts += pairwise([cells[i] for i in idx], L[idx], off[idx], labels, inf, used_adjust,
                                  group or None)
    return EmmeansResult(emms, contrasts, specs, by, method, used_adjust, level, basis.formula, basis.method,
                         basis.nobs, notes, basis.warnings)


def emmeans(fm, data, specs, by=(), pairwise_: bool = False, adjust: str = "tukey", df_method: str | None = None,
            level: float = 0.95) -> EmmeansResult:
    """emmeans_of the basis of a FittedModel fitted to `data`."""
    from lmmcli.inference.basis import basis_from_fit

    check_df(df_method, fm.reml)
    return emmeans_of(basis_from_fit(fm, data), specs, by, pairwise_, adjust, df_method, level)
