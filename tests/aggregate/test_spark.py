"""--engine spark (pyspark in local mode, for real): the same plan as DuckDB gives the same fit.
Few tests, one SparkSession for the whole test session (starting it takes seconds)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.aggregate.conftest import assert_same_fit, fit_both, rel
from tests.aggregate.test_duckdb import _frame

pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java", allow_module_level=True)


@pytest.fixture(scope="session")
def spark_runner_for():
    from lmmcli.aggregate.source import resolve
    from lmmcli.aggregate.spark_engine import SparkRunner

    made = []

    def make(path, dialect=None):
        src = resolve(str(path))
        made.append(SparkRunner(src if dialect is None else src.with_dialect(dialect), "local[2]"))
        return made[-1]

    yield make
    if made:
        made[0].spark.stop()


def test_spark_crossed_factor_missing_csv(tmp_path, spark_runner_for):
    """Factors, missing values (NA in CSV) and crossed terms through Spark SQL agree with memory."""
    df = _frame(seed=11)
    df.loc[[2, 9, 33], "x"] = np.nan
    df.loc[[4], "f"] = None
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False, na_rep="NA")
    formula = "y ~ x + f + (1|g) + (1|item)"
    mem, agg = fit_both(path, formula, factors=("item",), runner=spark_runner_for(path))
    assert agg.engine_name == "spark"
    assert_same_fit(mem, agg, at_optimum=1e-8)
    for key, v in mem.residual_quantiles().items():
        assert abs(agg.residuals[key] - v) < 1e-6


def test_spark_parts_equal_duckdb(tmp_path, spark_runner_for):
    """A directory of Parquet parts: Spark's sums and DuckDB's give the same objective to 1e-10."""
    from lmmcli.aggregate.duckdb_engine import DuckDBRunner
    from lmmcli.aggregate.source import resolve
    from lmmcli.fit_scale import fit_source

    df = _frame(n_groups=40, seed=12)
    df["x"] = df["x"] + np.log(df["w"])
    (tmp_path / "parts").mkdir()
    for i, idx in enumerate(np.array_split(np.random.default_rng(1).permutation(len(df)), 3)):
        df.iloc[idx].to_parquet(tmp_path / "parts" / f"p{i}.parquet")
    formula = "y ~ scale(x) + b + (x|g)"
    sp = fit_source(formula, spark_runner_for(tmp_path / "parts"), residuals=False)
    dk = fit_source(formula, DuckDBRunner(resolve(str(tmp_path / "parts")), progress=False), residuals=False)
    assert rel(sp.model.objective(dk.sol.theta), dk.model.objective(dk.sol.theta)) < 1e-10
    assert rel(sp.sol.objective, dk.sol.objective) < 1e-10
    assert sp.design.fixed_names == dk.design.fixed_names


def test_spark_semicolon_decimal_comma_gzip(tmp_path, spark_runner_for):
    """A gzipped semicolon CSV with decimal commas (delimiter sniffed, --decimal ,) reads as in memory."""
    import gzip

    from lmmcli.fit import fit
    from lmmcli.fit_scale import fit_source
    from lmmcli.io.read import read_table
    from lmmcli.io.text import Dialect
    from tests.aggregate.test_dialect import FORMULA, semicolon_csv

    plain = semicolon_csv(tmp_path / "eu.csv")
    packed = tmp_path / "eu.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    mem = fit(FORMULA, read_table(str(plain), dialect=Dialect(";", ",")))
    agg = fit_source(FORMULA, spark_runner_for(packed, Dialect(None, ",")))
    assert_same_fit(mem, agg, at_optimum=1e-8)


def _cli(*args):
    from typer.testing import CliRunner

    from lmmcli.cli import app

    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


@pytest.mark.slow
def test_spark_streamed_predict_and_ranef_parquet(tmp_path, spark_runner_for):
    """predict streams through Spark (parts read in order, batch by batch), ranef -o x.parquet is
    columnar, a categorical's stored level order is kept: all as in memory."""
    import pyarrow.parquet as pq

    import lmmcli.predict.stream as ps

    spark_runner_for  # the session fixture: the CLI's Spark reuses it
    import pandas as pd

    df = _frame(seed=13)
    df.loc[[1, 50], "x"] = np.nan
    df["g"] = pd.Categorical(df["g"], categories=sorted(df["g"].unique(), reverse=True))   # stored order kept
    (tmp_path / "parts").mkdir()
    for i, idx in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[idx].to_parquet(tmp_path / "parts" / f"p{i}.parquet")
    df.to_parquet(tmp_path / "all.parquet")
    formula = "y ~ x + f + (x|g)"
    ps.BATCH_ROWS, old = 50, ps.BATCH_ROWS
    try:
        _cli("predict", tmp_path / "parts", formula, "--engine", "spark", "--keep", "g", "-o", tmp_path / "s.parquet")
    finally:
        ps.BATCH_ROWS = old
    _cli("predict", tmp_path / "all.parquet", formula, "--engine", "memory", "--keep", "g", "-o", tmp_path / "m.parquet")
    s, m = pq.read_table(tmp_path / "s.parquet").to_pandas(), pq.read_table(tmp_path / "m.parquet").to_pandas()
    assert list(s.columns) == list(m.columns) and (s["row"] == m["row"]).all() and (s["g"] == m["g"]).all()
    assert s["prediction"].isna().sum() == 2
    # the two fits stop within BOBYQA's tolerance of each other (theta ~1e-6 apart), not at one point
    np.testing.assert_allclose(s["prediction"], m["prediction"], rtol=1e-5)
    _cli("ranef", tmp_path / "parts", formula, "--engine", "spark", "-o", tmp_path / "rs.parquet")
    _cli("ranef", tmp_path / "all.parquet", formula, "--engine", "memory", "-o", tmp_path / "rm.parquet")
    rs, rm = pq.read_table(tmp_path / "rs.parquet").to_pandas(), pq.read_table(tmp_path / "rm.parquet").to_pandas()
    assert (rs["level"] == rm["level"]).all() and (rs["term"] == rm["term"]).all()
    np.testing.assert_allclose(rs["estimate"], rm["estimate"], rtol=1e-4, atol=1e-4 * np.abs(rm["estimate"]).max())


@pytest.mark.slow
def test_spark_compare_matches_memory(tmp_path, spark_runner_for):
    import json

    spark_runner_for
    df = _frame(seed=14)
    df.loc[[4, 77], "f"] = None
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False, na_rep="NA")
    models = ("y ~ x + (1|g)", "y ~ x + f + (x|g)")
    s = json.loads(_cli("compare", path, *models, "--engine", "spark", "-f", "json").stdout)
    m = json.loads(_cli("compare", path, *models, "--engine", "memory", "-f", "json").stdout)
    assert s["nobs"] == m["nobs"] == len(df) - 2
    assert rel([r["deviance"] for r in s["models"]], [r["deviance"] for r in m["models"]]) < 1e-10
    assert abs(s["models"][1]["chisq"] - m["models"][1]["chisq"]) < 1e-6
