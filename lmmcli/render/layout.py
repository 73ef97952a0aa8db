"""Fitting tables to the terminal without losing a character.

A table wider than the terminal is never squeezed (rich would cut numbers and names with an ellipsis, and a
reader would silently lose digits). It is wrapped as R wraps a wide matrix: the label columns (the leading
left-justified ones) are repeated and the value columns go into as many consecutive tables as needed, each
within the width. A table whose labels and first value column alone are wider than the terminal is printed at
its own width: the terminal folds the line, nothing is cut.
"""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

WIDE = 10_000


def natural_width(renderable) -> int:
    """The width a renderable takes when nothing limits it."""
    console = Console(file=io.StringIO(), width=WIDE)
    return console.measure(renderable).maximum


def label_columns(table: Table) -> int:
    """How many leading columns hold labels: table.label_columns when the renderer set it, else the leading
    left-justified ones; at least one."""
    given = getattr(table, "label_columns", None)
    if given is not None:
        return given
    n = 0
    for col in table.columns:
        if col.justify != "left":
            break
        n += 1
    return max(1, min(n, len(table.columns) - 1)) if len(table.columns) > 1 else 1


def _subtable(table: Table, columns: list[int], title: str | None) -> Table:
    """A table of some of table's columns, styled as table."""
    t = Table(box=table.box, pad_edge=table.pad_edge, show_edge=table.show_edge, show_header=table.show_header)
    if title:
        t.title, t.title_justify, t.title_style = title, table.title_justify, table.title_style
        t.min_width = Text(title).cell_len
    cols = [table.columns[i] for i in columns]
    for col in cols:
        t.add_column(col.header, justify=col.justify, style=col.style, header_style=col.header_style)
    for row in zip(*(list(col.cells) for col in cols)):
        t.add_row(*row)
    return t


def _column_groups(table: Table, width: int) -> list[list[int]]:
    """Value columns, greedily grouped so that labels + group fit in width (at least one per group)."""
    k = label_columns(table)
    labels, groups, current = list(range(k)), [], []
    for i in range(k, len(table.columns)):
        trial = current + [i]
        if current and natural_width(_subtable(table, labels + trial, None)) > width:
            groups.append(current)
            trial = [i]
        current = trial
    return [labels + g for g in groups + [current]]


def fit_table(table: Table, width: int) -> list:
    """The table as it is when it fits in width, else wrapped into several (see the module docstring)."""
    if natural_width(table) <= width or len(table.columns) <= 1:
        return [table]
    parts = []
    for n, columns in enumerate(_column_groups(table, width)):
        if n:
            parts.append(Text(""))
        parts.append(_subtable(table, columns, table.title if n == 0 else None))
    return parts


def fit_to_width(renderables, width: int) -> list:
    """Every table in the list fitted to width; other renderables as they are."""
    out = []
    for r in renderables:
        out.extend(fit_table(r, width) if isinstance(r, Table) else [r])
    return out
