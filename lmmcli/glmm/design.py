"""A GLMM's design: the linear model's Design plus glmer's response (y, prior weights), offsets and family.

Binomial responses, as R's binomial()$initialize reads them:
  - cbind(successes, failures): y = successes / (successes + failures), prior weights = the trials;
  - a factor (text, or a number column named by --factor) or TRUE/FALSE column: success is any level
    but the first (FALSE, or the first level in sorted order), so a two-level factor's second level
    is the success;
  - a number in [0, 1]: a 0/1 outcome, or a proportion whose trials are given by --weights.
Poisson responses are non-negative counts. offset(expr) terms are summed into the offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmmcli.design.design import Design, build_design
from lmmcli.design.levels import sorted_levels, value_labels
from lmmcli.errors import DataError, ModelSpecError
from lmmcli.formula import Call, Formula, Name, deparse
from lmmcli.glmm.family import Family
from lmmcli.io.frame import as_frame, missing


@dataclass
class GlmmDesign:
    """Design (X, blocks, rows) with glmer's y, prior weights and offset on the same rows."""

    design: Design
    family: Family
    y: np.ndarray
    weights: np.ndarray            # prior weights: binomial trials times --weights
    offset: np.ndarray
    response_kind: str             # "cbind", "factor", "logical" or "numeric"
    weights_column: str | None = None
    trials: np.ndarray | None = None  # binomial: the cbind() totals (1 for a one-column response)
    offset_terms: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def build_glmm_design(formula: Formula, df, family: Family, weights: str | None = None, factor_columns=(),
                      refs=None, source: str = "the data", contrasts: dict | None = None) -> GlmmDesign:
    """Build the design of a GLMM: the response read for the family, prior weights times trials, offsets."""
    df = as_frame(df)
    if formula.response is None:
        raise ModelSpecError("the formula has no response (left of '~')", text=formula.text, span=(0, 1))
    got = {}

    def response(ev):
        y, trials, kind = _response(ev, formula.response, family, factor_columns)
        got.update(trials=trials, kind=kind)
        return y

    design = build_design(formula, df, factor_columns, refs, source, weights=weights, response=response,
                          residual=False, contrasts=contrasts)
    if not design.blocks:
        raise ModelSpecError("the formula has no random-effects terms such as (1 | group)",
                             hint="a GLMM needs at least one; lmm does not fit plain GLMs")
    n = design.n
    prior = np.ones(n) if design.weights is None else design.weights
    offset = np.zeros(n) if design.offset is None else design.offset
    wt = prior * got["trials"][design.rows]
    warns = _response_warnings(family, design.y, wt, got["kind"])
    return GlmmDesign(design, family, design.y, wt, offset, got["kind"], weights, got["trials"][design.rows],
                      [deparse(e) for e in formula.offsets], warns)


def _response(ev, resp, family: Family, factor_columns=()):
    """(y, trials, kind) of the response expression for the family."""
    if isinstance(resp, Call) and resp.func == "cbind":
        if family.name != "binomial":
            raise ModelSpecError("cbind(successes, failures) is a binomial response", hint="use --family binomial")
        s, f = ev.numeric(resp.args[0]), ev.numeric(resp.args[1])
        if np.any(s < 0) or np.any(f < 0):        # (NaN compares False: missing counts pass)
            raise DataError("cbind(successes, failures): the counts must be non-negative")
        n = s + f
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(n > 0, s / np.where(n > 0, n, 1.0), 0.0)
        return np.where(np.isnan(n), np.nan, y), n, "cbind"      # a missing count drops the row
    if isinstance(resp, Name) and (resp.name in factor_columns or not _numeric_column(ev.df[resp.name])):
        if family.name != "binomial":
            raise DataError(f"the response '{resp.name}' is not numeric; a {family.name} response must be counts")
        col = ev.df[resp.name]
        gone = missing(col)
        labels = value_labels(col)
        levels = sorted_levels(col[~gone])
        if len(levels) < 2:
            raise DataError(f"the response '{resp.name}' has only one level ('{levels[0] if levels else ''}'); "
                            "there is no variation to model")
        kind = "logical" if col.dtype == bool else "factor"
        y = np.where(gone, np.nan, (labels != levels[0]).astype(float))
        return y, np.ones(len(labels)), kind
    y = ev.numeric(resp)
    return y, np.ones(len(y)), "numeric"


def _numeric_column(col) -> bool:
    return col.dtype.kind in "iuf"


def _response_warnings(family: Family, y, wt, kind) -> list[str]:
    """Errors for responses out of the family's range (R's), warnings for non-integer counts."""
    if family.name == "binomial":
        if np.any(y < 0) or np.any(y > 1):
            raise DataError("a binomial response must be between 0 and 1 (0/1, a proportion with --weights, "
                            "or cbind(successes, failures))", hint="use --family poisson for counts")
        k = wt * y
        if np.any(np.abs(k - np.round(k)) > 1e-7):
            return ["non-integer #successes in a binomial glm (as R warns): is --weights the number of trials?"]
        return []
    if np.any(y < 0):
        raise DataError("negative values are not allowed for the Poisson family")
    frac = np.abs(y - np.round(y)) > 1e-7
    if np.any(frac):
        first = float(y[np.argmax(frac)])
        return [f"non-integer counts in a Poisson model ({int(frac.sum())} rows, the first {first:g}): the "
                "likelihood is not a Poisson one (glmer warns 'non-integer x', its deviance is Inf and its fit "
                "stays at the start); lmm uses the Poisson deviance with log Gamma(y + 1), a quasi-likelihood"]
    return []
