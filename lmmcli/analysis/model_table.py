"""The side-by-side table of several models (as R's modelsummary or sjPlot's tab_model): per model the fixed
effects with standard errors (or Wald intervals), the random-effect sds and correlations, the residual sd, the
number of observations and of groups, ICC, R², AIC, BIC and the log-likelihood.

Each model is fitted to the rows complete in its own columns (so Num.Obs. may differ between models, as in
modelsummary). The numbers are those `lmm fit` reports: lme4's estimates, lmerTest's Satterthwaite df and
p-values, the ICC (adjusted) and Nakagawa's R² as the performance package computes them; a formula without
random terms is an lm with R²  and its ML log-likelihood. Intervals (--ci) are Wald intervals with normal
quantiles, as lme4's confint(method = "Wald").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lmmcli.compare import contrasts_for, refs_for
from lmmcli.design.design import build_design
from lmmcli.distributions import interval_z
from lmmcli.errors import UsageError
from lmmcli.fit import analyze, fit_design
from lmmcli.formula import parse_formula
from lmmcli.results import SCHEMA_VERSION, clean


@dataclass
class Coefficient:
    """One fixed effect of one model."""

    term: str
    estimate: float
    std_error: float
    df: float | None
    p_value: float | None
    conf_low: float | None = None
    conf_high: float | None = None


@dataclass
class RandomSd:
    """The sd of one random effect (group, term), or the residual sd (group 'Residual', term None)."""

    group: str
    term: str | None
    sd: float


@dataclass
class RandomCor:
    """The correlation of two random effects of one group."""

    group: str
    term1: str
    term2: str
    value: float


@dataclass
class TableModel:
    """One column of the table."""

    name: str
    formula: str
    model: str                      # "lmer" or "lm"
    method: str                     # "REML", "ML" or "OLS"
    nobs: int
    ngroups: dict[str, int]
    fixed: list[Coefficient]
    sds: list[RandomSd]
    correlations: list[RandomCor]
    icc: float | None
    r2_marginal: float | None
    r2_conditional: float | None
    r2: float | None                # lm only
    aic: float
    bic: float
    loglik: float
    warnings: list[str] = field(default_factory=list)


@dataclass
class ModelTable:
    """The models side by side, and how to read the intervals."""

    models: list[TableModel]
    ci_level: float | None          # None: standard errors are shown
    df_method: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        """The JSON document."""
        return clean(self)


def _coefficients(report, z: float | None) -> list[Coefficient]:
    out = []
    for fe in report.fixed_effects:
        c = Coefficient(fe.term, fe.estimate, fe.std_error, fe.df, fe.p_value)
        if z is not None:
            c.conf_low, c.conf_high = fe.estimate - z * fe.std_error, fe.estimate + z * fe.std_error
        out.append(c)
    return out


def table_model(name: str, analysis, z: float | None) -> TableModel:
    """A TableModel from fit.analyze's result (a mixed model or an lm)."""
    r = analysis.report
    fixed = _coefficients(r, z)
    if not analysis.mixed:
        return TableModel(name, r.formula, "lm", r.method, r.nobs, {}, fixed, [RandomSd("Residual", None, r.sigma)],
                          [], None, None, None, r.r_squared, r.aic, r.bic, r.loglik, list(r.warnings))
    sds = [RandomSd(vc.group, vc.term, vc.sd) for vc in r.variance_components]
    cors = [RandomCor(c.group, c.term1, c.term2, c.correlation) for c in r.correlations]
    extra = r.extra
    return TableModel(name, r.formula, "lmer", r.method, r.nobs, dict(r.ngroups), fixed, sds, cors,
                      (extra.get("icc") or {}).get("adjusted"), extra.get("r2_marginal"),
                      extra.get("r2_conditional"), None, r.aic, r.bic, r.loglik, list(r.warnings))


def model_table(texts, df, ml: bool = False, df_method: str = "satterthwaite", ci_level: float | None = None,
                factors=(), refs=None, source: str = "the data", weights: str | None = None,
                contrasts: dict | None = None) -> ModelTable:
    """Fit every formula to the data (with the same prior weights and contrasts) and put the models side by
    side."""
    if not texts:
        raise UsageError("give at least one formula")
    if ml and df_method == "kenward-roger":
        raise UsageError("Kenward-Roger's method needs REML fits", hint="drop --ml, or use --df satterthwaite")
    z = interval_z(ci_level) if ci_level is not None else None
    models = []
    formulas = [parse_formula(text) for text in texts]
    for k, formula in enumerate(formulas, start=1):
        design = build_design(formula, df, factors, refs_for(formula, refs or {}, formulas), source, weights,
                              contrasts_for(formula, contrasts))
        fm = fit_design(formula, design, reml=not ml)
        models.append(table_model(f"({k})", analyze(fm, df_method), z))
    notes = []
    if ci_level is not None:
        notes.append(f"{100 * ci_level:g}% Wald confidence intervals (normal quantiles) in brackets")
    else:
        notes.append("standard errors in parentheses")
    if len({m.method for m in models}) > 1:
        notes.append("the models were fitted by different criteria (REML, ML, OLS): their AIC, BIC and "
                     "log-likelihoods are not comparable")
    warnings = [f"{m.name}: {w}" for m in models for w in m.warnings]
    return ModelTable(models, ci_level, df_method, notes, warnings)
