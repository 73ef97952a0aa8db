"""Where the rows are: one file, a glob ('data/*.parquet'), or a directory of parts (Hive partitions
key=value/ included); CSV/TSV (compressed too: .gz .bz2 .xz .zst) or Parquet; the text dialect (the
delimiter given or sniffed as the memory reader sniffs it, the decimal mark); and how big the data
is once decoded (for --engine auto)."""

from __future__ import annotations

import glob as globlib
import os
from dataclasses import dataclass
from pathlib import Path

from lmmcli.errors import DataError
from lmmcli.io.read import COMPRESSED_EXT, PARQUET_EXT, TEXT_EXT as CSV_EXT
from lmmcli.io.text import SNIFF_BYTES, Dialect, sniff_delimiter

DECODED_CSV_FACTOR = 3.0     # bytes of decoded rows (numpy columns, text objects) per byte of CSV, measured ~2-4
DECODED_PARQUET_FACTOR = 1.0  # of uncompressed Parquet bytes (its metadata says how many)
DUCKDB_COMPRESSIONS = ("gzip", "zstd")   # what DuckDB's CSV reader decompresses
SPARK_COMPRESSIONS = ("gzip", "bz2")     # what Spark's (Hadoop's built-in codecs) do
COMPRESSION_RATIO = 5.0      # CSV bytes per compressed byte: a generous guess, so auto errs towards duckdb


@dataclass(frozen=True)
class Source:
    """The data: its files, their format ('parquet', 'csv', 'tsv'), whether the paths carry Hive keys."""

    spec: str
    files: tuple[str, ...]
    format: str
    hive: bool
    compression: str | None = None     # of the text files: 'gzip', 'bz2', 'xz', 'zstd' (one kind per source)
    dialect: Dialect = Dialect()

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
        ratio = COMPRESSION_RATIO if self.compression else 1.0
        return int(sum(os.path.getsize(f) for f in self.files) * DECODED_CSV_FACTOR * ratio)

    def category_orders(self) -> dict[str, tuple]:
        """The stored category order of each dictionary-encoded text column of Parquet data (a pandas
        categorical's categories), by column name: what the memory reader keeps as level order. Each
        file's first row group holds its dictionary (pyarrow writes a categorical's whole dictionary
        into every row group); across files, categories in the order files and dictionaries first show them."""
        if self.format != "parquet":
            return {}
        import pyarrow as pa
        import pyarrow.parquet as pq

        out: dict[str, dict] = {}
        for f in self.files:
            pf = pq.ParquetFile(f)
            cols = [fl.name for fl in pf.schema_arrow if pa.types.is_dictionary(fl.type)
                    and (pa.types.is_string(fl.type.value_type) or pa.types.is_large_string(fl.type.value_type))]
            if not cols or pf.metadata.num_row_groups == 0:
                continue
            table = pf.read_row_group(0, columns=cols)
            for name in cols:
                seen = out.setdefault(name, {})
                for chunk in table.column(name).chunks:
                    seen.update(dict.fromkeys(chunk.dictionary.to_pylist()))
        return {name: tuple(seen) for name, seen in out.items()}

    def delimiter(self) -> str:
        """The field delimiter of text files: --delimiter, else tab for .tsv, else sniffed from the first
        file's first bytes as the memory reader does (comma when unsure)."""
        if self.dialect.delimiter is not None:
            return self.dialect.delimiter
        if self.format == "tsv":
            return "\t"
        head = _text_head(self.files[0], self.compression)
        return sniff_delimiter(head.decode("utf-8", errors="replace"))

    def with_dialect(self, dialect: Dialect) -> "Source":
        from dataclasses import replace

        return replace(self, dialect=dialect)


def _text_head(path: str, compression: str | None) -> bytes:
    """The first SNIFF_BYTES of a text file, decompressed."""
    import bz2
    import gzip
    import lzma

    if compression == "zstd":
        import pyarrow as pa

        with pa.input_stream(path, compression="zstd") as fh:
            return fh.read(SNIFF_BYTES)
    opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(compression, open)
    try:
        with opener(path, "rb") as fh:
            return fh.read(SNIFF_BYTES)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise DataError(f"cannot read '{path}': {exc}") from exc


def _split_ext(path: str) -> tuple[str, str | None]:
    """(format extension, compression or None): d.csv.gz -> ('.csv', 'gzip')."""
    p = Path(path)
    compression = COMPRESSED_EXT.get(p.suffix.lower())
    return (Path(p.stem).suffix.lower() if compression else p.suffix.lower()), compression


def _format_of(path: str) -> str | None:
    ext, compression = _split_ext(path)
    if ext in PARQUET_EXT and not compression:
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
    where = "directory" if p.is_dir() else "pattern"
    if len(formats) > 1:
        raise DataError(f"'{spec}' is a {where} that mixes {' and '.join(sorted(formats))} files; use one format")
    compressions = {_split_ext(f)[1] for f in files}
    if len(compressions) > 1:
        raise DataError(f"'{spec}' is a {where} that mixes compressed and plain (or differently compressed) "
                        "files; use one kind")
    return Source(spec, tuple(files), formats.pop(), hive, compressions.pop())
