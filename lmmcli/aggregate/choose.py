"""Which engine fits: --engine auto takes `memory` when the decoded data is comfortably below the free
memory, else `duckdb`; and the runner of an aggregation engine for a DATA argument."""

from __future__ import annotations

from dataclasses import dataclass

from lmmcli.aggregate.source import DUCKDB_COMPRESSIONS, resolve
from lmmcli.errors import DataError, UsageError
from lmmcli.io.text import Dialect

ENGINES = ("auto", "memory", "duckdb", "spark")
HEADROOM = 4.0      # memory is chosen when decoded size x HEADROOM < available memory (the fit's copies)


@dataclass(frozen=True)
class EngineOptions:
    """--engine, --threads, --memory-limit, --spark-master, and the text dialect."""

    engine: str = "auto"
    threads: int | None = None
    memory_limit: str | None = None
    spark_master: str | None = None
    dialect: Dialect = Dialect()         # --delimiter, --decimal of text data


def available_memory() -> int:
    """MemAvailable from /proc/meminfo (bytes); a large number where it cannot be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62


def _has_duckdb() -> bool:
    import importlib.util

    return importlib.util.find_spec("duckdb") is not None


def choose_engine(data: str, engine: str = "auto") -> str:
    """The engine that will fit DATA: the one asked for, or auto's choice."""
    if engine not in ENGINES:
        raise UsageError(f"unknown --engine '{engine}'", hint=f"use one of: {', '.join(ENGINES)}")
    if engine != "auto":
        return engine
    if data == "-":
        return "memory"
    try:
        src = resolve(data)
    except DataError:    # a format only the memory reader knows (compressed CSV, Arrow), or no such file:
        return "memory"  # the memory reader reads it, or says what is wrong
    if not _has_duckdb():
        return "memory"
    if not src.single:
        return "duckdb"
    if src.compression not in (None, *DUCKDB_COMPRESSIONS):
        return "memory"       # one bz2/xz file: the memory reader decompresses it
    try:
        size = src.decoded_bytes()
    except Exception:    # unreadable metadata: the memory reader says what is wrong with the file
        return "memory"
    return "memory" if size * HEADROOM < available_memory() else "duckdb"


def make_runner(engine: str, data: str, opts: EngineOptions):
    """The SQL runner of an aggregation engine over DATA."""
    src = resolve(data).with_dialect(opts.dialect)
    if engine == "duckdb":
        from lmmcli.aggregate.duckdb_engine import DuckDBRunner

        return DuckDBRunner(src, opts.threads, opts.memory_limit)
    if engine == "spark":
        from lmmcli.aggregate.spark_engine import SparkRunner

        return SparkRunner(src, opts.spark_master)
    raise UsageError(f"'{engine}' is not an aggregation engine")
