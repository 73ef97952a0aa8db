"""Summaries as R prints them: lmer's (lme4 / lmerTest summary()), lm's, lme4's anova() of models, and
ranef/coef tables. They format; they compute nothing."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from lmmcli.render.numbers import fmt, fmt_column, fmt_p  # noqa: F401  (re-exported)
from lmmcli.render.text import _rows_table, _table, _warnings_text, rows_table, to_json, to_text  # noqa: F401
from lmmcli.results import FitResult


# -- the summary -----------------------------------------------------------------------------
def _header(r: FitResult) -> Text:
    text = Text()
    text.append(f"Linear mixed model fit by {'REML' if r.method == 'REML' else 'maximum likelihood'}\n",
                style="bold")
    text.append(f"Formula: {r.formula}\n")
    if r.extra.get("engine") not in (None, "memory"):
        text.append(f"Engine: {r.extra['engine']} (aggregated from the data files; the rows were not loaded)\n")
    if r.method == "REML":
        text.append(f"REML criterion at convergence: {r.reml_criterion:.4f}\n")
    else:
        text.append(f"AIC {r.aic:.4f}   BIC {r.bic:.4f}   logLik {r.loglik:.4f}   "
                    f"deviance {r.deviance:.4f}   df.resid {r.df_resid}\n")
    return text


def _residuals_table(r: FitResult) -> Table:
    t = _table("Min", "1Q", "Median", "3Q", "Max", title="Scaled residuals")
    s = r.scaled_residuals
    t.add_row(*(f"{s[k]:.4f}" for k in ("min", "q1", "median", "q3", "max")))
    return t


def _random_table(r: FitResult) -> Table:
    cor = {}
    for c in r.correlations:
        cor[(c.group, c.term2, c.term1)] = c.correlation
    t = _table("Groups", "Name", "Variance", "Std.Dev.", "Corr", title="Random effects")
    last = None
    variances = fmt_column([vc.variance for vc in r.variance_components])
    sds = fmt_column([vc.sd for vc in r.variance_components])
    for vc, var_text, sd_text in zip(r.variance_components, variances, sds):
        terms_before = [v.term for v in r.variance_components if v.group == vc.group][:]
        idx = terms_before.index(vc.term)
        corr = " ".join(f"{cor[(vc.group, vc.term, t2)]:.2f}" for t2 in terms_before[:idx]
                        if (vc.group, vc.term, t2) in cor)
        group = vc.group if vc.group != last else ""
        last = vc.group
        t.add_row(group, vc.term or "", var_text, sd_text, corr)
    return t


def _groups_line(r: FitResult) -> Text:
    groups = ", ".join(f"{g}, {n}" for g, n in r.ngroups.items())
    line = f"Number of obs: {r.nobs}" + (f", groups: {groups}" if groups else "")
    if r.n_dropped:
        line += f"  ({r.n_dropped} rows with missing values dropped)"
    return Text(line)


def fixed_effects_table(r: FitResult) -> Table:
    """Estimate, Std. Error, [df], t value, [Pr(>|t|)], [interval] per fixed effect."""
    fes = r.fixed_effects
    has_df = any(fe.df is not None for fe in fes)
    has_p = any(fe.p_value is not None for fe in fes)
    has_ci = any(fe.conf_low is not None for fe in fes)
    cols = ["", "Estimate", "Std. Error"] + (["df"] if has_df else []) + ["t value"]
    cols += (["Pr(>|t|)"] if has_p else []) + (["lower", "upper"] if has_ci else [])
    est = fmt_column([fe.estimate for fe in fes])
    ses = fmt_column([fe.std_error for fe in fes])
    rows = []
    for fe, est_text, se_text in zip(fes, est, ses):
        row = [fe.term, est_text, se_text] + ([fmt(fe.df)] if has_df else [])
        row += [f"{fe.statistic:.3f}"] + ([fmt_p(fe.p_value)] if has_p else [])
        row += [fmt(fe.conf_low), fmt(fe.conf_high)] if has_ci else []
        rows.append(row)
    return _rows_table(cols, rows, "Fixed effects")

def _abbrev(name: str) -> str:
    """R's abbreviate() flavour for the correlation table's column heads."""
    return "(Intr)" if name == "(Intercept)" else name[:6]


def _fixed_corr_table(r: FitResult) -> Table | None:
    import numpy as np

    p = len(r.fixed_effects)
    if p < 2:
        return None
    V = np.array(r.vcov, dtype=float)
    d = np.sqrt(np.diag(V))
    C = V / np.outer(d, d)
    names = r.fixed_names
    t = _table("", *[_abbrev(n) for n in names[:-1]], title="Correlation of fixed effects")
    for i in range(1, p):
        t.add_row(names[i], *[f"{C[i, j]:.3f}" for j in range(i)], *[""] * (p - 1 - i))
    return t


DF_METHOD_LABELS = {
    "satterthwaite": "Satterthwaite's method (as lmerTest)",
    "kenward-roger": "Kenward-Roger's method (as pbkrtest/lmerTest); standard errors adjusted",
    "residual": "residual degrees of freedom (n - p)",
    "none": "none (t values only, as lme4)",
}


def _df_method_line(r: FitResult) -> Text | None:
    """Which df method the fixed-effects table's df and p-values come from (FitResult.extra['df_method'])."""
    method = r.extra.get("df_method")
    if method is None:
        return None
    return Text(f"df and p-values: {DF_METHOD_LABELS.get(method, method)}", style="dim")


def variance_summary_renderables(r: FitResult) -> list:
    """mixedup's extract_vc (variance, sd, [sd interval], share of the total) and ICC / Nakagawa's R^2."""
    if "icc" not in r.extra:
        return []
    vcs = r.variance_components
    has_ci = any(vc.conf_low is not None for vc in vcs)
    t = _table("Group", "Term", "Variance", "Std.Dev.", *(["sd lower", "sd upper"] if has_ci else []), "Share",
               title="Variance components")
    columns = [fmt_column([getattr(vc, k) for vc in vcs]) for k in ("variance", "sd", "conf_low", "conf_high")]
    for vc, var_text, sd_text, lo_text, hi_text in zip(vcs, *columns):
        ci = [lo_text, hi_text] if has_ci else []
        t.add_row(vc.group, vc.term or "", var_text, sd_text, *ci, "" if vc.share is None else f"{vc.share:.3f}")
    icc, e = r.extra["icc"], r.extra
    line = (f"ICC adjusted {fmt(icc.get('adjusted'), 3)}, unadjusted {fmt(icc.get('unadjusted'), 3)};  "
            f"R\u00b2 marginal {fmt(e.get('r2_marginal'), 3)}, conditional {fmt(e.get('r2_conditional'), 3)} "
            "(Nakagawa)")
    return [t, Text(line)]


CI_METHOD_LABELS = {
    "wald": "Wald, from the standard errors; none for variance parameters (as lme4)",
    "profile": "profile likelihood of the ML deviance (as lme4's confint)",
    "boot": "parametric bootstrap, percentile",
}


def interval_renderables(r: FitResult) -> list:
    """With --ci: intervals of the random-effect correlations (lme4's names) and a line naming the method.
    The fixed effects' intervals are in their table, the sds' and sigma's in the variance components."""
    method = r.extra.get("ci_method")
    if method is None:
        return []
    level = r.extra.get("ci_level", 0.95)
    boot = r.extra.get("ci_bootstrap") or {}
    parts = []
    if r.correlations:
        t = _table("Parameter", "Estimate", "lower", "upper",
                   title=f"Correlations, {100 * level:g}% intervals")
        t.columns[0].justify = "left"
        for c in r.correlations:
            t.add_row(f"cor_{c.term2}.{c.term1}|{c.group}", fmt(c.correlation), fmt(c.conf_low), fmt(c.conf_high))
        parts.append(t)
    how = CI_METHOD_LABELS.get(method, method)
    if boot:
        how += f", {boot['nsim']} simulations, seed {boot['seed']}"
        how += f", {boot['failed']} failed" if boot["failed"] else ""
    return parts + [Text(f"{100 * level:g}% confidence intervals: {how}", style="dim")]


CORRELATION_MAX = 12     # lme4's lme4.summary.cor.max: the correlation table only up to this many fixed effects


def _correlation_parts(r: FitResult, correlation: bool | None) -> list:
    """The fixed effects' correlation table (by default only for p <= CORRELATION_MAX, as lme4), or lme4's note."""
    p = len(r.fixed_effects)
    if correlation is False or (correlation is None and p > CORRELATION_MAX):
        if correlation is None:
            return [Text(""), Text(f"Correlation matrix not shown by default, as p = {p} > {CORRELATION_MAX}. "
                                   "Use --correlation or --format json (vcov) if you need it.", style="dim")]
        return []
    corr = _fixed_corr_table(r)
    return [] if corr is None else [Text(""), corr]


def summary_renderables(r: FitResult, extra_sections=(), correlation: bool | None = None) -> list:
    """The parts of lme4's summary(), in its order; extra sections go before the warnings.

    correlation: show the fixed effects' correlation table (None: when p <= CORRELATION_MAX, as lme4)."""
    parts = [_header(r), _residuals_table(r), Text(""), _random_table(r), _groups_line(r), Text(""),
             fixed_effects_table(r)]
    method = _df_method_line(r)
    if method is not None:
        parts.append(method)
    parts += _correlation_parts(r, correlation)
    vc_parts = variance_summary_renderables(r)
    if vc_parts:
        parts += [Text("")] + vc_parts
    ci_parts = interval_renderables(r)
    if ci_parts:
        parts += [Text("")] + ci_parts
    for section in extra_sections:
        parts += [Text(""), section]
    warn = _warnings_text(r)
    if warn is not None:
        parts.append(warn)
    return parts


# -- the summary as text --------------------------------------------------------------------
def fit_table(r: FitResult, width: int = 100, color: bool = False, correlation: bool | None = None) -> str:
    """The summary as text (correlation: as summary_renderables)."""
    return to_text(summary_renderables(r, correlation=correlation), width, color)


# -- ordinary linear model (lm.LmResult) and model comparison (compare.CompareResult) ---------
QUANTILE_KEYS = ("min", "q1", "median", "q3", "max")


def _lm_fit_lines(r) -> Text:
    """The closing lines of R's summary(lm()): residual SE, R^2, F test, then n and the likelihood."""
    lines = [f"Residual standard error: {fmt(r.sigma)} on {r.df_resid} degrees of freedom",
             f"Multiple R-squared: {fmt(r.r_squared)},  Adjusted R-squared: {fmt(r.adj_r_squared)}"]
    if r.f_statistic is not None:
        lines.append(f"F-statistic: {fmt(r.f_statistic)} on {r.f_df1} and {r.f_df2} DF,  "
                     f"p-value: {fmt_p(r.f_p_value)}")
    dropped = f"  ({r.n_dropped} rows with missing values dropped)" if r.n_dropped else ""
    lines.append(f"Number of obs: {r.nobs}{dropped}")
    lines.append(f"logLik {r.loglik:.4f} (df={r.npar})   AIC {r.aic:.4f}   BIC {r.bic:.4f}")
    return Text("\n".join(lines))


def lm_table(r, width: int = 100, color: bool = False) -> str:
    """An LmResult as R's summary(lm()): residuals, coefficients with t tests, residual SE, R^2, F."""
    from dataclasses import replace
    from types import SimpleNamespace

    head = Text()
    head.append("Linear model fit by least squares (lm)\n", style="bold")
    head.append(f"Formula: {r.formula}\n")
    head.append(f"note: {r.note}\n")
    res = _table("Min", "1Q", "Median", "3Q", "Max", title="Residuals")
    res.add_row(*(fmt(r.residuals[k]) for k in QUANTILE_KEYS))
    # summary(lm()) has no df column: every t test uses the residual df shown below the table
    coef = fixed_effects_table(SimpleNamespace(fixed_effects=[replace(fe, df=None) for fe in r.fixed_effects]))
    coef.title = "Coefficients"
    parts = [head, res, Text(""), coef, Text(""), _lm_fit_lines(r)]
    warn = _warnings_text(r)
    return to_text(parts + ([warn] if warn is not None else []), width, color)


def _compare_rows(r) -> Table:
    t = _table("", "npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)")
    for m in r.models:
        t.add_row(m.name, str(m.npar), fmt(m.aic, 5), fmt(m.bic, 5), fmt(m.loglik, 5), fmt(m.deviance, 5),
                  fmt(m.chisq, 5), "" if m.df is None else str(m.df), fmt_p(m.p_value))
    return t


def compare_table(r, width: int = 100, color: bool = False) -> str:
    """A CompareResult as lme4's anova() prints it: the models, then the likelihood-ratio table."""
    head = Text()
    head.append(f"Likelihood-ratio tests (as lme4's anova), criterion: {r.method}\n", style="bold")
    head.append(f"Number of obs: {r.nobs} (the same rows for every model)\n")
    head.append("Models:\n")
    for m in r.models:
        head.append(f"{m.name}: {m.formula}{'   (no random effects: lm)' if m.model == 'lm' else ''}\n")
    parts = [head, _compare_rows(r)]
    if r.notes:
        parts.append(Text("".join(f"note: {n}\n" for n in r.notes)))
    warn = _warnings_text(r)
    return to_text(parts + ([warn] if warn is not None else []), width, color)


def effects_table(rows, title: str, level: float, width: int = 100, color: bool = False) -> str:
    """ranef/coef rows (ranef.EffectRow) as a table: group, level, term, estimate, std. error, interval."""
    pct = f"{100 * level:g}%"
    t = _table("Group", "Level", "Term", "Estimate", "Std. Error", f"lower {pct}", f"upper {pct}", title=title)
    t.label_columns = 3
    for r in rows:
        t.add_row(r.group, r.level, r.term, fmt(r.estimate), fmt(r.std_error), fmt(r.conf_low), fmt(r.conf_high))
    return to_text([t], width, color)
