"""`lmm report`: one self-contained HTML page (no scripts, no network) holding a fit's summary, fixed effects with
df and p-values, variance components with ICC and R², the figures as inline SVG, and the exact command with the
versions that made it. Formats only: the numbers come from the FitResult, the pictures from render.figures.
"""

from __future__ import annotations

import html

from lmmcli.render.numbers import fmt, fmt_column, fmt_p
from lmmcli.render.tables import DF_METHOD_LABELS

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:70rem;color:#222;
     padding:0 1rem;line-height:1.4}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccc}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
pre{background:#f5f5f5;padding:.6rem;overflow-x:auto;white-space:pre-wrap}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:.5rem 0}
th,td{padding:.2rem .8rem;border-bottom:1px solid #e3e3e3;text-align:right}
th{border-bottom:2px solid #999} td.l,th.l{text-align:left}
.warn{color:#8a4b00;background:#fff4e0;padding:.4rem .6rem;border-left:4px solid #e69b00}
.note{color:#555;font-size:.9em} figure{margin:1rem 0} figure svg{max-width:100%;height:auto}
figcaption{font-size:.9em;color:#555}
"""


def _e(text) -> str:
    return html.escape(str(text))


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """An HTML table; the first `left` columns are labels (left-aligned)."""
    cls = lambda i: ' class="l"' if i < left else ""  # noqa: E731
    head = "".join(f"<th{cls(i)}>{_e(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{_e(c)}</td>" for i, c in enumerate(row)) + "</tr>\n"
                   for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"


def _model_section(r, mixed: bool) -> str:
    items = [("Formula", r.formula), ("Observations", f"{r.nobs}" + (f" ({r.n_dropped} rows with missing values "
                                                                   "dropped)" if r.n_dropped else ""))]
    if mixed:
        items += [("Method", "REML" if r.method == "REML" else "maximum likelihood"),
                  ("Groups", ", ".join(f"{g}: {n}" for g, n in r.ngroups.items()))]
        crit = ("REML criterion", f"{r.reml_criterion:.4f}") if r.method == "REML" else ("deviance",
                                                                                         f"{r.deviance:.4f}")
        items += [crit, ("Converged", "yes" if r.converged else "no"), ("Singular fit", "yes" if r.singular else "no")]
    else:
        items += [("Method", "least squares (lm): no random terms"), ("R²", fmt(r.r_squared)),
                  ("Adjusted R²", fmt(r.adj_r_squared))]
    items += [("logLik", f"{r.loglik:.4f}"), ("AIC", f"{r.aic:.4f}"), ("BIC", f"{r.bic:.4f}")]
    rows = "".join(f"<tr><th class=\"l\">{_e(k)}</th><td class=\"l\">{_e(v)}</td></tr>\n" for k, v in items)
    return f"<h2>Model</h2>\n<table>\n{rows}</table>\n"


def _fixed_section(r) -> str:
    fes = r.fixed_effects
    has_ci = any(fe.conf_low is not None for fe in fes)
    header = ["Term", "Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"] + (["lower", "upper"] if has_ci else [])
    est, ses = fmt_column([fe.estimate for fe in fes]), fmt_column([fe.std_error for fe in fes])
    rows = []
    for fe, e, s in zip(fes, est, ses):
        row = [fe.term, e, s, fmt(fe.df), f"{fe.statistic:.3f}", fmt_p(fe.p_value)]
        rows.append(row + ([fmt(fe.conf_low), fmt(fe.conf_high)] if has_ci else []))
    method = getattr(r, "extra", {}).get("df_method")
    how = f"<p class=\"note\">df and p-values: {_e(DF_METHOD_LABELS.get(method, method))}</p>\n" if method else ""
    return "<h2>Fixed effects</h2>\n" + _table(header, rows) + how


def _variance_section(r) -> str:
    vcs = r.variance_components
    has_ci = any(vc.conf_low is not None for vc in vcs)
    header = ["Group", "Term", "Variance", "Std.Dev."] + (["sd lower", "sd upper"] if has_ci else []) + ["Share"]
    cols = [fmt_column([getattr(vc, k) for vc in vcs]) for k in ("variance", "sd", "conf_low", "conf_high")]
    rows = []
    for vc, v, s, lo, hi in zip(vcs, *cols):
        share = "" if vc.share is None else f"{vc.share:.3f}"
        rows.append([vc.group, vc.term or "", v, s] + ([lo, hi] if has_ci else []) + [share])
    out = "<h2>Variance components</h2>\n" + _table(header, rows, left=2)
    if r.correlations:
        out += _table(["Group", "Terms", "Correlation"],
                      [[c.group, f"{c.term1} : {c.term2}", fmt(c.correlation)] for c in r.correlations], left=2)
    icc, e = r.extra.get("icc") or {}, r.extra
    if icc:
        out += (f"<p>ICC adjusted <b>{fmt(icc.get('adjusted'), 3)}</b>, unadjusted {fmt(icc.get('unadjusted'), 3)};"
                f" R² marginal <b>{fmt(e.get('r2_marginal'), 3)}</b>, conditional "
                f"<b>{fmt(e.get('r2_conditional'), 3)}</b> (Nakagawa)</p>\n")
    return out


def _figures_section(figures) -> str:
    parts = [f"<figure>\n{svg}\n<figcaption>{_e(caption)}</figcaption>\n</figure>\n" for caption, svg in figures]
    return "<h2>Figures</h2>\n" + "".join(parts) if parts else ""


def _provenance(command: str, versions: dict) -> str:
    vers = ", ".join(f"{k} {v}" for k, v in versions.items())
    return (f"<h2>How this report was made</h2>\n<pre>{_e(command)}</pre>\n"
            f"<p class=\"note\">{_e(vers)}</p>\n")


def report_html(r, mixed: bool, figures, command: str, versions: dict, data_name: str) -> str:
    """The whole page: r is a FitResult (or lm.LmResult when mixed is false); figures are (caption, inline SVG)."""
    warn = "".join(f"<p class=\"warn\">warning: {_e(w)}</p>\n" for w in r.warnings)
    body = [f"<h1>Linear mixed model: {_e(r.formula)}</h1>\n<p class=\"note\">data: {_e(data_name)}</p>\n", warn,
            _model_section(r, mixed), _fixed_section(r)]
    if mixed:
        body.append(_variance_section(r))
    body += [_figures_section(figures), _provenance(command, versions)]
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>lmm report: {_e(r.formula)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "".join(body) + "</body>\n</html>\n")
