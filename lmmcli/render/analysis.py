"""Renderers of the analysis results (anova, ranova, emmeans) laid out as R prints them; they only format."""

from __future__ import annotations

from rich.text import Text

from lmmcli.render.numbers import fmt, fmt_column, fmt_p
from lmmcli.render.text import _table, _warnings_text, to_text

ROMAN = {"1": "I", "2": "II", "3": "III"}
DF_TEXT = {"satterthwaite": "Satterthwaite's", "kenward-roger": "Kenward-Roger's"}


def _notes(notes) -> list:
    return [Text("".join(f"note: {n}\n" for n in notes))] if notes else []


def _closing(r) -> list:
    """Notes, then warnings, as every analysis table ends."""
    warn = _warnings_text(r)
    return _notes(r.notes) + ([warn] if warn is not None else [])


def anova_table(r, width: int = 100, color: bool = False) -> str:
    """An AnovaResult as lmerTest prints anova(): Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F)."""
    head = Text(f"Type {ROMAN[r.type]} Analysis of Variance Table with {DF_TEXT[r.df_method]} method\n",
                style="bold")
    head.append(f"Formula: {r.formula}   ({r.method} fit, {r.nobs} obs)\n", style="")
    t = _table("", "Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)")
    rows = r.anova
    cols = [fmt_column([getattr(x, k) for x in rows]) for k in ("sum_sq", "mean_sq")]
    for i, x in enumerate(rows):
        t.add_row(x.term, cols[0][i], cols[1][i], "" if x.num_df is None else str(x.num_df), fmt(x.den_df, 5),
                  fmt(x.f_value), fmt_p(x.p_value))
    return to_text([head, t] + _closing(r), width, color)


def ranova_table(r, width: int = 100, color: bool = False) -> str:
    """A RanovaResult as lmerTest prints ranova(): npar, logLik, AIC, LRT, Df, Pr(>Chisq)."""
    head = Text("ANOVA-like table for random-effects: Single term deletions\n", style="bold")
    head.append(f"Model: {r.formula}   ({r.method} fits, {r.nobs} obs)\n", style="")
    t = _table("", "npar", "logLik", "AIC", "LRT", "Df", "Pr(>Chisq)")
    for x in r.ranova:
        t.add_row(x.term, str(x.npar), fmt(x.loglik, 6), fmt(x.aic, 6), fmt(x.lrt, 5),
                  "" if x.df is None else str(x.df), fmt_p(x.p_value))
    return to_text([head, t] + _closing(r), width, color)


def emmeans_table(r, width: int = 100, color: bool = False) -> str:
    """An EmmeansResult as emmeans prints it: the means (by group), then the pairwise contrasts."""
    pct = f"{r.level:g}"
    t = _table(*r.specs, *r.by, "emmean", "SE", "df", "lower.CL", "upper.CL",
               title=f"Estimated marginal means ({r.formula})")
    for e in r.emmeans:
        if e.emmean is None:        # not estimable: emmeans prints nonEst
            t.add_row(*(e.levels[k] for k in r.specs + r.by), "nonEst", "", "", "", "")
            continue
        t.add_row(*(e.levels[k] for k in r.specs + r.by), fmt(e.emmean), fmt(e.std_error), fmt(e.df, 4),
                  fmt(e.conf_low), fmt(e.conf_high))
    for col in t.columns[: len(r.specs) + len(r.by)]:
        col.justify = "left"
    foot = f"Degrees-of-freedom method: {r.df_method}\nConfidence level used: {pct}\n"
    parts = [t, Text(foot)]
    if r.contrasts is not None:
        c = _table("contrast", *r.by, "estimate", "SE", "df", "t.ratio", "p.value", title="Pairwise contrasts")
        for x in r.contrasts:
            by = [x.by[k] for k in r.by] if r.by else []
            estimate = "nonEst" if x.estimate is None else fmt(x.estimate)
            c.add_row(x.contrast, *by, estimate, fmt(x.std_error), fmt(x.df, 4), fmt(x.t_ratio), fmt_p(x.p_value))
        for col in c.columns[: 1 + len(r.by)]:
            col.justify = "left"
        adj = _adjust_text(r)
        parts += [c, Text(f"Degrees-of-freedom method: {r.df_method}\nP value adjustment: {adj}\n")]
    return to_text(parts + _closing(r), width, color)


def _adjust_text(r) -> str:
    """emmeans' line: 'tukey method for comparing a family of 3 estimates', 'holm method for 6 tests'."""
    if r.adjust == "none":
        return "none"
    groups = max(1, len({tuple(sorted((c.by or {}).items())) for c in r.contrasts}))
    if r.adjust == "tukey":
        return f"tukey method for comparing a family of {len(r.emmeans) // groups} estimates"
    return f"{r.adjust} method for {len(r.contrasts) // groups} tests"
