"""Formula + data (a Frame, or a pandas DataFrame) -> Design: the response y, the fixed-effects matrix X,
one ReBlock per random term, and the prior weights and offset.

As lmer's model.frame: every variable (a column, log(x), poly(x, 2), factor(g), I(x > 3), ...) is
evaluated over all rows first, so scale(), poly(), ns() and bs() learn from every row where their
argument is present; then the rows where any variable is missing (NA, or NaN such as sqrt(-1)) are
dropped. Columns are coded and named as R's model.matrix does (matrices.py). What is learned from
the fitting data (factor levels, transformation coefficients, contrasts, the columns kept) is kept in
a ModelSpec, so the same columns can be built for new data (predictions, saved models).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import numpy as np

from lmmcli.design import checks
from lmmcli.design.aliasing import aliased_from_gram, drop_aliased  # noqa: F401  (aliased_from_gram re-exported)
from lmmcli.design.evaluate import Evaluator
from lmmcli.design.levels import group_codes
from lmmcli.design.matrices import model_columns
from lmmcli.design.variables import (LOGICAL_LEVELS, VarInfo, _with_ref, learn_levels,  # noqa: F401  (re-exported)
                                     predictor_terms, resolve_contrasts, variable_exprs, variable_kinds)
from lmmcli.errors import DataError, ModelSpecError
from lmmcli.formula import Formula, Name, RandomTerm, deparse, names_in
from lmmcli.io.frame import as_frame, missing


@dataclass(frozen=True)
class ReBlock:
    """One random-effects term: rows' level codes, its model-matrix columns, and its theta layout."""

    group: str                 # grouping factor label, e.g. "Subject", "cask:batch" or "c:(b:a)"
    terms: tuple[str, ...]     # column names, e.g. ("(Intercept)", "Days")
    levels: tuple[str, ...]    # level labels, codes index into this
    codes: np.ndarray          # (n,) int level index of each row
    Z: np.ndarray              # (n, p) model-matrix columns of this term
    correlated: bool = True    # False: only the diagonal of T is free
    name: str = ""             # lme4's VarCorr name: the group, then group.1, group.2 for its later terms

    @property
    def p(self) -> int:
        return len(self.terms)

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    def theta_index(self) -> list[tuple[int, int]]:
        """(row, col) of T filled by each theta element: the lower triangle column by column, as lme4."""
        p = self.p
        if not self.correlated:
            return [(j, j) for j in range(p)]
        return [(i, j) for j in range(p) for i in range(j, p)]



@dataclass
class ModelSpec:
    """What the fitting data taught us, enough to rebuild X and Z for any rows."""

    formula: Formula
    variables: dict[str, VarInfo]
    scale_state: dict[str, tuple[float, float]]
    factor_columns: tuple[str, ...] = ()
    refs: dict[str, str] = field(default_factory=dict)
    fixed_names: list[str] = field(default_factory=list)      # columns of X after dropping aliased ones
    aliased: list[str] = field(default_factory=list)
    transforms: dict = field(default_factory=dict)            # poly/ns/bs coefficients by expression
    contrasts: dict[str, str] = field(default_factory=dict)   # factor label -> contrast kind (fixed part)
    weights: str | None = None                                # the --weights column


@dataclass
class Design:
    """The numeric model: y, X and the random-effect blocks (largest first), plus data bookkeeping."""

    spec: ModelSpec
    response: str
    y: np.ndarray
    X: np.ndarray
    blocks: list[ReBlock]
    rows: np.ndarray                   # positions in the input data of the rows used
    n_input: int
    warnings: list[str] = field(default_factory=list)
    weights: np.ndarray | None = None  # prior weights (residual variance sigma^2 / w)
    offset: np.ndarray | None = None   # the summed offset() terms, a known part of the linear predictor

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def n_dropped(self) -> int:
        return self.n_input - self.n

    @property
    def fixed_names(self) -> list[str]:
        return self.spec.fixed_names

    def engine_inputs(self):
        """(X, y, blocks) as the engine fits them: y less the offset; with prior weights w every row of
        X, y and Z times sqrt(w), so that the residual variance is sigma^2 / w (lmer's weights)."""
        from dataclasses import replace

        y = self.y if self.offset is None else self.y - self.offset
        if self.weights is None:
            return self.X, y, self.blocks
        sw = np.sqrt(self.weights)
        blocks = [replace(blk, Z=blk.Z * sw[:, None]) for blk in self.blocks]
        return self.X * sw[:, None], y * sw, blocks

    def log_det_weights(self) -> float:
        """log |W| = sum(log w): lme4's REML criterion and deviance subtract it (0 without weights)."""
        return 0.0 if self.weights is None else float(np.sum(np.log(self.weights)))


# -- the model frame: evaluate, then drop incomplete rows --------------------------------------
def _model_frame(formula: Formula, variables: dict, exprs: dict, ev: Evaluator, weights: str | None,
                 response=None):
    """(response, offset, weights, missing mask, notes) over all rows; evaluating learns the transforms."""
    y = ev.numeric(formula.response) if response is None else response(ev)
    bad = np.isnan(y)
    notes = _nan_notes(formula.response, y, ev)
    for label, info in variables.items():
        e = exprs[label]
        if info.kind == "factor":
            bad |= np.array([v is None for v in ev.labels(e).tolist()])
            continue
        gone = np.isnan(ev.matrix(e)[1]).any(axis=1)
        bad |= gone
        notes += _nan_notes(e, gone, ev)
    offset = None
    for e in formula.offsets:
        v = ev.numeric(e)
        offset = v if offset is None else offset + v
        bad |= np.isnan(v)
    for rt in formula.random:
        for g in rt.group:
            bad |= missing(ev.df[g])
    w = None
    if weights is not None:
        w = ev.numeric(Name(weights))
        bad |= np.isnan(w)
    return y, offset, w, bad, notes


def _nan_notes(e, values, ev: Evaluator) -> list[str]:
    """A note when an expression is NaN (sqrt(-1), log(-1)) where its columns are present: R drops those rows."""
    gone = np.isnan(values) if values.dtype.kind == "f" else values
    for col in names_in(e):
        if col in ev.df.columns:
            gone = gone & ~missing(ev.df[col])
    k = int(gone.sum())
    if not k:
        return []
    return [f"{k} row{'s' if k > 1 else ''} dropped where {deparse(e)} is not a number (NaN), as R drops them"]


def _check_weights(w: np.ndarray, name: str, rows: np.ndarray):
    """lme4's rule: negative weights are an error. Zero weights would make lme4's REML criterion
    infinite (it includes -sum(log w)); their rows carry no information and are dropped with a note."""
    neg = w[rows] < 0
    if neg.any():
        raise DataError(f"negative weights are not allowed: '{name}' is {w[rows][neg][0]:.15g} in row "
                        f"{int(rows[neg][0]) + 1} of the data")
    if not np.all(np.isfinite(w[rows])):
        raise DataError(f"the weights '{name}' must be finite")
    zero = w[rows] == 0
    if not zero.any():
        return rows, []
    k = int(zero.sum())
    return rows[~zero], [f"{k} row{'s' if k > 1 else ''} with weight 0 dropped (they carry no information)"]


def build_design(formula: Formula, df, factor_columns=(), refs=None, source: str = "the data",
                 weights: str | None = None, contrasts: dict | None = None, response=None,
                 residual: bool = True) -> Design:
    """Check, clean and encode the data for this formula (the design step of lmer).

    response: a function of the Evaluator giving y on every row (NaN where missing), for responses that
    are not one numeric expression (glmer's cbind(), factors); residual: whether the model has a residual
    variance (glmer's binomial and Poisson models do not, so they may have as many levels as rows).
    """
    refs = dict(refs or {})
    df = as_frame(df)
    check_columns(formula, df, source)
    for col in refs:
        if col not in df.columns:
            raise ModelSpecError(f"--ref names column '{col}', which is not in {source}")
    if weights is not None and weights not in df.columns:
        raise ModelSpecError(f"--weights names column '{weights}', which is not in {source}")
    checks.check_formula_columns(formula)
    if response is None:
        checks.check_response(formula, df)
    if formula.response is None:
        raise ModelSpecError("the formula has no response (left of '~')", text=formula.text, span=(0, 1))
    used = sorted(formula.columns() | ({weights} if weights else set()))
    frame = df.select(used)
    forced = set(factor_columns)
    exprs = variable_exprs(formula)
    variables = variable_kinds(formula, frame, forced)
    ev = Evaluator(frame, forced=forced)
    y, offset, w, bad, notes = _model_frame(formula, variables, exprs, ev, weights, response)
    rows = np.flatnonzero(~bad)
    if w is not None:
        rows, more = _check_weights(w, weights, rows)
        notes += more
    n_input = len(df)
    if len(rows) == 0:
        raise DataError("no rows are left after dropping rows with missing values in the model's columns")
    kept = ev if len(rows) == n_input else ev.take(rows)
    checks.check_refs(refs, formula, variables)
    notes += learn_levels(variables, exprs, kept, refs)
    spec = ModelSpec(formula, variables, ev.scale_state, tuple(factor_columns), refs,
                     transforms=ev.transforms, contrasts=resolve_contrasts(contrasts, variables), weights=weights)
    y = y[rows]
    names, X = model_columns(formula.fixed, formula.intercept, spec, kept, fixed=True)
    checks.check_values(deparse(formula.response), y, names, X, rows)
    X, warnings = drop_aliased(spec, names, X)
    blocks = [random_block(rt, spec, kept) for rt in formula.random]
    blocks.sort(key=lambda b: -b.nlevels)  # stable: largest grouping factor first, as lme4
    blocks = _varcorr_names(blocks)
    warnings += checks.check_random_effects(blocks, rows, residual)
    dropped = n_input - len(rows)
    if dropped:
        warnings.insert(0, f"{dropped} row{'s' if dropped > 1 else ''} with missing values dropped")
    return Design(spec, deparse(formula.response), y, X, blocks, rows, n_input, notes + warnings,
                  None if w is None else w[rows], None if offset is None else offset[rows])


def _varcorr_names(blocks: list) -> list:
    """lme4's VarCorr names: a grouping factor's second and later terms are group.1, group.2, ..."""
    from dataclasses import replace

    seen: dict = {}
    out = []
    for blk in blocks:
        k = seen.get(blk.group, 0)
        seen[blk.group] = k + 1
        out.append(replace(blk, name=blk.group if k == 0 else f"{blk.group}.{k}"))
    return out


# -- random terms ----------------------------------------------------------------------------
def random_block(rt: RandomTerm, spec: ModelSpec, ev: Evaluator) -> ReBlock:
    """One ReBlock: the term's columns, its grouping factor and its theta layout."""
    names, Z = model_columns(rt.terms, rt.intercept, spec, ev)
    if not names:
        raise ModelSpecError(f"random term '({rt.group_label})' has no columns", span=rt.span)
    codes, levels = group_codes(ev.df, rt.group)
    return ReBlock(rt.group_label, tuple(names), levels, codes, Z, rt.correlated)



def check_columns(formula: Formula, df, source: str = "the data") -> None:
    """Every referenced column exists; otherwise say which, where, and what it might have been."""
    df = as_frame(df)
    for name in sorted(formula.columns()):
        if name not in df.columns:
            close = difflib.get_close_matches(name, [str(c) for c in df.columns], n=1)
            raise ModelSpecError(f"column '{name}' is not in {source}",
                                 hint=f"did you mean '{close[0]}'?" if close else None,
                                 text=formula.text, span=_name_span(formula.text, name))


def _name_span(text: str, name: str):
    """Where the name first appears in the formula text (for the caret), if it does."""
    i = text.find(name)
    return (i, i + len(name)) if i >= 0 else None


def complete_rows(df, columns) -> np.ndarray:
    """Positions of rows with no missing value in the used columns."""
    df = as_frame(df)
    bad = np.zeros(len(df), dtype=bool)
    for col in columns:
        bad |= missing(df[col])
    return np.flatnonzero(~bad)



def fixed_matrix(spec: ModelSpec, df) -> np.ndarray:
    """X for new rows, with the fitting data's levels, transformations, contrasts and kept columns."""
    ev = Evaluator.for_spec(spec, as_frame(df))
    names, X = model_columns(spec.formula.fixed, spec.formula.intercept, spec, ev, fixed=True)
    keep = [names.index(nm) for nm in spec.fixed_names]
    return X[:, keep]


def offset_values(spec: ModelSpec, df) -> np.ndarray:
    """The summed offset() terms for new rows (zeros when the formula has none)."""
    ev = Evaluator.for_spec(spec, as_frame(df))
    out = np.zeros(len(ev.df))
    for e in spec.formula.offsets:
        out = out + ev.numeric(e)
    return out
