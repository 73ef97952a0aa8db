"""The reports of `lmm fit --by COL`: each part's summary under a heading, then a summary table with one row per
value; the rows and documents of the other formats carry a `by` field. Formats only."""

from __future__ import annotations

from rich.rule import Rule

from lmmcli.render import formats, tables

SUMMARY_FIELDS = ("nobs", "aic", "bic", "sigma")


def summary_rows(result) -> list[dict]:
    """One row per value of the --by column: its rows, fit statistics, convergence, and each fixed effect's
    estimate (a column per term); a failed fit has its error instead."""
    rows = []
    for f in result.fits:
        row = {result.by: f.value}
        if f.error is not None:
            rows.append({**row, "nobs": f.nrows, "error": f.error})
            continue
        r = f.report
        row.update({k: getattr(r, k) for k in SUMMARY_FIELDS})
        row["converged"] = getattr(r, "converged", True)
        row["singular"] = getattr(r, "singular", False)
        row.update({fe.term: fe.estimate for fe in r.fixed_effects})
        rows.append(row)
    return rows


def documents(result) -> list[dict]:
    """One JSON document per value: {"by": value, "by_column": COL}, then the fit's document (or its error)."""
    out = []
    for f in result.fits:
        head = {"by": f.value, "by_column": result.by}
        out.append({**head, "error": f.error} if f.error is not None else {**head, **f.report.to_dict()})
    return out


def tidy_rows(result) -> list[dict]:
    """broom.mixed's tidy() rows of every part, each with a leading `by` field (failed parts have none)."""
    rows = []
    for f in result.fits:
        if f.error is None:
            rows += formats.with_by(formats.tidy_rows(f.report), "by", f.value)
    return rows


def by_table(result, width: int = 100, color: bool = False) -> str:
    """Each part's summary under a rule naming its value, then the summary table."""
    out = []
    for f in result.fits:
        out.append(tables.to_text([Rule(f"{result.by} = {f.value}", align="left")], width, color))
        if f.error is not None:
            out.append(f"error: {f.error}\n\n")
            continue
        table = tables.fit_table if f.mixed else tables.lm_table
        out.append(table(f.report, width=width, color=color) + "\n")
    title = f"Summary by {result.by}" + (f" ({result.n_missing} rows without a value left out)"
                                         if result.n_missing else "")
    out.append(tables.to_text([Rule(style="dim")], width, color))
    out.append(tables.rows_table(summary_rows(result), title, width, color))
    return "".join(out)
