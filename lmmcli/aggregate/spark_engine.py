"""--engine spark: the plan's GROUP BYs as Spark SQL through pyspark, for data that lives on a cluster
(--spark-master; local[*] by default). The grouped results (one row per level or level pair) are
collected to the driver, where the fit runs.

pyspark is an optional dependency (`pip install lmmcli[spark]`, needs Java 17), imported when used.
One SparkSession serves the process (starting one takes seconds).
"""

from __future__ import annotations

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

    def _reader(self):
        files = list(self.src.files)
        if self.src.format == "parquet":
            r = self.spark.read
            if self.src.hive:
                r = r.option("basePath", self.src.spec)
                files = [self.src.spec]
            return r.option("mergeSchema", "true").parquet(*files)
        if self.src.compression not in (None, *SPARK_COMPRESSIONS):
            raise DataError(f"--engine spark cannot read {self.src.compression}-compressed text ('{self.src.label}')",
                            hint="recompress it with gzip or bzip2, or use --engine duckdb or memory")
        sep = self.src.delimiter()
        df = (self.spark.read.option("header", "true").option("inferSchema", "true").option("sep", sep)
              .option("nullValue", "NA").csv(files))
        return _decimal_commas(df) if self.src.dialect.decimal == "," else df

    def _make_view(self) -> None:
        try:
            df = self._reader()
        except Exception as exc:     # pyspark raises its own analysis errors for unreadable input
            raise DataError(f"Spark cannot read '{self.src.spec}': {str(exc).splitlines()[0]}") from exc
        names = _r_names(df.columns)
        self._kinds = {r: kind_of(t) for r, (_, t) in zip(names, df.dtypes)}
        df = df.toDF(*names)
        df.createOrReplaceTempView(VIEW)

    def kinds(self) -> dict[str, str]:
        return dict(self._kinds)

    def run(self, query: str) -> dict[str, np.ndarray]:
        """The query's result as numpy columns (collected to the driver through Arrow)."""
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


def _decimal_commas(df):
    """--decimal ,: Spark's CSV reader knows only '.', so the text columns whose every value is a number
    with a decimal comma become doubles (one pass over the text columns decides which)."""
    from pyspark.sql import functions as F

    text = [c for c, t in df.dtypes if t == "string"]
    if not text:
        return df
    odd = df.agg(*[F.sum(F.when(df[c].isNotNull() & ~df[c].rlike(DECIMAL_COMMA), 1).otherwise(0)).alias(f"o{i}")
                   for i, c in enumerate(text)]).collect()[0]
    for i, c in enumerate(text):
        if not odd[f"o{i}"]:
            df = df.withColumn(c, F.regexp_replace(F.trim(df[c]), ",", ".").cast("double"))
    return df


def _numpy(col) -> np.ndarray:
    """A pandas column as numpy: numbers and booleans as themselves, text as an object array."""
    if col.dtype == object:
        return np.array(col.tolist(), dtype=object)
    return col.to_numpy()
