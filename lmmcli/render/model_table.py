"""The side-by-side model table (analysis.model_table.ModelTable) as a grid of strings, and that grid as a
terminal table, Markdown, HTML or CSV, laid out as modelsummary lays it out: estimates with their standard
error (or interval) on the line below, then random-effect sds and correlations, then the fit statistics."""

from __future__ import annotations

import csv
import html
import io

from rich.text import Text

from lmmcli.render.text import _table, to_text

DIGITS, IC_DIGITS = 3, 1


def _num(x, digits: int = DIGITS) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _term(name: str) -> str:
    """A random term as modelsummary names it: Intercept, not (Intercept)."""
    return "Intercept" if name == "(Intercept)" else name


def _fixed_rows(t) -> list[tuple[str, list[str]]]:
    """Two lines per term: the estimates, then (SE) or [low, high]."""
    terms = list(dict.fromkeys(c.term for m in t.models for c in m.fixed))
    rows = []
    for term in terms:
        coefs = [next((c for c in m.fixed if c.term == term), None) for m in t.models]
        rows.append((term, ["" if c is None else _num(c.estimate) for c in coefs]))
        if t.ci_level is None:
            below = ["" if c is None else f"({_num(c.std_error)})" for c in coefs]
        else:
            below = ["" if c is None else f"[{_num(c.conf_low)}, {_num(c.conf_high)}]" for c in coefs]
        rows.append(("", below))
    return rows


def _random_rows(t) -> list[tuple[str, list[str]]]:
    """SD (term group) and Cor (term1~term2 group) lines, the residual last, as SD (Observations)."""
    def sd_label(s):
        return "SD (Observations)" if s.group == "Residual" else f"SD ({_term(s.term)} {s.group})"

    labels = list(dict.fromkeys(sd_label(s) for m in t.models for s in m.sds))
    labels.sort(key=lambda lb: lb == "SD (Observations)")
    cor_labels = list(dict.fromkeys(f"Cor ({_term(c.term1)}~{_term(c.term2)} {c.group})" for m in t.models for c in m.correlations))
    rows = []
    for lb in labels[:-1] if labels and labels[-1] == "SD (Observations)" else labels:
        rows.append((lb, [_num(next((s.sd for s in m.sds if sd_label(s) == lb), None)) for m in t.models]))
    for lb in cor_labels:
        rows.append((lb, [_num(next((c.value for c in m.correlations
                                     if f"Cor ({_term(c.term1)}~{_term(c.term2)} {c.group})" == lb), None)) for m in t.models]))
    if labels and labels[-1] == "SD (Observations)":
        rows.append((labels[-1], [_num(next((s.sd for s in m.sds if s.group == "Residual"), None)) for m in t.models]))
    return rows


def _stat_rows(t) -> list[tuple[str, list[str]]]:
    """Num.Obs., N (group), R2 / R2 Marg. / R2 Cond., ICC, AIC, BIC, Log.Lik."""
    ms = t.models
    groups = list(dict.fromkeys(g for m in ms for g in m.ngroups))
    rows = [("Num.Obs.", [str(m.nobs) for m in ms])]
    rows += [(f"N ({g})", [str(m.ngroups[g]) if g in m.ngroups else "" for m in ms]) for g in groups]
    if any(m.r2 is not None for m in ms):
        rows.append(("R2", [_num(m.r2) for m in ms]))
    if any(m.model == "lmer" for m in ms):
        rows += [("R2 Marg.", [_num(m.r2_marginal) for m in ms]), ("R2 Cond.", [_num(m.r2_conditional) for m in ms]),
                 ("ICC", [_num(m.icc) for m in ms])]
    rows += [("AIC", [_num(m.aic, IC_DIGITS) for m in ms]), ("BIC", [_num(m.bic, IC_DIGITS) for m in ms]),
             ("Log.Lik.", [_num(m.loglik, IC_DIGITS) for m in ms]), ("Method", [m.method for m in ms])]
    return rows


def grid(t) -> tuple[list[str], list[list[tuple[str, list[str]]]]]:
    """(header, sections of rows): the table as strings."""
    header = [""] + [m.name for m in t.models]
    return header, [_fixed_rows(t), _random_rows(t), _stat_rows(t)]


def _footer(t) -> list[str]:
    return [f"note: {n}" for n in t.notes] + [f"warning: {w}" for w in t.warnings]


def as_table(t, width: int = 100, color: bool = False) -> str:
    """The grid as a terminal table."""
    header, sections = grid(t)
    tab = _table(*header)
    tab.columns[0].justify = "left"
    for k, rows in enumerate(sections):
        for i, (label, cells) in enumerate(rows):
            tab.add_row(label, *cells, end_section=(i == len(rows) - 1 and k < len(sections) - 1))
    foot = _footer(t)
    return to_text([tab] + ([Text("\n".join(foot))] if foot else []), width, color)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def as_markdown(t) -> str:
    """The grid as a Markdown (pipe) table, notes below it."""
    header, sections = grid(t)
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    for rows in sections:
        lines += ["| " + " | ".join(_md_cell(c) for c in [label] + cells) + " |" for label, cells in rows]
    foot = _footer(t)
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(foot) + "\n" if foot else "")


def as_html(t) -> str:
    """The grid as an HTML table (one <tbody> per section), notes in its <tfoot>."""
    header, sections = grid(t)
    out = ["<table>", "  <thead>", "    <tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>",
           "  </thead>"]
    for rows in sections:
        out.append("  <tbody>")
        out += ["    <tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in [label] + cells) + "</tr>"
                for label, cells in rows]
        out.append("  </tbody>")
    foot = _footer(t)
    if foot:
        out += ["  <tfoot>"] + [f'    <tr><td colspan="{len(header)}">{html.escape(f)}</td></tr>' for f in foot] + \
               ["  </tfoot>"]
    return "\n".join(out + ["</table>"]) + "\n"


def as_csv(t) -> str:
    """The grid as CSV (the strings shown, one line per table line)."""
    header, sections = grid(t)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for rows in sections:
        for label, cells in rows:
            w.writerow([label] + cells)
    return buf.getvalue()
