"""Formula + data (a Frame, or a pandas DataFrame) -> Design: the response y, the fixed-effects matrix X, one ReBlock per random term.

Columns are coded and named as R's model.matrix names them (treatment contrasts, reference = first
level in sorted order, interactions with the first factor varying fastest), because users compare
our output with lme4's line by line. What is learned from the fitting data (factor levels, the
centre and scale of `scale()`, the columns kept) is kept in a ModelSpec, so the same columns can be
built for new data (predictions, saved models).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import numpy as np

from lmmcli.design import checks
from lmmcli.errors import DataError, ModelSpecError
from lmmcli.io.frame import as_frame, infer_kind, missing
from lmmcli.formula import BinOp, Call, FixedTerm, Formula, Name, Number, RandomTerm, UnaryOp, deparse
from lmmcli.design.levels import group_codes, is_factor_column, is_number, sorted_levels, value_labels

NUMERIC_FUNCS = {"log": np.log, "exp": np.exp, "sqrt": np.sqrt}
ALIAS_TOL = 1e-9
SPARSE_GRAM_MIN, SPARSE_GRAM_FILL = 200, 0.05   # a sparse A'A for this many columns, at most this fill


@dataclass(frozen=True)
class ReBlock:
    """One random-effects term: rows' level codes, its model-matrix columns, and its theta layout."""

    group: str                 # grouping factor label, e.g. "Subject" or "cask:batch"
    terms: tuple[str, ...]     # column names, e.g. ("(Intercept)", "Days")
    levels: tuple[str, ...]    # level labels, codes index into this
    codes: np.ndarray          # (n,) int level index of each row
    Z: np.ndarray              # (n, p) model-matrix columns of this term
    correlated: bool = True    # False for (x || g): only the diagonal of T is free

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
class VarInfo:
    """One variable of the model: a numeric expression, or a factor with its levels (reference first)."""

    label: str
    kind: str                          # "numeric" or "factor"
    levels: tuple[str, ...] = ()


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

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def n_dropped(self) -> int:
        return self.n_input - self.n

    @property
    def fixed_names(self) -> list[str]:
        return self.spec.fixed_names


# -- evaluation of expressions ---------------------------------------------------------------
class Evaluator:
    """Evaluates formula expressions on a Frame's columns (never with eval)."""

    def __init__(self, df, spec_scale: dict | None = None):
        self.df = as_frame(df)
        self.scale_state = {} if spec_scale is None else spec_scale
        self.learn = spec_scale is None

    def numeric(self, e) -> np.ndarray:
        """The expression's values as floats."""
        if isinstance(e, Name):
            col = self.df[e.name]
            if not is_number(col):
                raise DataError(f"column '{e.name}' is not numeric, so it cannot be used in arithmetic")
            return col.astype(float)
        if isinstance(e, Number):
            return np.full(len(self.df), float(e.value))
        if isinstance(e, UnaryOp):
            v = self.numeric(e.operand)
            return -v if e.op == "-" else v
        if isinstance(e, BinOp):
            return _arith(e.op, self.numeric(e.left), self.numeric(e.right))
        if isinstance(e, Call):
            return self._call(e)
        raise ModelSpecError(f"cannot evaluate '{deparse(e)}'")

    def _call(self, e: Call) -> np.ndarray:
        """log, exp, sqrt, I and scale."""
        if len(e.args) != 1:
            raise ModelSpecError(f"{e.func}() takes one argument", span=e.span)
        x = self.numeric(e.args[0])
        if e.func == "I":
            return x
        if e.func == "scale":
            return self._scale(deparse(e), x)
        with np.errstate(all="ignore"):
            return NUMERIC_FUNCS[e.func](x)

    def _scale(self, key: str, x: np.ndarray) -> np.ndarray:
        """Centre and scale by the fitting data's mean and sd (remembered for new data)."""
        if self.learn:
            sd = float(np.std(x, ddof=1)) if len(x) > 1 else 1.0
            self.scale_state[key] = (float(np.mean(x)), sd if sd > 0 else 1.0)
        if key not in self.scale_state:
            raise ModelSpecError(f"no stored centre and scale for '{key}'")
        c, s = self.scale_state[key]
        return (x - c) / s


def _arith(op, a, b):
    """Arithmetic with R's meaning of ^ (power)."""
    with np.errstate(all="ignore"):
        return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power}[op](a, b)


# -- learning the spec -----------------------------------------------------------------------
def predictor_terms(formula: Formula):
    """Every term whose variables are predictors: fixed terms, then the left sides of random terms."""
    yield from formula.fixed
    for rt in formula.random:
        yield from rt.terms


def learn_variables(formula: Formula, df, factor_columns, refs) -> dict[str, VarInfo]:
    """Decide for each variable whether it is numeric or a factor, and the factor's levels."""
    out: dict[str, VarInfo] = {}
    for term in predictor_terms(formula):
        for e in term.factors:
            label = deparse(e)
            if label in out:
                continue
            if isinstance(e, Name) and is_factor_column(df[e.name], e.name in factor_columns):
                out[label] = VarInfo(label, "factor", _with_ref(e.name, sorted_levels(df[e.name]), refs))
            else:
                out[label] = VarInfo(label, "numeric")
    return out


def _with_ref(col: str, levels: tuple[str, ...], refs: dict[str, str]) -> tuple[str, ...]:
    """Put the --ref level first."""
    if col not in refs:
        return levels
    ref = refs[col]
    if ref not in levels:
        close = difflib.get_close_matches(ref, levels, n=1)
        shown = ", ".join(levels[:10]) + (", ..." if len(levels) > 10 else "")
        raise ModelSpecError(f"--ref {col}={ref}: '{ref}' is not a level of '{col}' (levels: {shown})",
                             hint=f"did you mean '{close[0]}'?" if close else None)
    return (ref,) + tuple(v for v in levels if v != ref)


# -- model matrices --------------------------------------------------------------------------
def _factor_codes(df, e, info: VarInfo) -> np.ndarray:
    """Row codes into info.levels; a value not among the levels is an error."""
    labels = value_labels(df[e.name])
    index = {lv: i for i, lv in enumerate(info.levels)}
    codes = np.fromiter((index.get(v, -1) for v in labels), dtype=np.int64, count=len(labels))
    if (codes < 0).any():
        bad = labels[np.argmax(codes < 0)]
        raise DataError(f"level '{bad}' of '{e.name}' was not in the data the model was fitted to")
    return codes


def term_columns(term: FixedTerm, present: set, spec: ModelSpec, ev: Evaluator):
    """The model-matrix columns of one term: [(name, values)], R's contrast rule and column order."""
    cols = [("", None)]     # None: the empty product, so a one-factor term costs no multiplication
    labels = [deparse(f) for f in term.factors]
    for e, label in zip(term.factors, labels):
        info = spec.variables[label]
        if info.kind == "numeric":
            parts = [(label, ev.numeric(e))]
        else:
            margin = frozenset(lb for lb in labels if lb != label)
            contrast = margin in present
            codes = _factor_codes(ev.df, e, info)
            use = info.levels[1:] if contrast else info.levels
            start = 1 if contrast else 0
            parts = [(label + lv, (codes == k + start).astype(float)) for k, lv in enumerate(use)]
        # the first factor varies fastest: new parts go in the outer loop
        cols = [(_join(n1, n2), v2 if v1 is None else v1 * v2) for n2, v2 in parts for n1, v1 in cols]
    return cols


def _join(a: str, b: str) -> str:
    return b if not a else f"{a}:{b}"


def _term_set(terms, intercept: bool) -> set:
    """The labels' sets of each term (for R's contrast rule); the empty set stands for the intercept."""
    present = {frozenset(deparse(f) for f in t.factors) for t in terms}
    if intercept:
        present.add(frozenset())
    return present


def model_columns(terms, intercept: bool, spec: ModelSpec, ev: Evaluator):
    """Names and matrix of an intercept plus terms."""
    present = _term_set(terms, intercept)
    names, cols = [], []
    if intercept:
        names.append("(Intercept)")
        cols.append(np.ones(len(ev.df)))
    for t in terms:
        for name, v in term_columns(t, present, spec, ev):
            names.append(name)
            cols.append(v)
    X = np.column_stack(cols) if cols else np.zeros((len(ev.df), 0))
    return names, X


def _gram(A: np.ndarray) -> np.ndarray:
    """A'A; through a sparse product when A is mostly zeros (indicator columns of a factor with many
    levels: at 15,000 x 5,000 the dense product is 4e11 flops, the sparse one milliseconds)."""
    n, m = A.shape
    if m < SPARSE_GRAM_MIN or np.count_nonzero(A[:min(n, 1000)]) > SPARSE_GRAM_FILL * min(n, 1000) * m:
        return A.T @ A
    import scipy.sparse as sp

    S = sp.csc_matrix(A)
    return (S.T @ S).toarray()


def aliased_columns(X: np.ndarray) -> list[int]:
    """Columns in the span of earlier ones (R's rule: keep the first, drop later aliased columns).

    Column j is aliased when its squared distance from the span of the kept earlier columns, the
    Cholesky pivot d_j of X'X, is at most ALIAS_TOL * (X'X)_jj. The pivots come from LAPACK's
    Cholesky of the not-yet-judged columns given the kept ones (O(p^3), 1 s at p = 5,000, where a
    solve per column is O(p^4)); after a dropped column the rest is factored again.
    """
    XtX = _gram(X)
    p = X.shape[1]
    try:                     # the usual case, full rank: one factor, and numpy only (scipy costs start-up)
        if np.all(np.diag(np.linalg.cholesky(XtX)) ** 2 > ALIAS_TOL * np.maximum(np.diag(XtX), 1e-300)):
            return []
    except np.linalg.LinAlgError:
        pass
    from scipy.linalg import solve_triangular
    from scipy.linalg.lapack import dpotrf

    keep, drop, L_keep, start = [], [], np.zeros((0, 0)), 0
    while start < p:
        rest = np.arange(start, p)
        B = solve_triangular(L_keep, XtX[np.ix_(keep, rest)], lower=True) if keep else np.zeros((0, len(rest)))
        S = XtX[np.ix_(rest, rest)] - B.T @ B
        L, info = dpotrf(S, lower=1, clean=1)
        d = np.diag(L) ** 2
        ok = d > ALIAS_TOL * np.maximum(np.diag(XtX)[rest], 1e-300)
        if info > 0:
            ok[info - 1:] = False
        bad = int(np.argmin(ok)) if not ok.all() else len(rest)
        # columns before the first bad one are kept: their rows of the factor are final
        L_new = np.zeros((len(keep) + bad,) * 2)
        L_new[:len(keep), :len(keep)] = L_keep
        L_new[len(keep):, :len(keep)] = B[:, :bad].T
        L_new[len(keep):, len(keep):] = L[:bad, :bad]
        keep, L_keep = keep + rest[:bad].tolist(), L_new
        if bad < len(rest):
            drop.append(int(rest[bad]))
        start += bad + 1
    return drop


# -- random terms ----------------------------------------------------------------------------
def random_block(rt: RandomTerm, spec: ModelSpec, ev: Evaluator) -> ReBlock:
    """One ReBlock: the term's columns, its grouping factor and its theta layout."""
    names, Z = model_columns(rt.terms, rt.intercept, spec, ev)
    if not names:
        raise ModelSpecError(f"random term '({rt.group_label})' has no columns", span=rt.span)
    codes, levels = group_codes(ev.df, rt.group)
    return ReBlock(rt.group_label, tuple(names), levels, codes, Z, rt.correlated)


# -- the whole design ------------------------------------------------------------------------
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


def build_design(formula: Formula, df, factor_columns=(), refs=None, source: str = "the data") -> Design:
    """Check, clean and encode the data for this formula (the design step of lmer)."""
    refs = dict(refs or {})
    df = as_frame(df)
    check_columns(formula, df, source)
    for col in refs:
        if col not in df.columns:
            raise ModelSpecError(f"--ref names column '{col}', which is not in {source}")
    checks.check_formula_columns(formula)
    checks.check_response(formula, df)
    used = sorted(formula.columns())
    rows = complete_rows(df, used)
    n_input = len(df)
    # infer_kind: a TRUE/FALSE column that had missing values is boolean again once they are gone
    picked = df.select(used).take(rows)
    clean = picked.with_columns({c: infer_kind(picked[c]) for c in used})
    if len(clean) == 0:
        raise DataError("no rows are left after dropping rows with missing values in the model's columns")
    variables = learn_variables(formula, clean, set(factor_columns), refs)
    checks.check_refs(refs, formula, variables)
    spec = ModelSpec(formula, variables, {}, tuple(factor_columns), refs)
    ev = Evaluator(clean)
    if formula.response is None:
        raise ModelSpecError("the formula has no response (left of '~')", text=formula.text, span=(0, 1))
    y = ev.numeric(formula.response)
    names, X = model_columns(formula.fixed, formula.intercept, spec, ev)
    spec.scale_state = ev.scale_state
    checks.check_values(deparse(formula.response), y, names, X, rows)
    X, warnings = _drop_aliased(spec, names, X)
    blocks = [random_block(rt, spec, ev) for rt in formula.random]
    blocks.sort(key=lambda b: -b.nlevels)  # stable: largest grouping factor first, as lme4
    warnings += checks.check_random_effects(blocks, rows)
    dropped = n_input - len(clean)
    if dropped:
        warnings.insert(0, f"{dropped} row{'s' if dropped > 1 else ''} with missing values dropped")
    return Design(spec, deparse(formula.response), y, X, blocks, rows, n_input, warnings)


def _drop_aliased(spec: ModelSpec, names: list[str], X: np.ndarray):
    """(X without its aliased columns, [lme4's rank-deficiency warning]); records the kept and dropped
    names in spec."""
    drop = aliased_columns(X) if X.shape[1] else []
    spec.aliased = [names[j] for j in drop]
    spec.fixed_names = [nm for j, nm in enumerate(names) if j not in set(drop)]
    if not drop:
        return X, []
    return np.delete(X, drop, axis=1), ["fixed-effect model matrix is rank deficient so dropping "
                                        f"{len(drop)} column{'s' if len(drop) > 1 else ''}: {', '.join(spec.aliased)}"]


def fixed_matrix(spec: ModelSpec, df) -> np.ndarray:
    """X for new rows, with the fitting data's levels, scaling and kept columns."""
    ev = Evaluator(as_frame(df), spec.scale_state)
    names, X = model_columns(spec.formula.fixed, spec.formula.intercept, spec, ev)
    keep = [names.index(nm) for nm in spec.fixed_names]
    return X[:, keep]
