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

from lmmcli.aggregate.source import Source
from lmmcli.aggregate.sql import SPARK, VIEW
from lmmcli.errors import DataError, LmmError
from lmmcli.io.text import _r_names

DEFAULT_MASTER = "local[*]"


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
        sep = "\t" if self.src.format == "tsv" else ","
        return (self.spark.read.option("header", "true").option("inferSchema", "true").option("sep", sep)
                .option("nullValue", "NA").csv(files))

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


def _numpy(col) -> np.ndarray:
    """A pandas column as numpy: numbers and booleans as themselves, text as an object array."""
    if col.dtype == object:
        return np.array(col.tolist(), dtype=object)
    return col.to_numpy()
