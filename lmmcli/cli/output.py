"""Output formats for every command: the format comes from --format, else from the -o file's extension, else
the command's default; a --format that contradicts the extension is refused; `-o -` is standard output.

A command describes what it shows as a Shown (a JSON document, rows, a terminal table); write() turns it into
the chosen format on stdout or atomically into the file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable, Optional


class OutFormat(str, Enum):
    table = "table"
    json = "json"
    ndjson = "ndjson"
    csv = "csv"
    tsv = "tsv"
    markdown = "markdown"
    html = "html"
    parquet = "parquet"


EXTENSIONS = {
    ".json": OutFormat.json, ".ndjson": OutFormat.ndjson, ".jsonl": OutFormat.ndjson, ".csv": OutFormat.csv,
    ".tsv": OutFormat.tsv, ".tab": OutFormat.tsv, ".md": OutFormat.markdown, ".markdown": OutFormat.markdown,
    ".html": OutFormat.html, ".htm": OutFormat.html, ".parquet": OutFormat.parquet, ".pq": OutFormat.parquet,
    ".txt": OutFormat.table,
}
FORMAT_NAMES = ", ".join(f.value for f in OutFormat)


def format_help(default: OutFormat) -> str:
    return (f"{FORMAT_NAMES} (default: from the -o file's extension, else {default.value})")


def is_stdout(output: Optional[Path]) -> bool:
    return output is None or str(output) == "-"


def choose_format(format: Optional[OutFormat], output: Optional[Path], default: OutFormat,
                  allowed: Optional[set] = None) -> OutFormat:
    """--format, else the extension of -o, else default; a contradiction between them is a usage error, and so is
    a format outside `allowed` (names; every format when None)."""
    from lmmcli.errors import UsageError

    by_ext = None if is_stdout(output) else EXTENSIONS.get(output.suffix.lower())
    if format is not None and by_ext is not None and format != by_ext:
        raise UsageError(f"--format {format.value} contradicts the extension of '{output}' ({by_ext.value})",
                         hint=f"drop --format, or name the file with the extension of {format.value}")
    chosen = format or by_ext or default
    if allowed is not None and chosen.value not in allowed:
        names = ", ".join(f.value for f in OutFormat if f.value in allowed)
        raise UsageError(f"this command writes {names}, not {chosen.value}",
                         hint=None if format else f"the format came from the extension of '{output}'")
    if chosen == OutFormat.parquet and is_stdout(output) and sys.stdout.isatty():
        raise UsageError("Parquet is binary: give -o FILE.parquet, or pipe standard output into a program")
    return chosen


@dataclass
class Shown:
    """What a command shows, in every format: title (markdown/HTML heading), document() the JSON document,
    rows() flat dicts (CSV, TSV, markdown, HTML, Parquet and, unless lines() says otherwise, NDJSON), table(width,
    color) the terminal text, metadata for the Parquet schema, and texts the formats laid out otherwise."""

    title: str
    document: Callable[[], dict]
    rows: Callable[[], list]
    table: Callable[[int, bool], str]
    lines: Optional[Callable[[], list]] = None
    metadata: Optional[dict] = None
    columns: Optional[tuple] = None
    texts: Optional[dict] = None      # {OutFormat: () -> str}: formats the command lays out itself (lmm table's grid)


def render(shown: Shown, fmt: OutFormat, width: int, color: bool):
    """The shown output as text (or, for Parquet, a pyarrow Table)."""
    from lmmcli.render import formats
    from lmmcli.render.tables import to_json

    if shown.texts and fmt in shown.texts:
        return shown.texts[fmt]()
    if fmt == OutFormat.table:
        return shown.table(width, color)
    if fmt == OutFormat.json:
        return to_json(shown.document())
    if fmt == OutFormat.ndjson:
        return formats.to_ndjson((shown.lines or shown.rows)())
    rows = shown.rows()
    if fmt in (OutFormat.csv, OutFormat.tsv):
        return formats.to_delimited(rows, "," if fmt == OutFormat.csv else "\t", shown.columns)
    if fmt == OutFormat.markdown:
        return formats.to_markdown(rows, shown.title)
    if fmt == OutFormat.html:
        return formats.to_html(rows, shown.title)
    return formats.to_arrow(rows, shown.metadata)


def write(shown: Shown, fmt: OutFormat, output: Optional[Path], inputs=()) -> None:
    """Render and write to stdout (no -o, or -o -) or atomically to the file."""
    from lmmcli.cli.common import terminal_width, use_color

    to_stdout = is_stdout(output)
    out = render(shown, fmt, terminal_width(), use_color(None if to_stdout else output))
    if fmt == OutFormat.parquet:
        write_arrow(out, None if to_stdout else output, inputs)
    elif to_stdout:
        sys.stdout.write(out)
    else:
        from lmmcli.io.write import write_text

        write_text(str(output), out, inputs)


def write_arrow(table, output: Optional[Path], inputs=()) -> None:
    """A pyarrow Table as Parquet, to the file (atomically) or to standard output's bytes."""
    import pyarrow.parquet as pq

    if output is None:
        sys.stdout.flush()
        pq.write_table(table, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    from lmmcli.io.write import atomic_write

    atomic_write(str(output), lambda fh: pq.write_table(table, fh), inputs)
