"""The aggregation plan: what sums a formula needs, as expressions over the data's columns.

A Plan is built from the formula, the data's schema (column names and kinds) and what a first pass
learns (factor levels, the centre and scale of scale(), pilot means); engines render it as SQL.
Column names, factor codings and contrasts follow design/ exactly (R's model.matrix names and R's
level order), so an aggregated fit reports the same rows as the in-memory one.

Expressions are small tuples, rendered per SQL dialect by sql.render:
    ("col", name)  ("num", value)  ("neg", e)  ("bin", op, a, b)  ("fn", name, e)
    ("is", name, raw value)  (1.0 where the column equals the value, else 0.0)  ("mul", a, b)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmmcli.design.design import LOGICAL_LEVELS, ModelSpec, VarInfo, _with_ref, predictor_terms
from lmmcli.design.levels import is_factor_column, text_order, value_labels
from lmmcli.design.matrices import _join, coding
from lmmcli.errors import DataError, ModelSpecError
from lmmcli.formula import BinOp, Call, Formula, Name, Number, UnaryOp, deparse

ONE = ("num", 1.0)
SQL_FUNCS = {"log": "ln", "exp": "exp", "sqrt": "sqrt"}


@dataclass(frozen=True)
class PlanTerm:
    """One random term: its grouping keys (columns), Z columns' names and expressions."""

    group: str
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    exprs: tuple
    correlated: bool


@dataclass
class Plan:
    """Everything the engines sum: [X y] columns (shifted by pilot values), the random terms, the filter."""

    formula: Formula
    spec: ModelSpec
    response: str
    fixed: list[tuple[str, tuple]]         # (name, expression) of every X column, before aliasing
    y: tuple
    terms: list[PlanTerm]                  # in formula order
    used: tuple[str, ...]                  # a missing value in any of these drops the row
    floats: tuple[str, ...]                # used columns that are floating point (NaN counts as missing)
    orders: dict = field(default_factory=dict)   # stored category order of categorical columns (Parquet)
    pilot: np.ndarray = field(default_factory=lambda: np.zeros(0))   # shift of each [X y] column

    @property
    def xy(self) -> list[tuple]:
        """Expressions of the [X y] columns."""
        return [e for _, e in self.fixed] + [self.y]

    @property
    def m(self) -> int:
        return len(self.fixed) + 1


# -- expressions -----------------------------------------------------------------------------
def expression(e, scale_state: dict) -> tuple:
    """A formula expression (numeric) as a plan expression."""
    if isinstance(e, Name):
        return ("col", e.name)
    if isinstance(e, Number):
        return ("num", float(e.value))
    if isinstance(e, UnaryOp):
        inner = expression(e.operand, scale_state)
        return ("neg", inner) if e.op == "-" else inner
    if isinstance(e, BinOp) and e.op in ("+", "-", "*", "/", "^"):
        return ("bin", e.op, expression(e.left, scale_state), expression(e.right, scale_state))
    if isinstance(e, Call):
        if len(e.args) != 1:
            raise ModelSpecError(f"{e.func}() takes one argument", span=e.span)
        x = expression(e.args[0], scale_state)
        if e.func == "I":
            return x
        if e.func == "scale":
            c, s = scale_state[deparse(e)]
            return ("bin", "/", ("bin", "-", x, ("num", c)), ("num", s))
        if e.func in SQL_FUNCS:
            return ("fn", SQL_FUNCS[e.func], x)
    raise ModelSpecError(f"'{deparse(e)}' cannot be computed by the aggregation engines",
                         hint="use --engine memory for this formula")


def scale_calls(formula: Formula) -> dict[str, object]:
    """Every scale(...) call in the model's predictors (and response), by its text, with its argument."""
    out = {}

    def walk(e):
        if isinstance(e, Call):
            if e.func == "scale" and len(e.args) == 1:
                out.setdefault(deparse(e), e.args[0])
            for a in e.args:
                walk(a)
        elif isinstance(e, BinOp):
            walk(e.left)
            walk(e.right)
        elif isinstance(e, UnaryOp):
            walk(e.operand)

    if formula.response is not None:
        walk(formula.response)
    for term in predictor_terms(formula):
        for f in term.factors:
            walk(f)
    return out


def inner_first(calls: dict) -> list[str]:
    """scale() calls ordered so that a call nested in another comes first."""
    return sorted(calls, key=len)


# -- variables and columns (design.learn_variables and design.term_columns, over a schema) ------------
def factor_names(formula: Formula, kinds: dict[str, str], factor_columns) -> list[str]:
    """Columns used as factors among the predictors (text or boolean, or named by --factor)."""
    out = []
    for term in predictor_terms(formula):
        for e in term.factors:
            if isinstance(e, Name) and e.name not in out and is_factor_column(_probe(kinds[e.name]),
                                                                               e.name in factor_columns):
                out.append(e.name)
    return out


def _probe(kind: str) -> np.ndarray:
    """An empty array of the column kind ('float', 'int', 'bool', 'text'), for design's dtype tests."""
    return np.zeros(0, dtype={"float": float, "int": np.int64, "bool": bool}.get(kind, object))


def learn_variables(formula: Formula, factors: dict[str, np.ndarray], refs, orders=None) -> dict[str, VarInfo]:
    """design.learn_variables from each factor's distinct values instead of its rows (orders: the stored
    category order of categorical columns, kept as the memory path keeps it)."""
    out: dict[str, VarInfo] = {}
    for term in predictor_terms(formula):
        for e in term.factors:
            label = deparse(e)
            if label in out:
                continue
            if isinstance(e, Name) and e.name in factors:
                levels = _levels(label, factors[e.name], (orders or {}).get(e.name))
                out[label] = VarInfo(label, "factor", _with_ref(e.name, levels, refs))
            else:
                out[label] = VarInfo(label, "numeric")
    return out


def _levels(label: str, values: np.ndarray, order=None) -> tuple[str, ...]:
    """design.learn_levels from a factor's distinct values: FALSE, TRUE for a logical; numeric order for
    numbers; a categorical column's stored order (order); else R's text order; at least two levels."""
    values = np.asarray(values)
    if values.dtype == bool:
        return LOGICAL_LEVELS
    labels = value_labels(values).tolist()
    if order is not None and values.dtype.kind not in "iuf":
        present = set(labels)
        levels = tuple(c for c in value_labels(np.asarray(order, dtype=object)).tolist() if c in present)
    else:
        levels = tuple(sorted(labels, key=float if values.dtype.kind in "iuf" else text_order))
    if len(levels) < 2:
        raise DataError(f"'{label}' has only one level ('{levels[0] if levels else ''}') in the rows used: "
                        "contrasts can be applied only to factors with 2 or more levels",
                        hint="drop it from the formula, or check the rows dropped for missing values")
    return levels


def raw_values(values: np.ndarray) -> dict[str, object]:
    """Each distinct value's label (as design spells levels) -> the value itself, for SQL literals."""
    return {lab: v for lab, v in zip(value_labels(values), values.tolist())}


def term_exprs(term, contrasts: list[bool], spec: ModelSpec, raws: dict, scale_state: dict):
    """design.term_columns as expressions: [(name, expression)], R's coding rule (treatment contrasts)
    and column order."""
    cols = [("", None)]
    for e, contrast in zip(term.factors, contrasts):
        label = deparse(e)
        info = spec.variables[label]
        if info.kind == "numeric":
            parts = [(label, expression(e, scale_state))]
        else:
            use = info.levels[1:] if contrast else info.levels
            parts = [(label + lv, ("is", e.name, raws[e.name][lv])) for lv in use]
        cols = [(_join(n1, n2), v2 if v1 is None else ("mul", v1, v2)) for n2, v2 in parts for n1, v1 in cols]
    return cols


def model_exprs(terms, intercept: bool, spec: ModelSpec, raws: dict, scale_state: dict):
    """design.model_columns as expressions: [(name, expression)] of an intercept plus terms."""
    out = [("(Intercept)", ONE)] if intercept else []
    for t, code in zip(terms, coding(terms, intercept, spec)):
        out.extend(term_exprs(t, code, spec, raws, scale_state))
    return out


def build_plan(formula: Formula, kinds: dict[str, str], factors: dict[str, np.ndarray], scale_state: dict,
               factor_columns=(), refs=None, require=(), orders=None) -> Plan:
    """The plan of sums for this formula over data with these column kinds and factor values; a row with
    a missing value in the formula's columns or in `require` (other models' columns, for compare) is dropped."""
    refs = dict(refs or {})
    if getattr(formula, "offsets", ()):
        raise ModelSpecError("offset() terms are not summed by the aggregation engines yet",
                             hint="use --engine memory for this formula")
    orders = dict(orders or {})
    variables = learn_variables(formula, factors, refs, orders)
    spec = ModelSpec(formula, variables, dict(scale_state), tuple(factor_columns), refs)
    raws = {name: raw_values(v) for name, v in factors.items()}
    fixed = model_exprs(formula.fixed, formula.intercept, spec, raws, scale_state)
    y = expression(formula.response, scale_state)
    terms = []
    for rt in formula.random:
        cols = model_exprs(rt.terms, rt.intercept, spec, raws, scale_state)
        if not cols:
            raise ModelSpecError(f"random term '({rt.group_label})' has no columns", span=rt.span)
        terms.append(PlanTerm(rt.group_label, tuple(rt.group), tuple(n for n, _ in cols),
                              tuple(e for _, e in cols), rt.correlated))
    used = tuple(sorted(set(formula.columns()) | set(require)))
    floats = tuple(c for c in used if kinds[c] == "float")
    return Plan(formula, spec, deparse(formula.response), fixed, y, terms, used, floats, orders)
