"""Read a data file into a Frame (numpy columns; no pandas): delimited text, Parquet or Arrow IPC (Feather),
from a file, a pipe or standard input, plain or compressed (.gz .bz2 .xz .zst).

The format comes from the extension (data.csv.gz is compressed CSV); standard input and extensionless pipes
are recognised by their first bytes (compression, Parquet's 'PAR1', Arrow's 'ARROW1'), else read as text
with a sniffed delimiter. A source that cannot seek (standard input, a FIFO, a device) is read exactly once,
into memory: opening a FIFO twice would wait forever for a second writer.
"""

from __future__ import annotations

import io
import stat
import sys
from pathlib import Path

from lmmcli.errors import DataError
from lmmcli.io.arrow import to_frame
from lmmcli.io.text import Dialect, read_csv_source

# text extensions and their delimiter: None is sniffed (comma when unsure); tabs are what .tsv means
TEXT_EXT = {".csv": None, ".txt": None, ".tsv": "\t", ".tab": "\t"}
PARQUET_EXT = {".parquet", ".pq"}
ARROW_EXT = {".feather", ".arrow", ".ipc", ".arrows"}
COMPRESSED_EXT = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}
MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))
PARQUET_MAGIC = b"PAR1"
ARROW_MAGIC = (b"ARROW1", b"\xff\xff\xff\xff", b"FEA1")     # IPC file, IPC stream, Feather v1
SUPPORTED = "use a .csv, .tsv, .txt, .parquet or .feather file (optionally .gz, .bz2, .xz or .zst)"


def read_table(path: str, columns: set[str] | None = None, dialect: Dialect = Dialect()):
    """Read PATH ('-' for standard input); keep only `columns` when given (faster on wide files)."""
    if path == "-":
        return read_bytes(_stdin_bytes(), "standard input", "", columns, dialect)
    p = Path(path)
    try:
        if not p.exists():
            raise DataError(f"data file '{path}' does not exist")
        if p.is_dir():
            raise DataError(f"'{path}' is a directory, not a data file")
    except OSError as exc:      # a name too long for the file system, a loop of links
        raise DataError(f"cannot read '{_short(path)}': {exc.strerror or exc}") from exc
    ext, compression = _extensions(p)
    if compression or not _regular(p):
        return read_bytes(_read_once(p), p.name, ext, columns, dialect, compression)
    if ext in PARQUET_EXT:
        return _read_parquet(p, p.name, columns)
    if ext in ARROW_EXT:
        return _read_arrow(p, p.name, columns)
    if ext in TEXT_EXT:
        if _compression_of(_head(p)):            # a compressed file without its extension
            return read_bytes(_read_once(p), p.name, ext, columns, dialect)
        return _read_text(p, p.name, ext, columns, dialect)
    raise DataError(f"cannot tell the format of '{path}' from its extension '{ext or '(none)'}'", hint=SUPPORTED)


def read_bytes(raw: bytes, label: str, ext: str, columns=None, dialect: Dialect = Dialect(),
               compression: str | None = None):
    """A whole file's bytes: decompressed if compressed (by its first bytes, or as its extension says),
    then Parquet, Arrow or text by extension or content."""
    kind = _compression_of(raw[:8]) or compression
    if kind:
        raw = _decompress(raw, kind, label)
    if ext in PARQUET_EXT or (ext not in TEXT_EXT and raw.startswith(PARQUET_MAGIC)):
        return _read_parquet(_buffer(raw), label, columns)
    if ext in ARROW_EXT or (ext not in TEXT_EXT and raw.startswith(ARROW_MAGIC)):
        return _read_arrow(_buffer(raw), label, columns)
    if ext and ext not in TEXT_EXT:
        raise DataError(f"cannot tell the format of '{label}' from its extension '{ext}'", hint=SUPPORTED)
    return _read_text(io.BytesIO(raw), label, ext, columns, dialect)


def _read_text(src, label: str, ext: str, columns, dialect: Dialect):
    """Delimited text: the delimiter given, else the extension's (tab for .tsv), else sniffed."""
    if dialect.delimiter is None and TEXT_EXT.get(ext):
        dialect = Dialect(TEXT_EXT[ext], dialect.decimal)
    try:
        return read_csv_source(src, dialect, label, columns)
    except OSError as exc:  # unreadable: permissions, a vanished file, a device error
        raise DataError(f"cannot read '{label}': {exc.strerror or exc}") from exc


# -- sources ---------------------------------------------------------------------------------------
def _stdin_bytes() -> bytes:
    """All of standard input; a closed standard input is named as such."""
    stdin = sys.stdin
    if stdin is None or getattr(stdin, "closed", False):
        raise DataError("standard input is closed, so there is no data to read from '-'",
                        hint="pipe the data in: lmm fit - FORMULA < data.csv")
    try:
        return stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode("utf-8")
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read standard input: {getattr(exc, 'strerror', None) or exc}") from exc


def _short(path: str) -> str:
    return path if len(path) <= 80 else path[:60] + "..." + path[-12:]


def _regular(p: Path) -> bool:
    try:
        return stat.S_ISREG(p.stat().st_mode)
    except OSError:
        return False


def _read_once(p: Path) -> bytes:
    """The whole content of a file, pipe or device, from one open."""
    try:
        with open(p, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise DataError(f"cannot read '{p}': {exc.strerror or exc}") from exc


def _head(p: Path) -> bytes:
    try:
        with open(p, "rb") as fh:
            return fh.read(8)
    except OSError as exc:
        raise DataError(f"cannot read '{p}': {exc.strerror or exc}") from exc


def _extensions(p: Path) -> tuple[str, str | None]:
    """(format extension, compression or None): data.csv.gz -> ('.csv', 'gzip')."""
    ext = p.suffix.lower()
    compression = COMPRESSED_EXT.get(ext)
    if compression:
        ext = Path(p.stem).suffix.lower()
    return ext, compression


def _compression_of(head: bytes) -> str | None:
    return next((kind for magic, kind in MAGIC if head.startswith(magic)), None)


def _decompress(raw: bytes, kind: str, label: str) -> bytes:
    """gzip, bz2 and xz by Python's modules, zstd by pyarrow's codec."""
    import bz2
    import gzip
    import lzma

    try:
        if kind == "zstd":
            import pyarrow as pa

            with pa.input_stream(pa.py_buffer(raw), compression="zstd") as stream:
                return stream.read()
        return {"gzip": gzip.decompress, "bz2": bz2.decompress, "xz": lzma.decompress}[kind](raw)
    except (OSError, EOFError, ValueError, lzma.LZMAError) as exc:
        raise DataError(f"cannot decompress {label} ({kind}): {str(exc).splitlines()[0] if str(exc) else 'damaged'}",
                        hint="the file may be truncated or damaged") from exc


def _buffer(raw: bytes):
    import pyarrow as pa

    return pa.BufferReader(raw)


# -- Parquet and Arrow -----------------------------------------------------------------------------
def _wanted(names, columns, drop=()) -> list[str]:
    """The columns to read: those asked for; all when one asked for is missing (so errors can name the
    columns there are)."""
    names = [c for c in names if c not in drop]
    if columns is None or not set(columns) <= set(names):
        return names
    return [c for c in names if c in columns]


def _read_parquet(src, label: str, columns):
    """Parquet through pyarrow, only the columns wanted; a corrupt file is a DataError."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(src)
        # an index pandas stored as a column stays out (pandas would have made it the index, not a column)
        index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
        wanted = _wanted(schema.names, columns, index)
        try:
            table, unreadable = pq.read_table(src, columns=wanted), {}
        except Exception:   # one odd column must not make the others unreadable: read them one by one
            table, unreadable = _parquet_by_column(pq, src, wanted)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise DataError(f"cannot read Parquet file '{label}': {_first_line(exc)}",
                        hint="the file may be damaged or not Parquet at all") from exc
    df = to_frame(table)
    if unreadable:
        df.attrs["unreadable"] = {**unreadable, **df.attrs.get("unreadable", {})}
    return _nonempty(df, label)


def _parquet_by_column(pq, src, names):
    """(table of the columns that read, {name: why} of those that did not); a damaged file still fails."""
    import pyarrow as pa

    good, unreadable = {}, {}
    for name in names:
        try:
            good[name] = pq.read_table(src, columns=[name]).column(0)
        except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
            unreadable[name] = _first_line(exc)
    if not good:
        raise ValueError(next(iter(unreadable.values()), "no readable columns"))
    return pa.table(good), unreadable


def _read_arrow(src, label: str, columns):
    """An Arrow IPC file (Feather v2), IPC stream or Feather v1 file, only the columns wanted."""
    import pyarrow as pa
    import pyarrow.feather as feather

    try:
        try:
            table = feather.read_table(src)
        except pa.ArrowInvalid:
            if hasattr(src, "seek"):
                src.seek(0)
            table = pa.ipc.open_stream(src).read_all()
        table = table.select(_wanted(table.schema.names, columns))
    except Exception as exc:  # as for Parquet: several unrelated types for a damaged file
        raise DataError(f"cannot read Arrow/Feather file '{label}': {_first_line(exc)}",
                        hint="the file may be damaged or not Arrow IPC at all") from exc
    return _nonempty(to_frame(table), label)


def _nonempty(df, label: str):
    if len(df) == 0:
        raise DataError(f"{label} has no rows")
    return df


def _first_line(exc: Exception) -> str:
    """The first line of an exception's message."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
