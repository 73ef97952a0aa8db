"""Row formats: the rows of a report (flat dicts) as CSV, TSV, NDJSON, a markdown or HTML table, a pyarrow table.

And the rows themselves where a report is not already rows: broom.mixed's `tidy()` rows of a fit, one row per
model of a comparison. Formats only: every number comes from the result.
"""

from __future__ import annotations

import html
import io
import json

from lmmcli.results import clean

TIDY_COLUMNS = ("effect", "group", "term", "estimate", "std_error", "statistic", "df", "p_value", "conf_low",
                "conf_high")


# -- rows of the reports ---------------------------------------------------------------------------
def _tidy_row(effect, group, term, estimate, std_error=None, statistic=None, df=None, p_value=None,
              conf_low=None, conf_high=None) -> dict:
    return dict(zip(TIDY_COLUMNS, (effect, group, term, estimate, std_error, statistic, df, p_value, conf_low,
                                   conf_high)))


def _ran_pars(r) -> list[dict]:
    """broom.mixed's ran_pars rows: per group sd__TERM, each followed by its cor__TERM.OTHER rows, then
    the residual's sd__Observation; intervals where --ci computed them."""
    rows = []
    cors = {}
    for c in r.correlations:
        cors.setdefault((c.group, c.term1), []).append(c)
    for vc in r.variance_components:
        if vc.group == "Residual" and vc.term is None:
            rows.append(_tidy_row("ran_pars", "Residual", "sd__Observation", vc.sd, conf_low=vc.conf_low,
                                  conf_high=vc.conf_high))
            continue
        rows.append(_tidy_row("ran_pars", vc.group, f"sd__{vc.term}", vc.sd, conf_low=vc.conf_low,
                              conf_high=vc.conf_high))
        for c in cors.get((vc.group, vc.term), []):
            rows.append(_tidy_row("ran_pars", c.group, f"cor__{c.term1}.{c.term2}", c.correlation,
                                  conf_low=c.conf_low, conf_high=c.conf_high))
    return rows


def tidy_rows(r) -> list[dict]:
    """broom.mixed's tidy() of a fit (FitResult or lm.LmResult): the fixed effects, then the random-effect
    parameters (sds and correlations), with columns TIDY_COLUMNS."""
    rows = [_tidy_row("fixed", None, fe.term, fe.estimate, fe.std_error, fe.statistic, fe.df, fe.p_value,
                      fe.conf_low, fe.conf_high) for fe in r.fixed_effects]
    return rows + (_ran_pars(r) if hasattr(r, "variance_components") else [])


COMPARE_COLUMNS = ("name", "formula", "model", "npar", "aic", "bic", "loglik", "deviance", "chisq", "df",
                   "p_value", "converged", "singular")


def compare_rows(r) -> list[dict]:
    """One row per model of a CompareResult (lme4's anova() table)."""
    return [{k: getattr(m, k) for k in COMPARE_COLUMNS} for m in r.models]


def with_by(rows: list[dict], by: str | None, value) -> list[dict]:
    """The rows with a leading `by` field (the value of the --by column they belong to)."""
    if by is None:
        return rows
    return [{"by": value, **row} for row in rows]


# -- formats ---------------------------------------------------------------------------------------
def _columns(rows: list[dict]) -> list[str]:
    """Column names in first-seen order over all rows."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return list(names)


def to_delimited(rows: list[dict], sep: str = ",", columns=None) -> str:
    """CSV (or TSV with sep='\\t'): a header, then one line per row; missing numbers empty."""
    import csv

    buf = io.StringIO()
    names = list(columns) if columns else _columns(rows)
    if names:
        w = csv.DictWriter(buf, fieldnames=names, delimiter=sep, lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if v is None else v) for k, v in clean(row).items()})
    return buf.getvalue()


def to_ndjson(docs) -> str:
    """One compact JSON document per line (NaN as null)."""
    return "".join(json.dumps(clean(d), allow_nan=False, separators=(",", ":")) + "\n" for d in docs)


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def to_markdown(rows: list[dict], title: str | None = None) -> str:
    """A GitHub-flavoured markdown table (numbers to 6 significant digits; '|' in cells escaped)."""
    names = _columns(rows)
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = [f"**{esc(title)}**", ""] if title else []
    lines.append("| " + " | ".join(esc(n) for n in names) + " |")
    lines.append("|" + "|".join("---" for _ in names) + "|")
    for row in clean(rows):
        lines.append("| " + " | ".join(esc(_cell(row.get(n))) for n in names) + " |")
    return "\n".join(lines) + "\n"


def html_table(rows: list[dict]) -> str:
    """The rows as an HTML <table> element (numbers to 6 significant digits)."""
    names = _columns(rows)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(row.get(n)))}</td>" for n in names) + "</tr>\n"
                   for row in clean(rows))
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n"


PAGE_STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
              "table{border-collapse:collapse;font-variant-numeric:tabular-nums}"
              "th,td{padding:.2em .7em;border-bottom:1px solid #ddd;text-align:right}"
              "th:first-child,td:first-child{text-align:left}")


def to_html(rows: list[dict], title: str) -> str:
    """A self-contained HTML page holding the rows as one table."""
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{html.escape(title)}"
            f"</title>\n<style>{PAGE_STYLE}</style>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
            f"{html_table(rows)}</body>\n</html>\n")


def to_arrow(rows: list[dict], metadata: dict | None = None):
    """The rows as a pyarrow Table (one column per field; None as null), with optional schema metadata."""
    import pyarrow as pa

    names = _columns(rows)
    data = clean(rows)
    table = pa.table({n: [row.get(n) for row in data] for n in names})
    return table.replace_schema_metadata({k: str(v) for k, v in (metadata or {}).items()})
