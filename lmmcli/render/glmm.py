"""summary(glmer) as text: family and link, the approximation, z tests; formats only."""

from __future__ import annotations

from rich.text import Text

from lmmcli.render.tables import (_fixed_corr_table, _groups_line, _random_table, _residuals_table, _table,
                                  _warnings_text, fmt, fmt_column, fmt_p, to_text)
from lmmcli.results import FitResult


def _header(r: FitResult) -> Text:
    e = r.extra
    text = Text()
    title = "Generalized linear mixed model fit by maximum likelihood"
    sep = " " if len(title) + len(e["approximation"]) < 88 else "\n "    # keep lines under 100 characters
    text.append(f"{title}{sep}({e['approximation']})\n", style="bold")
    text.append(f" Family: {e['family']}  ( {e['link']} )\n")
    text.append(f"Formula: {r.formula}\n")
    text.append(f"AIC {r.aic:.4f}   BIC {r.bic:.4f}   logLik {r.loglik:.4f}   "
                f"deviance {r.deviance:.4f}   df.resid {r.df_resid}\n")
    if e.get("deviance_note"):
        text.append(f"note: {e['deviance_note']}\n", style="dim")
    return text


def fixed_effects_z_table(r: FitResult):
    """Estimate, Std. Error, z value, Pr(>|z|) [, interval] per fixed effect."""
    fes = r.fixed_effects
    has_ci = any(fe.conf_low is not None for fe in fes)
    t = _table("", "Estimate", "Std. Error", "z value", "Pr(>|z|)", *(["lower", "upper"] if has_ci else []),
               title="Fixed effects")
    for fe, est, se in zip(fes, fmt_column([fe.estimate for fe in fes]), fmt_column([fe.std_error for fe in fes])):
        ci = [fmt(fe.conf_low), fmt(fe.conf_high)] if has_ci else []
        t.add_row(fe.term, est, se, f"{fe.statistic:.3f}", fmt_p(fe.p_value), *ci)
    return t


def _interval_parts(r: FitResult) -> list:
    """With --ci: the sds' and correlations' intervals (profile and bootstrap) and a line naming the method."""
    method = r.extra.get("ci_method")
    if method is None:
        return []
    level = 100 * r.extra.get("ci_level", 0.95)
    if method == "wald":
        return [Text(f"{level:g}% confidence intervals: Wald, from the standard errors", style="dim")]
    boot = r.extra.get("ci_bootstrap") or {}
    t = _table("Parameter", "Estimate", "lower", "upper", title=f"Random-effect sds and correlations, {level:g}% intervals")
    t.columns[0].justify = "left"
    for vc in r.variance_components:
        t.add_row(f"sd_{vc.term}|{vc.group}", fmt(vc.sd), fmt(vc.conf_low), fmt(vc.conf_high))
    for c in r.correlations:
        t.add_row(f"cor_{c.term2}.{c.term1}|{c.group}", fmt(c.correlation), fmt(c.conf_low), fmt(c.conf_high))
    how = (f"parametric bootstrap, percentile, {boot.get('nsim')} simulations, seed {boot.get('seed')}" if boot
           else "profile likelihood of the deviance (as lme4's confint)")
    return [Text(""), t, Text(f"{level:g}% confidence intervals: {how}", style="dim")]


def _overdispersion(r: FitResult) -> Text | None:
    od = r.extra.get("overdispersion")
    if not od:
        return None
    return Text(f"Overdispersion: ratio {fmt(od['ratio'])} = Pearson chi2 {od['chisq']:.3f} / {od['df']} df, "
                f"p = {fmt_p(od['p_value'])} (as check_overdispersion)")


def glmm_table(r: FitResult, width: int = 100, color: bool = False) -> str:
    """The summary of a GLMM as text, in summary(glmer)'s order."""
    parts = [_header(r), _residuals_table(r), Text(""), _random_table(r), _groups_line(r), Text(""),
             fixed_effects_z_table(r)]
    parts += _interval_parts(r)
    corr = _fixed_corr_table(r)
    if corr is not None:
        parts += [Text(""), corr]
    od = _overdispersion(r)
    if od is not None:
        parts += [Text(""), od]
    warn = _warnings_text(r)
    if warn is not None:
        parts.append(warn)
    return to_text(parts, width, color)
