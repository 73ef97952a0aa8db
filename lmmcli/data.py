"""Read a data file (CSV, TSV, Parquet, or CSV on stdin) into a pandas DataFrame."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from .errors import DataError

CSV_EXT = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": None}
PARQUET_EXT = {".parquet", ".pq"}


def read_table(path: str, columns: set[str] | None = None):
    """Read PATH ('-' for CSV on stdin); keep only `columns` when given (faster on wide files)."""
    import pandas as pd  # noqa: F401  (heavy import, kept out of `lmm --help`)

    if path == "-":
        return _read_csv(io.BytesIO(sys.stdin.buffer.read()), ",", "standard input", columns)
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file '{path}' does not exist")
    if p.is_dir():
        raise DataError(f"'{path}' is a directory, not a data file")
    ext = p.suffix.lower()
    if ext in PARQUET_EXT:
        return _read_parquet(p, columns)
    if ext in CSV_EXT:
        return _read_csv(p, CSV_EXT[ext], p.name, columns)
    raise DataError(f"cannot tell the format of '{path}' from its extension '{ext}'",
                    hint="use a .csv, .tsv or .parquet file")


def _read_parquet(p: Path, columns):
    """Parquet through pyarrow; a corrupt file is a DataError."""
    import pyarrow.parquet as pq

    try:
        schema_cols = pq.read_schema(p).names
        use = [c for c in schema_cols if columns is None or c in columns]
        return pq.read_table(p, columns=use).to_pandas()
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise DataError(f"cannot read Parquet file '{p.name}': {_first_line(exc)}") from exc


def _read_csv(src, sep, label, columns):
    """CSV/TSV through pandas; text encodings other than UTF-8 fall back to latin-1 with a note."""
    import pandas as pd

    kwargs = dict(sep=sep, engine="python" if sep is None else "c",
                  usecols=(lambda c: c in columns) if columns is not None else None)
    try:
        return _parse(pd, src, kwargs, "utf-8")
    except UnicodeDecodeError:
        if hasattr(src, "seek"):
            src.seek(0)
        df = _parse(pd, src, kwargs, "latin-1")
        df.attrs["encoding_note"] = f"{label} is not UTF-8; read it as latin-1"
        return df
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{label} is empty") from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"cannot parse {label}: {_first_line(exc)}") from exc


def _parse(pd, src, kwargs, encoding):
    """One pandas read attempt."""
    return pd.read_csv(src, encoding=encoding, **kwargs)


def _first_line(exc: Exception) -> str:
    """The first line of an exception's message."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
