"""Rich tables in the style of R's printed output, and renderables to text or JSON."""

from __future__ import annotations

import io

from rich import box
from rich.table import Table
from rich.text import Text

from lmmcli.render.layout import fit_to_width, natural_width
from lmmcli.render.numbers import fmt
from lmmcli.results import FitResult, clean


LEFT_COLUMNS = ("", "Groups", "Name", "Term", "Group")


def _table(*columns, title: str | None = None) -> Table:
    """A borderless table in the style of R's printed output; the title sits on its own line above it."""
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    if title:
        t.title = title
        t.title_justify = "left"
        t.title_style = "bold"
        t.min_width = len(title)
    for c in columns:
        t.add_column(c, justify="left" if c in LEFT_COLUMNS else "right")
    return t


# rich lays out a table at ~4 ms a row (20 s for a 5,000-level factor's coefficients); a longer table
# whose natural width fits PLAIN_MAX_WIDTH is laid out here instead, in the same format as _table's.
PLAIN_ROWS, PLAIN_MAX_WIDTH = 200, 80


def _rows_table(columns, rows, title=None):
    """_table(*columns, title) filled with rows, or the same layout as plain text for a long table."""
    if len(rows) > PLAIN_ROWS:
        text = _plain_table(columns, rows, title)
        if text is not None:
            return text
    t = _table(*columns, title=title)
    for row in rows:
        t.add_row(*row)
    return t


def _plain_table(columns, rows, title) -> Text | None:
    """_table's layout (columns three spaces apart, a rule under the header) as Text; None if it would not fit."""
    lines = _plain_lines(columns, rows, title, [c in LEFT_COLUMNS for c in columns], PLAIN_MAX_WIDTH)
    if lines is None:
        return None
    head, header, rule, body = lines
    out = Text()
    if head is not None:
        out.append(head, style="bold")
        out.append("\n")
    out.append(header, style="bold")
    out.append("\n" + rule + "\n")
    out.append("\n".join(body))
    return out


def _plain_lines(columns, rows, title, left, max_width):
    """(title line or None, header line, rule, row lines) of _table's layout for text cells, columns
    left-justified where `left` says; None if wider than max_width or the title is wider than the table."""
    from rich.cells import cell_len

    widths = [max([cell_len(c)] + [cell_len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    total = sum(widths) + 3 * (len(widths) - 1)
    if total > max_width or (title and cell_len(title) > total):
        return None

    def line(cells):
        return "   ".join((c + " " * (w - cell_len(c))) if lj else (" " * (w - cell_len(c)) + c)
                         for c, w, lj in zip(cells, widths, left))

    head = title + " " * (total - cell_len(title)) if title else None
    return head, line(columns), "\u2500" * total, [line(r) for r in rows]


def _plain_render(part, width: int) -> str | None:
    """What rich prints for a Text or a _table-style Table without colour, laid out here (rich's layout
    of the summary's tables took ~15 ms a process); None for anything else, or anything rich would wrap."""
    from rich.cells import cell_len

    if isinstance(part, Text):
        text = part.plain
        if "\t" in text or "\r" in text or any(cell_len(ln) > width for ln in text.split("\n")):
            return None
        return text + "\n"
    if not isinstance(part, Table) or not _is_plain_table(part):
        return None
    columns = [c.header for c in part.columns]
    cells = [[c.plain if isinstance(c, Text) else c for c in col._cells] for col in part.columns]
    rows = [list(r) for r in zip(*cells)] if cells else []
    if any(not isinstance(c, str) or "\n" in c or "\t" in c for c in columns + [c for r in rows for c in r]):
        return None
    lines = _plain_lines(columns, rows, part.title, [c.justify == "left" for c in part.columns], width)
    if lines is None:
        return None
    head, header, rule, body = lines
    return "\n".join(([head] if head is not None else []) + [header, rule] + body) + "\n"


def _is_plain_table(t: Table) -> bool:
    """A table as _table makes them: its box, no edge, header shown, nothing rich would size or split."""
    return (t.box is box.SIMPLE_HEAD and not t.pad_edge and not t.show_edge and t.show_header and not t.expand
            and t.caption is None and t.width is None and t.padding == (0, 1, 0, 1) and t.title_justify == "left"
            and (t.min_width is None or not t.title or t.min_width <= len(t.title))
            and not any(r.end_section for r in t.rows)
            and all(c.justify in ("left", "right") and c.width is None and c.min_width is None and c.max_width is None
                    and c.ratio is None and isinstance(c.header, str) for c in t.columns)
            and (t.title is None or isinstance(t.title, str)))


def _warnings_text(r: FitResult) -> Text | None:
    if not r.warnings:
        return None
    text = Text()
    for w in r.warnings:
        text.append(f"warning: {w}\n", style="yellow")
    return text


def to_text(renderables, width: int = 100, color: bool = False) -> str:
    """Render rich objects to a string (deterministic: fixed width, no colour unless asked). Tables wider than
    width are wrapped, never cut (layout.fit_to_width)."""
    buf = io.StringIO()
    for part in renderables:
        plain = None if color else _plain_render(part, width)
        if plain is not None:
            buf.write(plain)
            continue
        for piece in fit_to_width([part], width):
            _rich_print(buf, piece, width, color)
    return buf.getvalue()


def _rich_print(buf, part, width: int, color: bool) -> None:
    """One renderable printed by rich into buf."""
    from rich.console import Console

    w = max(width, natural_width(part)) if isinstance(part, Table) else width
    console = Console(file=buf, width=w, force_terminal=color, color_system="standard" if color else None,
                      highlight=False)
    console.print(part)


def to_json(data) -> str:
    """Exactly one JSON document, full precision, NaN as null."""
    from lmmcli.render.jsontext import dumps

    return dumps(clean(data)) + "\n"


def rows_table(rows: list[dict], title: str | None = None, width: int = 100, color: bool = False) -> str:
    """Flat rows as a table: text columns left, numbers right (4 significant digits, as the summaries)."""
    names = list(dict.fromkeys(k for row in rows for k in row))
    numeric = {n for n in names if all(isinstance(row.get(n), (int, float)) and not isinstance(row.get(n), bool)
                                       or row.get(n) is None for row in rows)}
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    if title:
        t.title, t.title_justify, t.title_style, t.min_width = title, "left", "bold", len(title)
    for n in names:
        t.add_column(n, justify="right" if n in numeric else "left")
    t.label_columns = next((i for i, n in enumerate(names) if n in numeric), 1) or 1
    for row in clean(rows):
        t.add_row(*(_cell(row.get(n)) for n in names))
    return to_text([t], width, color)


def _cell(v) -> str:
    if v is None:
        return ""
    return fmt(v) if isinstance(v, float) else str(v)
