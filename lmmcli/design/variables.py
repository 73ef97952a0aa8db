"""The model's variables: each predictor expression as numeric, matrix or factor; factor levels, --ref, --contrasts."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from lmmcli.design.evaluate import Evaluator, factor_is_numeric, is_factor, is_logical
from lmmcli.design.levels import text_order
from lmmcli.design.transforms import CONTRASTS
from lmmcli.errors import DataError, ModelSpecError
from lmmcli.formula import Formula, Name, deparse

LOGICAL_LEVELS = ("FALSE", "TRUE")


@dataclass
class VarInfo:
    """One variable of the model: a numeric expression, or a factor with its levels (reference first)."""

    label: str
    kind: str                          # "numeric", "matrix" (poly, ns, bs) or "factor"
    levels: tuple[str, ...] = ()


def predictor_terms(formula: Formula):
    """Every term whose variables are predictors: fixed terms, then the left sides of random terms."""
    yield from formula.fixed
    for rt in formula.random:
        yield from rt.terms


def variable_exprs(formula: Formula) -> dict:
    """label -> expression of every predictor variable, in order of appearance."""
    out = {}
    for term in predictor_terms(formula):
        for e in term.factors:
            out.setdefault(deparse(e), e)
    return out


def variable_kinds(formula: Formula, df, forced: set) -> dict[str, VarInfo]:
    """Each variable as numeric, matrix (several columns) or factor (its levels are learned later)."""
    out = {}
    for label, e in variable_exprs(formula).items():
        if is_factor(e, df, forced):
            out[label] = VarInfo(label, "factor", LOGICAL_LEVELS if is_logical(e, df) else ())
        elif getattr(e, "func", None) in ("poly", "ns", "bs"):
            out[label] = VarInfo(label, "matrix")
        else:
            out[label] = VarInfo(label, "numeric")
    return out


def learn_levels(variables: dict, exprs: dict, ev: Evaluator, refs: dict) -> list[str]:
    """Fill in each factor's levels from the rows kept (R drops unused levels); notes for a level named
    "". A factor left with one level is an error, as in R (a logical keeps FALSE and TRUE)."""
    notes = []
    for label, info in variables.items():
        if info.kind != "factor":
            continue
        if info.levels == LOGICAL_LEVELS:   # R codes a logical as factor(x, levels = c(FALSE, TRUE))
            info.levels = _with_ref(label, LOGICAL_LEVELS, refs)
            continue
        e = exprs[label]
        present = {v for v in ev.labels(e).tolist()}
        numeric = factor_is_numeric(e, ev.df, ev.forced) or isinstance(e, Name) and ev.df[e.name].dtype.kind in "iuf"
        if numeric:
            levels = tuple(sorted(present, key=float))
        elif isinstance(e, Name) and ev.df.orders.get(e.name) is not None:
            levels = tuple(c for c in ev.df.orders[e.name] if c in present)
        else:
            levels = tuple(sorted(present, key=text_order))
        if len(levels) < 2:
            raise DataError(f"'{label}' has only one level ('{levels[0] if levels else ''}') in the rows used: "
                            "contrasts can be applied only to factors with 2 or more levels",
                            hint="drop it from the formula, or check the rows dropped for missing values")
        if "" in levels:
            notes.append(f"factor '{label}' has a level named \"\" (empty text is a value, as in R's read.csv)")
        info.levels = _with_ref(label, levels, refs)
    return notes


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


def resolve_contrasts(contrasts: dict | None, variables: dict) -> dict[str, str]:
    """--contrasts as {factor label: kind}: the key "" applies to every factor; unknown names and kinds
    are errors."""
    contrasts = dict(contrasts or {})
    for label, kind in contrasts.items():
        if kind not in CONTRASTS:
            raise ModelSpecError(f"--contrasts: unknown kind '{kind}'", hint="use one of " + ", ".join(CONTRASTS))
        if label and (label not in variables or variables[label].kind != "factor"):
            raise ModelSpecError(f"--contrasts {label}={kind}: '{label}' is not a factor of the model")
    default = contrasts.pop("", "treatment")
    return {label: contrasts.get(label, default) for label, info in variables.items()
            if info.kind == "factor" and contrasts.get(label, default) != "treatment"}
