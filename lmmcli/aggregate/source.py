"""Where the rows are: one file, a glob ('data/*.parquet'), or a directory of parts (Hive partitions
key=value/ included); CSV/TSV or Parquet; and how big the data is once decoded (for --engine auto)."""

from __future__ import annotations

import glob as globlib
import os
from dataclasses import dataclass
from pathlib import Path

from lmmcli.errors import DataError
from lmmcli.io.read import PARQUET_EXT, TEXT_EXT as CSV_EXT

DECODED_CSV_FACTOR = 3.0     # bytes of decoded rows (numpy columns, text objects) per byte of CSV, measured ~2-4
DECODED_PARQUET_FACTOR = 1.0  # of uncompressed Parquet bytes (its metadata says how many)


@dataclass(frozen=True)
class Source:
    """The data: its files, their format ('parquet', 'csv', 'tsv'), whether the paths carry Hive keys."""

    spec: str
    files: tuple[str, ...]
    format: str
    hive: bool

    @property
    def label(self) -> str:
        return Path(self.spec.rstrip("/")).name or self.spec

    @property
    def single(self) -> bool:
        """One plain file: what the in-memory reader takes."""
        return len(self.files) == 1 and self.files[0] == self.spec and not self.hive

    def decoded_bytes(self) -> int:
        """An estimate of the rows' size in memory: Parquet's uncompressed sizes, or CSV size times a factor."""
        if self.format == "parquet":
            import pyarrow.parquet as pq

            total = 0
            for f in self.files:
                md = pq.ParquetFile(f).metadata
                total += sum(md.row_group(i).total_byte_size for i in range(md.num_row_groups))
            return int(total * DECODED_PARQUET_FACTOR)
        return int(sum(os.path.getsize(f) for f in self.files) * DECODED_CSV_FACTOR)


def _format_of(path: str) -> str | None:
    ext = Path(path).suffix.lower()
    if ext in PARQUET_EXT:
        return "parquet"
    if ext in CSV_EXT:
        return "tsv" if CSV_EXT[ext] == "\t" else "csv"
    return None


def resolve(spec: str) -> Source:
    """The Source of a DATA argument; a DataError if it names no readable data."""
    if spec == "-":
        raise DataError("standard input can only be read by --engine memory")
    try:
        return _resolve(spec)
    except OSError as exc:    # a name too long for the file system, a directory we may not list
        raise DataError(f"cannot read '{spec}': {exc.strerror or exc}") from exc


def _resolve(spec: str) -> Source:
    p = Path(spec)
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.is_file() and _format_of(str(f)))
        hive = any("=" in part for f in files for part in Path(f).relative_to(p).parts[:-1])
    elif any(ch in spec for ch in "*?["):
        files = sorted(f for f in globlib.glob(spec, recursive=True) if os.path.isfile(f) and _format_of(f))
        hive = any("=" in part for f in files for part in Path(f).parts[:-1])
    elif p.exists():
        files, hive = [spec], False
    else:
        raise DataError(f"data file '{spec}' does not exist")
    if not files:
        what = "is a directory with" if p.is_dir() else "matches"
        raise DataError(f"'{spec}' {what} no CSV, TSV or Parquet files")
    formats = {_format_of(f) for f in files}
    if None in formats:
        raise DataError(f"cannot tell the format of '{spec}' from its extension",
                        hint="use a .csv, .tsv or .parquet file")
    if len(formats) > 1:
        where = "directory" if p.is_dir() else "pattern"
        raise DataError(f"'{spec}' is a {where} that mixes {' and '.join(sorted(formats))} files; use one format")
    return Source(spec, tuple(files), formats.pop(), hive)
