"""Likelihood-ratio tests between models, as lme4's anova(m1, m2, ...).

The models are fitted to the same rows (those complete in every model's columns), ordered by their
number of parameters, and each is tested against the one before it: Chisq = 2 (logLik_i - logLik_{i-1})
(clamped at 0, as lme4), Df = npar_i - npar_{i-1}, p = P(chi^2_Df > Chisq).

Fitting criterion. lme4's anova() refits REML fits by ML unless refit = FALSE; so do we: without
--ml the models are fitted by ML (the same optimum refitML would reach) and the result says so.
With refit = False the REML criteria are compared, which is only meaningful when the fixed effects
are the same (REML likelihoods of different X are likelihoods of different data); otherwise we
refuse with a UsageError (exit code 2: the option contradicts the formulas given).

A model without random terms is an ordinary linear model (zero random blocks in the engine: its ML
objective is -2 logLik of lm). Testing a variance against 0 puts the null on the boundary of the
parameter space, so the chi-square p-value is conservative; the result notes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmmcli.design.design import build_design, check_columns, complete_rows
from lmmcli.design.variables import predictor_terms
from lmmcli.distributions import chi2_sf
from lmmcli.errors import DataError, ModelSpecError, UsageError
from lmmcli.fit import FittedModel, fit_design
from lmmcli.formula import Formula, Name, deparse, parse_formula
from lmmcli.io.frame import as_frame
from lmmcli.results import SCHEMA_VERSION, clean

REFIT_NOTE = ("models fitted by ML instead of REML (lme4's anova() refits REML fits by ML); "
              "use --no-refit to compare REML fits of models with the same fixed effects")
NO_REFIT_NOTE = ("REML criteria compared (--no-refit), as lme4's anova(refit = FALSE); valid here because "
                 "the fixed effects are the same")
BOUNDARY_NOTE = ("a model without random effects is compared with mixed models: the variance tested sits on "
                 "the boundary of its parameter space (0), so the chi-square p-value is conservative (too large)")


@dataclass
class ComparedModel:
    """One row of the comparison table."""

    name: str                     # M1, M2, ... in the order the formulas were given
    formula: str
    model: str                    # "lmer" or "lm"
    npar: int
    aic: float
    bic: float
    loglik: float
    deviance: float               # -2 logLik (the REML criterion under --no-refit)
    chisq: float | None = None
    df: int | None = None
    p_value: float | None = None
    converged: bool = True
    singular: bool = False


@dataclass
class CompareResult:
    """lme4's anova() table for several models fitted to the same rows."""

    models: list[ComparedModel]
    refit: bool                   # REML fits were replaced by ML fits
    method: str                   # criterion compared: "ML" or "REML"
    response: str
    nobs: int
    n_input: int
    n_dropped: int
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        """The JSON document."""
        return clean(self)


# -- the common rows -------------------------------------------------------------------------
def parse_all(texts) -> list[Formula]:
    """Parse every formula; at least two, all with the same response."""
    if len(texts) < 2:
        raise UsageError("compare needs at least two formulas")
    formulas = [parse_formula(t) for t in texts]
    for f in formulas:
        if f.response is None:
            raise ModelSpecError("the formula has no response (left of '~')", text=f.text, span=(0, 1))
    responses = {deparse(f.response) for f in formulas}
    if len(responses) > 1:
        raise ModelSpecError(f"the models have different responses ({', '.join(sorted(responses))}); "
                             "likelihoods of different responses cannot be compared")
    return formulas


def common_rows(formulas, df, source: str, weights: str | None = None) -> np.ndarray:
    """Positions of the rows complete in the columns of every model (so all models see the same data)."""
    used: set[str] = {weights} if weights else set()
    for f in formulas:
        check_columns(f, df, source)
        used |= set(f.columns())
    rows = complete_rows(df, sorted(used))
    if len(rows) == 0:
        raise DataError("no rows are complete in the columns of all models")
    return rows


# -- fitting -------------------------------------------------------------------------------
def predictors(f: Formula) -> set[str]:
    """Labels of the formula's predictor variables (fixed terms and left sides of random terms)."""
    return {deparse(e) for t in predictor_terms(f) for e in t.factors}


def refs_for(f: Formula, refs: dict, formulas) -> dict:
    """The --ref settings that concern this formula; one that concerns no formula is kept, to be refused."""
    every = set().union(*(predictors(g) for g in formulas))
    return {c: lv for c, lv in refs.items() if deparse(Name(c)) in predictors(f) or deparse(Name(c)) not in every}


def fit_on_rows(formulas, df, reml: bool, factors, refs, source, weights=None, contrasts=None) -> list[FittedModel]:
    """Build each design on the same rows, check REML comparability, fit by the chosen criterion."""
    designs = [build_design(f, df, factors, refs_for(f, refs, formulas), source, weights=weights,
                            contrasts=contrasts_for(f, contrasts)) for f in formulas]
    if reml:
        check_same_fixed(designs)
    return [fit_design(f, d, reml) for f, d in zip(formulas, designs)]


def contrasts_for(f: Formula, contrasts: dict | None) -> dict:
    """The --contrasts settings that concern this formula (every factor's, and those of its own factors)."""
    return {c: k for c, k in (contrasts or {}).items() if not c or c in predictors(f)}


def check_same_fixed(designs) -> None:
    """REML criteria are comparable only for the same fixed effects: refuse otherwise, saying why."""
    first = designs[0].fixed_names
    for k, d in enumerate(designs[1:], start=2):
        if d.fixed_names != first:
            raise UsageError(
                f"--no-refit compares REML fits, which is only valid when the fixed effects are the same; "
                f"M1 has ({', '.join(first) or 'none'}) but M{k} has ({', '.join(d.fixed_names) or 'none'})",
                hint="drop --no-refit to refit by ML (as lme4's anova() does), or pass --ml")


def _row(name: str, fm: FittedModel) -> ComparedModel:
    """npar, AIC, BIC, logLik and deviance of one fitted model."""
    n, npar, ll = fm.design.n, fm.npar(), fm.loglik()
    return ComparedModel(name, str(fm.formula.text), "lmer" if fm.blocks else "lm", npar,
                         -2 * ll + 2 * npar, -2 * ll + np.log(n) * npar, ll, -2 * ll,
                         converged=fm.opt.converged, singular=bool(fm.blocks) and fm.is_singular())


def lr_tests(rows: list[ComparedModel]) -> list[ComparedModel]:
    """Order by npar (stable) and test each model against the previous one."""
    rows = sorted(rows, key=lambda r: r.npar)
    for prev, cur in zip(rows, rows[1:]):
        cur.chisq = 2.0 * max(0.0, cur.loglik - prev.loglik)
        cur.df = cur.npar - prev.npar
        cur.p_value = float(chi2_sf(cur.chisq, cur.df)) if cur.df > 0 else None
    return rows


def _warnings(fits) -> list[str]:
    """Each model's fit warnings, labelled with its name."""
    return [f"M{k}: {w}" for k, fm in enumerate(fits, start=1) for w in fm.result().warnings]


def dropped_note(n_dropped: int, nobs: int) -> str:
    """The note for rows left out so that every model sees the same rows."""
    return (f"{n_dropped} row{'s' if n_dropped > 1 else ''} with missing values in the columns of at least one "
            f"model dropped, so all models use the same {nobs} rows")


def _notes(fits, refit: bool, reml: bool, n_dropped: int, nobs: int) -> list[str]:
    """What the reader must know to read the table: dropped rows, the criterion, the boundary."""
    notes = []
    if n_dropped:
        notes.append(dropped_note(n_dropped, nobs))
    if refit:
        notes.append(REFIT_NOTE)
    if reml:
        notes.append(NO_REFIT_NOTE)
    kinds = {bool(fm.blocks) for fm in fits}
    if kinds == {True, False}:
        notes.append(BOUNDARY_NOTE)
    return notes


def compare(texts, df, ml: bool = False, refit: bool = True, factors=(), refs=None,
            source: str = "the data", weights: str | None = None, contrasts: dict | None = None) -> CompareResult:
    """anova(m1, m2, ...): fit every formula to the common rows and run the likelihood-ratio tests."""
    formulas = parse_all(texts)
    if weights is not None and weights not in as_frame(df).columns:
        raise ModelSpecError(f"--weights names column '{weights}', which is not in {source}")
    rows = common_rows(formulas, df, source, weights)
    data = as_frame(df).take(rows)
    reml = not ml and not refit
    fits = fit_on_rows(formulas, data, reml, tuple(factors), dict(refs or {}), source, weights, contrasts)
    return compared(formulas, fits, ml, refit, len(rows), len(df))


def compared(formulas, fits, ml: bool, refit: bool, nobs: int, n_input: int) -> CompareResult:
    """The likelihood-ratio table of models fitted to the same nobs rows (of n_input), with its notes."""
    reml = not ml and not refit
    refitted = not ml and refit and any(f.random for f in formulas)
    table = lr_tests([_row(f"M{k}", fm) for k, fm in enumerate(fits, start=1)])
    return CompareResult(table, refitted, "REML" if reml else "ML", deparse(formulas[0].response), nobs,
                         n_input, n_input - nobs, _notes(fits, refitted, reml, n_input - nobs, nobs), _warnings(fits))
