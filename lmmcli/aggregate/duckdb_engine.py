"""--engine duckdb: the plan's GROUP BYs run by DuckDB straight from Parquet or CSV files (globs,
directories, Hive partitions), multithreaded, spilling to disk past --memory-limit.

duckdb is an optional dependency (`pip install lmmcli[duckdb]`), imported when this engine is used.
"""

from __future__ import annotations

import sys
import tempfile
import threading

import numpy as np

from lmmcli.aggregate.source import DUCKDB_COMPRESSIONS, Source
from lmmcli.aggregate.sql import DUCKDB, VIEW
from lmmcli.errors import DataError, LmmError
from lmmcli.io.text import NA_STRINGS, _r_names


def kind_of(sql_type: str) -> str:
    """'float', 'int', 'bool' or 'text' for a DuckDB column type."""
    t = sql_type.upper()
    if t.startswith(("DOUBLE", "FLOAT", "REAL", "DECIMAL")):
        return "float"
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
             "UBIGINT"):
        return "int"
    return "bool" if t == "BOOLEAN" else "text"


def _list(files) -> str:
    return "[" + ", ".join(DUCKDB.literal(f) for f in files) + "]"


def reader_sql(src: Source) -> str:
    """DuckDB's table function that reads the source (text: the source's delimiter and decimal mark)."""
    files, hive = _list(src.files), "true" if src.hive else "false"
    if src.format == "parquet":
        return f"read_parquet({files}, hive_partitioning = {hive}, union_by_name = true)"
    if src.compression not in (None, *DUCKDB_COMPRESSIONS):
        raise DataError(f"--engine duckdb cannot read {src.compression}-compressed text ('{src.label}')",
                        hint="recompress it with gzip or zstd, or use --engine memory")
    nulls = "[" + ", ".join(DUCKDB.literal(s) for s in NA_STRINGS) + "]"
    delim, decimal = src.delimiter(), src.dialect.decimal
    if delim == decimal:
        raise DataError(f"the delimiter and the decimal mark of {src.label} are both '{delim}'",
                        hint="give --delimiter ';' with --decimal ','")
    return (f"read_csv({files}, header = true, delim = {DUCKDB.literal(delim)}, "
            f"decimal_separator = {DUCKDB.literal(decimal)}, nullstr = {nulls}, compression = "
            f"{DUCKDB.literal(src.compression or 'none')}, hive_partitioning = {hive}, union_by_name = true, "
            "sample_size = 100000)")


# DuckDB keeps what a query's scan buffered until its limit (80% of RAM) presses: 180 MB for a LIMIT
# query over a 1e7-row Parquet file. Scans and small GROUP BYs run as fast within this (measured at
# 1e7 rows: the same times, peak 476 -> 336 MB with the GROUP BY also limited).
SCAN_MEMORY = "256MB"
PROGRESS_EVERY = 0.5      # seconds between progress lines on a terminal


class DuckDBRunner:
    """Runs SQL over the source as the view lmm_data (columns under R's names), returns numpy columns."""

    dialect = DUCKDB
    name = "duckdb"

    def __init__(self, src: Source, threads: int | None = None, memory_limit: str | None = None,
                 progress: bool | None = None):
        try:
            import duckdb
        except ImportError as exc:
            raise LmmError("--engine duckdb needs the duckdb package", hint="pip install 'lmmcli[duckdb]'") from exc
        self.duckdb = duckdb
        self.src = src
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._tmp = tempfile.TemporaryDirectory(prefix="lmm_duckdb_")
        self.con = duckdb.connect(config={"temp_directory": self._tmp.name})
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        # (limit of scans and small results, limit of GROUP BYs by level; None: DuckDB's default, 80% of RAM)
        self._limits = (memory_limit, memory_limit) if memory_limit else (SCAN_MEMORY, None)
        self._limit = "unset"
        self._set_limit(True)
        self.con.execute("SET preserve_insertion_order = false")
        if self.progress:      # DuckDB tracks a query's progress only with its bar on; lmm draws its own
            self.con.execute("SET enable_progress_bar = true")
            self.con.execute("SET enable_progress_bar_print = false")
        self._make_view()      # (reading the schema: CSV sniffing, under the GROUP BY's limit)
        self._set_limit(False)

    def _set_limit(self, grouped: bool) -> None:
        limit = self._limits[grouped]
        if limit == self._limit:
            return
        self.con.execute("RESET memory_limit" if limit is None else f"SET memory_limit = {DUCKDB.literal(limit)}")
        self._limit = limit

    def _make_view(self) -> None:
        try:
            cols = self.con.execute(f"DESCRIBE SELECT * FROM {reader_sql(self.src)}").fetchall()
        except self.duckdb.Error as exc:
            raise DataError(f"cannot read '{self.src.spec}': {str(exc).splitlines()[0]}") from exc
        names = _r_names([c[0] for c in cols])
        self._kinds = {r: kind_of(c[1]) for r, c in zip(names, cols)}
        sel = ", ".join(f"{DUCKDB.ident(c[0])} AS {DUCKDB.ident(r)}" for r, c in zip(names, cols))
        self.con.execute(f"CREATE TEMP VIEW {VIEW} AS SELECT {sel} FROM {reader_sql(self.src)}")

    def kinds(self) -> dict[str, str]:
        return dict(self._kinds)

    def run(self, query: str, grouped: bool = False) -> dict[str, np.ndarray]:
        """The query's result as numpy columns (text as object arrays). grouped: a GROUP BY whose groups
        may be many (a term's levels, level pairs), which may use DuckDB's default memory; other queries
        run within SCAN_MEMORY unless --memory-limit says otherwise."""
        self._set_limit(grouped)
        try:
            table = self._execute_within_limits(query)
        except self.duckdb.Error as exc:
            raise DataError(f"DuckDB could not aggregate '{self.src.label}': {str(exc).splitlines()[0]}") from exc
        finally:
            self._set_limit(False)      # give back what the GROUP BY buffered before the fit runs
        return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}

    def _execute_within_limits(self, query: str):
        """Execute; a query that needs more than SCAN_MEMORY (e.g. compressed CSV's decompression
        buffers) is run again with DuckDB's default, which then stays (a user's --memory-limit is kept)."""
        try:
            return self._execute(query)
        except self.duckdb.OutOfMemoryException:
            if self._limits[0] != SCAN_MEMORY or self._limit != SCAN_MEMORY:
                raise
            self._limits = (None, None)
            self._set_limit(False)
            return self._execute(query)

    def _execute(self, query: str):
        """Execute, showing DuckDB's query progress on stderr when it is a terminal."""
        if not self.progress:
            return self.con.sql(query).to_arrow_table()
        done = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(done,), daemon=True)
        watcher.start()
        try:
            return self.con.sql(query).to_arrow_table()
        finally:
            done.set()
            watcher.join()
            sys.stderr.write("\r\033[K")

    def _watch(self, done: threading.Event) -> None:
        while not done.wait(PROGRESS_EVERY):
            try:
                pct = self.con.query_progress()
            except Exception:    # the query finished between the check and the call
                return
            if pct >= 0:
                sys.stderr.write(f"\raggregating {self.src.label} with duckdb: {pct:5.1f}%")
                sys.stderr.flush()

    def batches(self, columns, rows: int = 1 << 20):
        """The rows of these columns (raw values, R's names) in input order, as pyarrow RecordBatches."""
        self.con.execute("SET preserve_insertion_order = true")
        self._set_limit(True)        # an ordered scan buffers more; no fallback once it streams
        cols = ", ".join(DUCKDB.ident(c) for c in columns)
        yield from self.con.sql(f"SELECT {cols} FROM {VIEW}").to_arrow_reader(rows)

    def register(self, name: str, columns: dict) -> None:
        """A table of numpy columns, queryable by name."""
        import pyarrow as pa

        self.con.register(name, pa.table({k: np.asarray(v) for k, v in columns.items()}))

    def close(self) -> None:
        self.con.close()
        self._tmp.cleanup()
