"""Read a data file (CSV, TSV, Parquet, or CSV on stdin) into a Frame (numpy columns; no pandas).

Values are typed as R's read.csv types them: numbers (quoted or not, 'Inf' included) are numbers,
TRUE/FALSE (and T/F, true/false) are booleans, everything else stays text; 'NA' is missing, and so
is an empty field except in a text column, where it is the value "" (read.csv's rule). Column names are kept as written (the formula can backquote them), except that
duplicates get R's suffixes (x, x.1) and an empty name becomes 'X'.

CSV goes through pyarrow's multithreaded reader, straight into numpy columns; pandas is the fallback
where pyarrow cannot do what R would (a column whose type changes after the first block).
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from lmmcli.errors import DataError
from lmmcli.io.frame import Frame, as_frame

CSV_EXT = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None}
PARQUET_EXT = {".parquet", ".pq"}
NA_STRINGS = ["NA", ""]
TRUE_STRINGS = ["TRUE", "True", "true", "T"]
FALSE_STRINGS = ["FALSE", "False", "false", "F"]
SNIFF_BYTES = 1 << 16
BLOCK_BYTES = 1 << 22           # pyarrow block size; type inference looks at the first block
BINARY_SHARE = 0.1              # more control characters than this in the first bytes: not text


def read_table(path: str, columns: set[str] | None = None):
    """Read PATH ('-' for CSV on stdin); keep only `columns` when given (faster on wide files)."""
    if path == "-":
        return read_csv_source(io.BytesIO(sys.stdin.buffer.read()), ",", "standard input", columns)
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file '{path}' does not exist")
    if p.is_dir():
        raise DataError(f"'{path}' is a directory, not a data file")
    ext = p.suffix.lower()
    if ext in PARQUET_EXT:
        return _read_parquet(p, columns)
    if ext in CSV_EXT:
        try:
            return read_csv_source(p, CSV_EXT[ext], p.name, columns)
        except OSError as exc:  # unreadable: permissions, a vanished file, a device error
            raise DataError(f"cannot read '{path}': {exc.strerror or exc}") from exc
    raise DataError(f"cannot tell the format of '{path}' from its extension '{ext or '(none)'}'",
                    hint="use a .csv, .tsv or .parquet file")


def _read_parquet(p: Path, columns):
    """Parquet through pyarrow; a corrupt file is a DataError."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(p)
        # an index pandas stored as a column stays out (pandas would have made it the index, not a column)
        index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
        use = [c for c in schema.names if c not in index and (columns is None or c in columns)]
        df = _to_frame(pq.read_table(p, columns=use))
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise DataError(f"cannot read Parquet file '{p.name}': {_first_line(exc)}",
                        hint="the file may be damaged or not Parquet at all") from exc
    if len(df) == 0:
        raise DataError(f"{p.name} has no rows")
    return df


# -- CSV ------------------------------------------------------------------------------------------
def read_csv_source(src, sep, label: str, columns=None):
    """A CSV/TSV file or byte stream to a Frame, with R's typing; every failure is a DataError."""
    head = _head_bytes(src)
    _check_text(head, label)
    encoding = "utf-8"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multibyte character cut by the end of the sample is not an encoding problem
        if exc.start < len(head) - 4:
            encoding = "latin-1"
    sep = sep or _sniff(head, encoding)
    names = _r_names(_header(src, sep, encoding))
    try:
        df, encoding = _read_rows(src, sep, names, encoding, label, columns)
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
        raise DataError(f"cannot parse {label}: {_first_line(exc)}") from exc
    if encoding != "utf-8":
        df.attrs["encoding_note"] = f"{label} is not UTF-8; read it as latin-1"
    if len(df) == 0:
        raise DataError(f"{label} has a header but no data rows")
    return df


def _head_bytes(src) -> bytes:
    """The first bytes of a file or stream (the stream is rewound)."""
    if isinstance(src, Path):
        with open(src, "rb") as fh:
            return fh.read(SNIFF_BYTES)
    head = src.read(SNIFF_BYTES)
    src.seek(0)
    return head


def _check_text(head: bytes, label: str) -> None:
    """Empty files and binary files are named as such, before any parser sees them."""
    if not head.strip():
        raise DataError(f"{label} is empty")
    if head.startswith(b"PAR1"):
        raise DataError(f"{label} is a Parquet file, not text", hint="give it a .parquet extension")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(f"{label} is UTF-16 text", hint="save it as UTF-8 (or latin-1) CSV")
    if head[:2] == b"\x1f\x8b":
        raise DataError(f"{label} is gzip-compressed", hint="decompress it first (gunzip)")
    control = sum(1 for ch in head if ch < 32 and ch not in (9, 10, 13))
    if b"\x00" in head or control > BINARY_SHARE * len(head):
        raise DataError(f"{label} is not a text data file (it holds binary data)",
                        hint="lmm reads CSV, TSV and Parquet files")


def _sniff(head: bytes, encoding: str) -> str:
    """The delimiter of a .txt file: comma, tab, semicolon or bar (comma when unsure)."""
    text = head.decode(encoding, errors="replace")
    try:
        return csv.Sniffer().sniff(text[:SNIFF_BYTES // 4], delimiters=",\t;|").delimiter
    except csv.Error:
        return ","


def _header(src, sep: str, encoding: str) -> list[str]:
    """The header record (quoted names may hold the delimiter or a newline)."""
    raw = src.open("rb") if isinstance(src, Path) else src
    try:
        # utf-8-sig drops a byte-order mark (Excel writes one), so a quoted first name stays quoted
        text = io.TextIOWrapper(raw, encoding="utf-8-sig" if encoding == "utf-8" else encoding,
                                errors="replace", newline="")
        first = next(csv.reader(text, delimiter=sep), [])
        text.detach()
    finally:
        if isinstance(src, Path):
            raw.close()
        else:
            src.seek(0)
    return first


def _r_names(names: list[str]) -> list[str]:
    """R's unique names: '' -> 'X', a repeated name gets .1, .2, ..."""
    out, seen = [], set()
    for name in names:
        base = name.strip() or "X"
        cand, k = base, 0
        while cand in seen:
            k += 1
            cand = f"{base}.{k}"
        seen.add(cand)
        out.append(cand)
    return out


def _read_rows(src, sep, names, encoding, label, columns):
    """pyarrow first; pandas when pyarrow's first-block type guess does not hold for the whole file."""
    import pyarrow as pa

    try:
        try:
            return _arrow_read(src, sep, names, encoding, columns)
        except _Latin1:
            encoding = "latin-1"
            return _arrow_read(src, sep, names, encoding, columns)
    except pa.ArrowInvalid as exc:
        return _after_arrow_error(exc, src, sep, names, encoding, label, columns)


class _Latin1(Exception):
    """Raised inside the arrow path when text columns are not valid UTF-8."""


def _after_arrow_error(exc, src, sep, names, encoding, label, columns):
    """Ragged rows are the user's problem (say where); anything else goes to pandas."""
    msg = str(exc)
    if "Expected" in msg and "columns, got" in msg:
        bad = _first_ragged_line(src, sep, encoding, len(names))
        if bad is not None:
            line, got = bad
            raise DataError(f"{label} line {line} has {got} fields, but the header has {len(names)}",
                            hint="every row needs one value per column (quote values that hold the delimiter)")
        # pyarrow splits at newlines inside quoted values unless told to expect them
        return _arrow_read(src, sep, names, encoding, columns, newlines_in_values=True)
    return _pandas_read(src, sep, names, encoding, label, columns), encoding


def _arrow_read(src, sep, names, encoding, columns, newlines_in_values=False, as_text=()):
    """One pyarrow read; non-UTF-8 text raises _Latin1; dates and times are re-read as text (R keeps them so)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    wanted = [n for n in names if columns is None or n in columns]
    read = pacsv.ReadOptions(column_names=names, skip_rows=1, encoding=encoding, use_threads=True,
                             block_size=BLOCK_BYTES)
    parse = pacsv.ParseOptions(delimiter=sep, newlines_in_values=newlines_in_values)
    convert = pacsv.ConvertOptions(null_values=NA_STRINGS, true_values=TRUE_STRINGS, false_values=FALSE_STRINGS,
                                   strings_can_be_null=True, include_columns=wanted,
                                   column_types={n: pa.string() for n in as_text})
    table = pacsv.read_csv(_rewound(src), read, parse, convert)
    if encoding == "utf-8" and any(pa.types.is_binary(f.type) for f in table.schema):
        raise _Latin1()
    table = _blank_text(table, src, read, parse)
    odd = [f.name for f in table.schema if not _r_type(pa, f.type)]
    if odd and not as_text:
        return _arrow_read(src, sep, names, encoding, columns, newlines_in_values, as_text=odd)
    return _to_frame(table), encoding


def _blank_text(table, src, read, parse):
    """read.csv's rule for empty fields: NA in numeric and logical columns, but the value "" in a text
    column (where only "NA" is missing). Text columns with missing entries are read again so."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    text = [f.name for f in table.schema if pa.types.is_string(f.type) and table.column(f.name).null_count]
    if not text:
        return table
    convert = pacsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True, include_columns=text,
                                   column_types={n: pa.string() for n in text})
    again = pacsv.read_csv(_rewound(src), read, parse, convert)
    for name in text:
        table = table.set_column(table.schema.get_field_index(name), name, again.column(name))
    return table


def _r_type(pa, t) -> bool:
    """The types read.csv would also produce: integer, double, logical, character (and all-missing)."""
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) \
        or pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)


def _to_frame(table) -> Frame:
    """A pyarrow table as a Frame, with the column types pyarrow's own to_pandas would give; other
    types (dates, times, dictionaries in Parquet) take pandas' mapping, categories keeping their order."""
    cols, orders = {}, {}
    for i, f in enumerate(table.schema):
        col = _column(table.column(i), f.type)
        if col is None:
            sub = as_frame({f.name: table.column(i).to_pandas()})
            col, orders = sub[f.name], {**orders, **sub.orders}
        cols[f.name] = col
    return Frame(cols, orders=orders)


def _column(col, t):
    """One arrow column as numpy, typed as pyarrow's to_pandas types it: integers with nulls and
    all-missing columns are float (NaN), booleans with nulls are objects (True/False/None), text is
    objects with None; None for other types. Read from the arrow buffers: pyarrow's own numpy
    conversion imports pandas."""
    import numpy as np
    import pyarrow as pa

    types = pa.types
    if types.is_null(t):
        return np.full(len(col), np.nan)
    if types.is_integer(t) and not col.null_count:
        return _chunks(col.cast(pa.int64()), _numbers, np.int64)
    if types.is_integer(t) or types.is_floating(t):
        return _chunks(col.cast(pa.float64()), _numbers, np.float64)
    if types.is_boolean(t):
        return _chunks(col, _booleans, object if col.null_count else bool)
    if types.is_string(t) or types.is_large_string(t):
        return _chunks(col, _texts, object)
    return None


def _chunks(col, convert, dtype):
    """The chunks of an arrow column converted one by one and joined (a new, writable array)."""
    import numpy as np

    parts = [convert(chunk, dtype) for chunk in col.chunks]
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def _bits(buf, offset: int, n: int):
    """An arrow bitmap (validity or boolean values) as a bool array."""
    import numpy as np

    return np.unpackbits(np.frombuffer(buf, dtype=np.uint8), bitorder="little")[offset:offset + n].astype(bool)


def _valid(arr):
    """Which entries of an arrow array are not null."""
    import numpy as np

    buf = arr.buffers()[0]
    return np.ones(len(arr), dtype=bool) if buf is None or not arr.null_count else _bits(buf, arr.offset, len(arr))


def _numbers(arr, dtype):
    """An int64 or float64 arrow array; nulls (float only) become NaN."""
    import numpy as np

    values = np.frombuffer(arr.buffers()[1], dtype=dtype)[arr.offset:arr.offset + len(arr)]
    if arr.null_count:
        values = np.where(_valid(arr), values, np.nan)
    return values


def _booleans(arr, dtype):
    """A boolean arrow array; with nulls an object array of True/False/None."""
    import numpy as np

    values = _bits(arr.buffers()[1], arr.offset, len(arr))
    if dtype is bool:
        return values
    out = values.astype(object)
    out[~_valid(arr)] = None
    return out


def _texts(arr, dtype):
    """A string arrow array as objects (None for null), decoding each distinct value once."""
    import numpy as np
    import pyarrow as pa

    enc = arr.dictionary_encode()
    labels = np.array(enc.dictionary.to_pylist() + [None], dtype=object)
    codes = enc.indices.cast(pa.int64())
    idx = np.frombuffer(codes.buffers()[1], dtype=np.int64)[codes.offset:codes.offset + len(codes)]
    return labels[np.where(_valid(codes), idx, len(labels) - 1)]


def _rewound(src):
    if isinstance(src, Path):
        return str(src)
    src.seek(0)
    return src


def _pandas_read(src, sep, names, encoding, label, columns):
    """pandas' reader with the same typing rules (it can revise a column's type after the first block)."""
    import pandas as pd

    usecols = [n for n in names if columns is None or n in columns]
    try:
        df = pd.read_csv(_rewound(src), sep=sep, header=0, names=names, usecols=usecols, encoding=encoding,
                         keep_default_na=False, na_values=NA_STRINGS, true_values=TRUE_STRINGS,
                         false_values=FALSE_STRINGS, low_memory=False)
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse {label}: {_first_line(exc)}") from exc
    text = [c for c in df.columns if (df[c].dtype == object or pd.api.types.is_string_dtype(df[c].dtype))
            and df[c].isna().any()
            and not df[c].dropna().map(lambda v: isinstance(v, bool)).all()]
    if text:   # as _blank_text: "" is a value of a text column
        again = pd.read_csv(_rewound(src), sep=sep, header=0, names=names, usecols=text, encoding=encoding,
                            keep_default_na=False, na_values=["NA"], dtype=str, low_memory=False)
        for c in text:
            df[c] = again[c].where(again[c].notna(), None)
    return as_frame(df)


def _first_ragged_line(src, sep, encoding, width: int):
    """(line number, field count) of the first record whose field count differs from the header's."""
    raw = src.open("rb") if isinstance(src, Path) else _rewound(src)
    try:
        text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
        reader = csv.reader(text, delimiter=sep)
        for rec in reader:
            if rec and len(rec) != width:
                return reader.line_num, len(rec)
        return None
    finally:
        text.detach()
        if isinstance(src, Path):
            raw.close()


def _first_line(exc: Exception) -> str:
    """The first line of an exception's message."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
