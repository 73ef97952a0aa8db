"""Read delimited text (CSV, TSV, semicolon or bar separated; a file or bytes) into a Frame.

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
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmmcli.errors import DataError
from lmmcli.io.arrow import EXACT_INTEGER, to_frame
from lmmcli.io.frame import as_frame

NA_STRINGS = ["NA", ""]
TRUE_STRINGS = ["TRUE", "True", "true", "T"]
FALSE_STRINGS = ["FALSE", "False", "false", "F"]
SNIFF_BYTES = 1 << 16
BLOCK_BYTES = 1 << 22           # pyarrow block size; type inference looks at the first block
MAX_DICTIONARY = 2 ** 31 - 1    # distinct values a text column may have and stay dictionary-encoded (all)
BINARY_SHARE = 0.1              # more control characters than this in the first bytes: not text


@dataclass(frozen=True)
class Dialect:
    """How a text file is written: the field delimiter (None: sniffed) and the decimal mark."""
    delimiter: str | None = None
    decimal: str = "."


@dataclass
class _Layout:
    """What one read needs to know: delimiter, decimal mark, column names, encoding, the columns kept."""
    sep: str
    decimal: str
    names: list
    encoding: str
    columns: set | None
    label: str


def read_csv_source(src, dialect: Dialect, label: str, columns=None, default_sep: str = ","):
    """A delimited text file (Path) or byte stream to a Frame, with R's typing; every failure is a
    DataError. Without a delimiter in the dialect it is sniffed (default_sep when unsure)."""
    head = _head_bytes(src)
    _check_text(head, label)
    encoding = "utf-8"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multibyte character cut by the end of the sample is not an encoding problem
        if exc.start < len(head) - 4:
            encoding = "latin-1"
    sep = dialect.delimiter or sniff_delimiter(head.decode(encoding, errors="replace"), default_sep)
    if sep == dialect.decimal:
        raise DataError(f"the delimiter and the decimal mark of {label} are both '{sep}'",
                        hint="give --delimiter ';' with --decimal ','")
    lay = _Layout(sep, dialect.decimal, _r_names(_header(src, sep, encoding)), encoding, columns, label)
    try:
        df = _read_rows(src, lay)
    except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
        raise DataError(f"cannot parse {label}: {_first_line(exc)}") from exc
    if lay.encoding != "utf-8":
        df.attrs["encoding_note"] = f"{label} is not UTF-8; read it as latin-1"
    if len(df) == 0:
        raise DataError(f"{label} has a header but no data rows")
    df.attrs["delimiter"] = sep
    odd = {c: bad for c in df.columns if (bad := numbers_but(df[c]))}
    if odd:
        df.attrs["numeric_text"] = odd
    return df


NUMERIC_SHARE = 0.8         # a text column this share of whose distinct values are numbers "looks numeric"
SHOWN_ODD = 3
PEEK = 1000


def numbers_but(values) -> list[str]:
    """For a text column whose distinct values are mostly numbers: the first few that are not (in file
    order), which made the whole column text; [] for any other column."""
    if values.dtype != object:
        return []
    head = [v for v in dict.fromkeys(values[:PEEK].tolist()) if isinstance(v, str)]
    if sum(map(_looks_numeric, head)) < NUMERIC_SHARE * len(head):
        return []           # plainly text: no need to look at every row
    distinct = [v for v in dict.fromkeys(values.tolist()) if isinstance(v, str)]
    odd = [v for v in distinct if not _is_number(v)]
    if not odd or sum(map(_looks_numeric, distinct)) < NUMERIC_SHARE * len(distinct):
        return []
    return odd[:SHOWN_ODD]


DECIMAL_COMMA = re.compile(r"\s*[-+]?\d*,\d+(?:[eE][-+]?\d+)?\s*")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _looks_numeric(text: str) -> bool:
    """A number, or a number written with a decimal comma (which --decimal , reads)."""
    return _is_number(text) or DECIMAL_COMMA.fullmatch(text) is not None


def decimal_commas(values) -> bool:
    """Whether these odd values are all numbers with a decimal comma."""
    return bool(values) and all(DECIMAL_COMMA.fullmatch(v) for v in values)


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
    control = sum(1 for ch in head if ch < 32 and ch not in (9, 10, 13))
    if b"\x00" in head or control > BINARY_SHARE * len(head):
        raise DataError(f"{label} is not a text data file (it holds binary data)",
                        hint="lmm reads CSV, TSV and Parquet files")


DELIMITERS = (",", ";", "\t", "|")
SNIFF_LINES = 200


def sniff_delimiter(text: str, default: str = ",") -> str:
    """The delimiter (comma, semicolon, tab or bar) that splits the first lines into the same number of
    fields, more than one, most fields winning; the default when none does (or on a tie with it)."""
    lines = text.splitlines(keepends=True)
    if len(text) >= SNIFF_BYTES - 1 and len(lines) > 1:
        lines = lines[:-1]      # the sample may have cut the last line
    sample = "".join(lines[:SNIFF_LINES])
    best, best_width = default, 1
    for sep in sorted(DELIMITERS, key=lambda d: d != default):
        try:
            widths = {len(rec) for rec in csv.reader(io.StringIO(sample), delimiter=sep) if rec}
        except csv.Error:
            continue
        if len(widths) == 1 and (w := widths.pop()) > best_width:
            best, best_width = sep, w
    return best


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


def _read_rows(src, lay: _Layout):
    """pyarrow first; pandas when pyarrow's first-block type guess does not hold for the whole file."""
    import pyarrow as pa

    try:
        try:
            return _arrow_read(src, lay)
        except _Latin1:
            lay.encoding = "latin-1"
            return _arrow_read(src, lay)
    except pa.ArrowInvalid as exc:
        return _after_arrow_error(exc, src, lay)


class _Latin1(Exception):
    """Raised inside the arrow path when text columns are not valid UTF-8."""


def _after_arrow_error(exc, src, lay: _Layout):
    """Ragged rows are the user's problem (say where); anything else goes to pandas."""
    msg = str(exc)
    if "Expected" in msg and "columns, got" in msg:
        bad = _first_ragged_line(src, lay)
        if bad is not None:
            line, got = bad
            raise DataError(f"{lay.label} line {line} has {got} fields, but the header has {len(lay.names)}",
                            hint="every row needs one value per column (quote values that hold the delimiter)")
        # pyarrow splits at newlines inside quoted values unless told to expect them
        return _arrow_read(src, lay, newlines_in_values=True)
    return _pandas_read(src, lay)


def _arrow_read(src, lay: _Layout, newlines_in_values=False, as_text=()):
    """One pyarrow read; non-UTF-8 text raises _Latin1; dates and times are re-read as text (R keeps them
    so), and so are whole numbers too large to be exact as floats (IDs keep their text)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    wanted = [n for n in lay.names if lay.columns is None or n in lay.columns]
    read = pacsv.ReadOptions(column_names=lay.names, skip_rows=1, encoding=lay.encoding, use_threads=True,
                             block_size=BLOCK_BYTES)
    parse = pacsv.ParseOptions(delimiter=lay.sep, newlines_in_values=newlines_in_values)
    # text columns come dictionary-encoded: each distinct value is decoded once, without pyarrow.compute
    convert = pacsv.ConvertOptions(null_values=NA_STRINGS, true_values=TRUE_STRINGS, false_values=FALSE_STRINGS,
                                   strings_can_be_null=True, include_columns=wanted, decimal_point=lay.decimal,
                                   column_types={n: _text_type(pa) for n in as_text}, auto_dict_encode=True,
                                   auto_dict_max_cardinality=MAX_DICTIONARY)
    table = pacsv.read_csv(_rewound(src), read, parse, convert)
    if lay.encoding == "utf-8" and any(pa.types.is_binary(_values_type(pa, f.type)) for f in table.schema):
        raise _Latin1()
    table = _blank_text(table, src, read, parse)
    odd = [f.name for f in table.schema if not _r_type(pa, f.type)]
    if odd and not as_text:
        return _arrow_read(src, lay, newlines_in_values, as_text=odd)
    frame = to_frame(table, text_dictionaries=True)
    inexact = _written_as_digits(src, read, parse, [c for c in frame.columns if _inexact_integers(frame[c])])
    if inexact:
        return _arrow_read(src, lay, newlines_in_values, as_text=tuple(as_text) + tuple(inexact))
    return frame


def _written_as_digits(src, read, parse, names) -> list[str]:
    """Those columns whose every value is written as a plain integer (no '.', no exponent): IDs, to keep
    as text; 2.5e+302 is a number, however whole its float."""
    if not names:
        return []
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    convert = pacsv.ConvertOptions(null_values=NA_STRINGS, strings_can_be_null=True, include_columns=names,
                                   column_types={n: pa.string() for n in names})
    raw = pacsv.read_csv(_rewound(src), read, parse, convert)
    digits = r"^\s*[-+]?[0-9]+\s*$"
    return [n for n in names if pc.all(pc.match_substring_regex(raw.column(n), digits)).as_py() is not False]


def _blank_text(table, src, read, parse):
    """read.csv's rule for empty fields: NA in numeric and logical columns, but the value "" in a text
    column (where only "NA" is missing). Text columns with missing entries are read again so."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    text = [f.name for f in table.schema
            if pa.types.is_string(_values_type(pa, f.type)) and table.column(f.name).null_count]
    if not text:
        return table
    convert = pacsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True, include_columns=text,
                                   column_types={n: _text_type(pa) for n in text})
    again = pacsv.read_csv(_rewound(src), read, parse, convert)
    for name in text:
        table = table.set_column(table.schema.get_field_index(name), name, again.column(name))
    return table


def _inexact_integers(values) -> bool:
    """A float column of whole numbers some of which are beyond 2^53 (long IDs): floats would merge them."""
    if values.dtype != np.float64:
        return False
    finite = values[np.isfinite(values)]
    if not len(finite) or np.abs(finite).max() < EXACT_INTEGER:
        return False
    return bool(np.all(finite == np.floor(finite)))


def _text_type(pa):
    """The arrow type text columns are read as: dictionary-encoded strings."""
    return pa.dictionary(pa.int32(), pa.string())


def _values_type(pa, t):
    """A dictionary type's value type; any other type itself."""
    return t.value_type if pa.types.is_dictionary(t) else t


def _r_type(pa, t) -> bool:
    """The types read.csv would also produce: integer, double, logical, character (and all-missing)."""
    t = _values_type(pa, t)
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) \
        or pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t)


def _rewound(src):
    if isinstance(src, Path):
        return str(src)
    src.seek(0)
    return src


def _pandas_read(src, lay: _Layout):
    """pandas' reader with the same typing rules (it can revise a column's type after the first block)."""
    import pandas as pd

    usecols = [n for n in lay.names if lay.columns is None or n in lay.columns]
    try:
        df = pd.read_csv(_rewound(src), sep=lay.sep, header=0, names=lay.names, usecols=usecols,
                         encoding=lay.encoding, decimal=lay.decimal, keep_default_na=False, na_values=NA_STRINGS,
                         true_values=TRUE_STRINGS, false_values=FALSE_STRINGS, low_memory=False)
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse {lay.label}: {_first_line(exc)}") from exc
    text = [c for c in df.columns if (df[c].dtype == object or pd.api.types.is_string_dtype(df[c].dtype))
            and df[c].isna().any()
            and not df[c].dropna().map(lambda v: isinstance(v, bool)).all()]
    if text:   # as _blank_text: "" is a value of a text column
        again = pd.read_csv(_rewound(src), sep=lay.sep, header=0, names=lay.names, usecols=text,
                            encoding=lay.encoding, keep_default_na=False, na_values=["NA"], dtype=str,
                            low_memory=False)
        for c in text:
            df[c] = again[c].where(again[c].notna(), None)
    return as_frame(df)


def _first_ragged_line(src, lay: _Layout):
    """(line number, field count) of the first record whose field count differs from the header's."""
    raw = src.open("rb") if isinstance(src, Path) else _rewound(src)
    try:
        text = io.TextIOWrapper(raw, encoding=lay.encoding, errors="replace", newline="")
        reader = csv.reader(text, delimiter=lay.sep)
        for rec in reader:
            if rec and len(rec) != len(lay.names):
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
