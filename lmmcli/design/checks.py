"""Checks that the data can support the model, run by design.build_design before anything is fitted.

Each failure is one clear DataError or ModelSpecError. The random-effects checks mirror lme4's
(lFormula's checkNlevels and checkZdims with 'stop', checkZrank with 'warning'): a grouping factor
needs at least 2 levels and fewer levels than observations; each term needs fewer random effects than
observations; and when all terms together leave Z with rank n or more, the fit carries a warning.
"""

from __future__ import annotations

import numpy as np

from lmmcli.errors import DataError, ModelSpecError
from lmmcli.formula import Formula, Name, deparse, names_in
from lmmcli.io.frame import missing

RANK_MAX_CELLS = 1_000_000   # n * q above this: rank(Z) is skipped (lme4's "Small" levels use the same 1e6 limit)


# -- before the rows are cleaned -------------------------------------------------------------
def check_formula_columns(formula: Formula) -> None:
    """The response's column may not also be a predictor or a grouping factor."""
    if formula.response is None:
        return
    lhs = names_in(formula.response)
    rhs = set()
    for term in formula.fixed:
        for f in term.factors:
            rhs |= names_in(f)
    for rt in formula.random:
        rhs |= set(rt.group)
        for term in rt.terms:
            for f in term.factors:
                rhs |= names_in(f)
    both = sorted(lhs & rhs)
    if both:
        name = both[0]
        raise ModelSpecError(f"column '{name}' is on both sides of '~': it cannot explain itself",
                             hint=f"remove '{name}' from the right-hand side", text=formula.text,
                             span=_span_after_tilde(formula.text, name))


def _span_after_tilde(text: str, name: str):
    """Where the name appears right of '~' (for the caret)."""
    i = text.find(name, text.find("~") + 1)
    return (i, i + len(name)) if i >= 0 else None


def check_response(formula: Formula, df) -> None:
    """A plain-column response must be numeric and not entirely missing."""
    if not isinstance(formula.response, Name):
        return
    col = formula.response.name
    s = df[col]
    gone = missing(s)
    if gone.all():
        raise DataError(f"every value of the response '{col}' is missing")
    if s.dtype.kind not in "iufc":
        example = str(s[~gone][0])
        kind = "TRUE/FALSE values" if s.dtype == bool else f"text such as '{example}'"
        raise DataError(f"the response '{col}' is not numeric: it holds {kind}",
                        hint="lmm fits linear mixed models of a numeric response")


def check_refs(refs: dict, formula: Formula, variables: dict) -> None:
    """Each --ref must name a factor of the model (a level check happens when the levels are learned)."""
    for col in refs:
        info = variables.get(deparse(Name(col)))
        if info is None:
            raise ModelSpecError(f"--ref {col}={refs[col]}: '{col}' is not a predictor in the formula")
        if info.kind != "factor":
            raise ModelSpecError(f"--ref {col}={refs[col]}: '{col}' is numeric, so it has no reference level",
                                 hint=f"add --factor {col} to treat it as a factor")


# -- after the matrices are built -------------------------------------------------------------
def check_values(response: str, y: np.ndarray, names, X: np.ndarray, rows: np.ndarray) -> None:
    """Finite response, finite predictors, a response that varies."""
    _finite(f"the response '{response}'", y, rows)
    if not np.isfinite(X).all():      # one pass over X; column by column only to name the bad one
        for j, name in enumerate(names):
            _finite(f"the predictor '{name}'", X[:, j], rows)
    if len(y) > 0 and np.all(y == y[0]):
        raise DataError(f"the response '{response}' is constant (every value is {y[0]:.15g}); "
                        "there is no variation to model")


def _finite(what: str, v: np.ndarray, rows: np.ndarray) -> None:
    bad = ~np.isfinite(v)
    if bad.any():
        first = int(np.argmax(bad))
        kind = "infinite" if np.isinf(v[first]) else "undefined (NaN)"
        raise DataError(f"{what} has {kind} values in {int(bad.sum())} row{'s' if bad.sum() > 1 else ''} "
                        f"(first: row {int(rows[first]) + 1} of the data, value {v[first]})",
                        hint="remove those rows, or transform the variable so it stays finite")


def check_random_effects(blocks, rows: np.ndarray, residual: bool = True) -> list[str]:
    """Finite random-effect columns, lme4's checkNlevels and checkZdims (errors); checkZrank's warning, if any.

    Without a residual variance (glmer's binomial and Poisson), only the first two checks apply, as
    glmerControl's defaults: an observation-level random effect is allowed there.
    """
    n = len(rows)
    for blk in blocks:
        for j, term in enumerate(blk.terms):
            _finite(f"'{term}' in the random term for '{blk.group}'", blk.Z[:, j], rows)
    if not residual:
        for blk in blocks:
            if blk.nlevels < 2:
                raise DataError(f"grouping factor '{blk.group}' has only {blk.nlevels} level; "
                                "grouping factors must have > 1 sampled level")
        return []
    for blk in blocks:
        if blk.nlevels < 2:
            raise DataError(f"grouping factor '{blk.group}' has only {blk.nlevels} level; "
                            "grouping factors must have > 1 sampled level")
        if blk.nlevels >= n:
            raise DataError(f"grouping factor '{blk.group}' has {blk.nlevels} levels for {n} observations; "
                            "the number of levels of each grouping factor must be < number of observations",
                            hint="each group needs more than one observation on average (lme4's checkNlevels)")
    for blk in blocks:
        q = blk.nlevels * blk.p
        if q >= n:
            raise DataError(f"number of observations (={n}) <= number of random effects (={q}) for term "
                            f"({' + '.join(blk.terms)} | {blk.group}); the random-effects parameters and the "
                            "residual variance are probably unidentifiable",
                            hint="use fewer random slopes, or a grouping factor with fewer levels")
    return _check_rank(blocks, n)


def _check_rank(blocks, n: int) -> list[str]:
    """rank(Z) < n, else a warning (only possible when the terms together have n or more random effects).

    A warning, not an error: lme4's default skips this check, and such a model can still have a
    unique optimum when the terms' structures differ; --strict turns it into exit code 3.
    """
    q = sum(blk.nlevels * blk.p for blk in blocks)
    if q < n or n * q > RANK_MAX_CELLS:
        return []
    Z = np.zeros((n, q))
    start = 0
    for blk in blocks:
        for j in range(blk.p):
            Z[np.arange(n), start + blk.codes * blk.p + j] = blk.Z[:, j]
        start += blk.nlevels * blk.p
    rank = int(np.linalg.matrix_rank(Z))
    if rank >= n:
        return [f"number of observations (={n}) <= rank(Z) (={rank}); the random-effects parameters "
                "and the residual variance are probably unidentifiable"]
    return []
