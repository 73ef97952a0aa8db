"""--engine spark: the plan's GROUP BYs as Spark SQL through pyspark, for data that lives on a cluster
(--spark-master; local[*] by default). The grouped results (one row per level or level pair) are
collected to the driver, where the fit runs.

pyspark is an optional dependency (`pip install lmmcli[spark]`, needs Java 17), imported when used.
One SparkSession serves the process (starting one takes seconds).
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

from lmmcli.aggregate.source import SPARK_COMPRESSIONS, Source
from lmmcli.aggregate.sql import SPARK, VIEW
from lmmcli.errors import DataError, LmmError
from lmmcli.io.text import _r_names

DEFAULT_MASTER = "local[*]"
# a number written with a decimal comma (or an integer): what --decimal , reads as a number
DECIMAL_COMMA = r"^\s*[-+]?([0-9]+(,[0-9]*)?|,[0-9]+)([eE][-+]?[0-9]+)?\s*$"


def kind_of(spark_type: str) -> str:
    """'float', 'int', 'bool' or 'text' for a Spark simple type name."""
    t = spark_type.lower()
    if t in ("double", "float") or t.startswith("decimal"):
        return "float"
    if t in ("int", "bigint", "smallint", "tinyint"):
        return "int"
    return "bool" if t == "boolean" else "text"


def session(master: str | None):
    """The process's SparkSession (created on first use), quiet and with Arrow transfers."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise LmmError("--engine spark needs the pyspark package (and Java 17)",
                       hint="pip install 'lmmcli[spark]'") from exc
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)    # local workers (streamed predict) run lmm's Python
    builder = (SparkSession.builder.master(master or DEFAULT_MASTER).appName("lmm")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "8")
               .config("spark.driver.memory", "2g")
               .config("spark.ui.showConsoleProgress", "true" if sys.stderr.isatty() else "false"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


class SparkRunner:
    """Runs SQL over the source as the temp view lmm_data (columns under R's names), returns numpy columns."""

    dialect = SPARK
    name = "spark"

    def __init__(self, src: Source, master: str | None = None):
        self.spark = session(master)
        self.src = src
        self._make_view()

    def _read(self, files, schema=None):
        """A DataFrame of these files of the source, as Spark reads them (schema: the whole source's)."""
        r = self.spark.read
        if self.src.hive:
            r = r.option("basePath", self.src.spec)     # the key=value directories become columns
        if schema is not None:
            r = r.schema(schema)
        if self.src.format == "parquet":
            return r.option("mergeSchema", "true").parquet(*files)
        if self.src.compression not in (None, *SPARK_COMPRESSIONS):
            raise DataError(f"--engine spark cannot read {self.src.compression}-compressed text ('{self.src.label}')",
                            hint="recompress it with gzip or bzip2, or use --engine duckdb or memory")
        return (r.option("header", "true").option("inferSchema", "true").option("sep", self.src.delimiter())
                .option("nullValue", "NA").csv(list(files)))

    def _typed(self, df):
        """The columns under R's names, decimal-comma text as doubles (--decimal ,)."""
        from pyspark.sql import functions as F

        for c in self._comma_columns:
            df = df.withColumn(c, as_double(F.col(SPARK.ident(c))))
        return df.toDF(*self._names)

    def _make_view(self) -> None:
        try:
            df = self._read(self.src.files)
            self._schema = df.schema
            self._comma_columns = decimal_comma_columns(df) if self.src.format != "parquet" and \
                self.src.dialect.decimal == "," else []
            self._names = _r_names(df.columns)
            df = self._typed(df)
        except LmmError:
            raise
        except Exception as exc:     # pyspark raises its own analysis errors for unreadable input
            raise DataError(f"Spark cannot read '{self.src.spec}': {str(exc).splitlines()[0]}") from exc
        self._kinds = {r: kind_of(t) for r, (_, t) in zip(self._names, df.dtypes)}
        df.createOrReplaceTempView(VIEW)

    def batches(self, columns, rows: int = 1 << 20):
        """The rows of these columns (raw values, R's names) in input order, as pyarrow RecordBatches.

        File by file (in the source's order), so the order is the files' own: a scan of several files
        would place the splits by size. Spark's workers turn each partition into Arrow IPC bytes; the
        driver holds one partition at a time (toLocalIterator) and re-chunks to `rows` rows."""
        import pyarrow as pa

        pending, held = [], 0
        for f in self.src.files:
            from pyspark.sql import functions as F

            df = self._typed(self._read([f], self._schema)).select(*[F.col(SPARK.ident(c)) for c in columns])
            for rec in df.mapInArrow(_ipc_batches, "ipc binary").toLocalIterator():
                for b in pa.ipc.open_stream(bytes(rec["ipc"])):
                    pending.append(b)
                    held += b.num_rows
                    if held >= rows:
                        yield from pa.Table.from_batches(pending).combine_chunks().to_batches()
                        pending, held = [], 0
        if pending:
            yield from pa.Table.from_batches(pending).combine_chunks().to_batches()

    def kinds(self) -> dict[str, str]:
        return dict(self._kinds)

    def run(self, query: str, grouped: bool = False) -> dict[str, np.ndarray]:
        """The query's result as numpy columns (collected to the driver through Arrow); grouped: as DuckDB's
        (Spark's executors manage their own memory)."""
        try:
            with warnings.catch_warnings():   # pyspark warns about pandas 3 on every conversion
                warnings.simplefilter("ignore")
                pdf = self.spark.sql(query).toPandas()
        except Exception as exc:
            raise DataError(f"Spark could not aggregate '{self.src.label}': {str(exc).splitlines()[0]}") from exc
        return {c: _numpy(pdf[c]) for c in pdf.columns}

    def register(self, name: str, columns: dict) -> None:
        """A table of numpy columns, queryable by name (a temp view)."""
        import pandas as pd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.spark.createDataFrame(pd.DataFrame({k: np.asarray(v) for k, v in columns.items()})) \
                .createOrReplaceTempView(name)

    def close(self) -> None:
        """The session stays for the process (other fits reuse it); only the views go."""
        for t in self.spark.catalog.listTables():
            if t.isTemporary:
                self.spark.catalog.dropTempView(t.name)


def decimal_comma_columns(df) -> list[str]:
    """--decimal ,: Spark's CSV reader knows only '.', so the text columns whose every value is a number
    with a decimal comma are to be read as doubles (one pass over the text columns decides which)."""
    from pyspark.sql import functions as F

    text = [c for c, t in df.dtypes if t == "string"]
    if not text:
        return []
    cols = [F.col(SPARK.ident(c)) for c in text]
    odd = df.agg(*[F.sum(F.when(c.isNotNull() & ~c.rlike(DECIMAL_COMMA), 1).otherwise(0)).alias(f"o{i}")
                   for i, c in enumerate(cols)]).collect()[0]
    return [c for i, c in enumerate(text) if not odd[f"o{i}"]]


def as_double(col):
    """A decimal-comma text column as doubles."""
    from pyspark.sql import functions as F

    return F.regexp_replace(F.trim(col), ",", ".").cast("double")


def _ipc_batches(batches):
    """(On a Spark worker) each Arrow batch of a partition as one row of Arrow IPC stream bytes."""
    import pyarrow as pa

    for b in batches:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, b.schema) as w:
            w.write_batch(b)
        yield pa.RecordBatch.from_pydict({"ipc": [sink.getvalue().to_pybytes()]})


def _numpy(col) -> np.ndarray:
    """A pandas column as numpy: numbers and booleans as themselves, text as an object array."""
    if col.dtype == object:
        return np.array(col.tolist(), dtype=object)
    return col.to_numpy()
