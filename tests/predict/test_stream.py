"""Streamed predictions and columnar random effects agree with the in-memory ones."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from lmmcli.cli import app
from tests.aggregate.test_duckdb import _frame

pytest.importorskip("duckdb")
FORMULA = "y ~ x + f + (x|g)"


@pytest.fixture()
def data(tmp_path):
    df = _frame(seed=21)
    df.loc[[1, 50], "x"] = np.nan
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    return path


def _run(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


def test_streamed_predictions_match_memory(data, tmp_path, monkeypatch):
    import lmmcli.predict.stream as ps

    monkeypatch.setattr(ps, "BATCH_ROWS", 50)
    _run("predict", data, FORMULA, "--engine", "duckdb", "--interval", "prediction", "--keep", "g",
         "-o", tmp_path / "s.parquet")
    _run("predict", data, FORMULA, "--engine", "memory", "--interval", "prediction", "--keep", "g",
         "-o", tmp_path / "m.parquet")
    s, m = pq.read_table(tmp_path / "s.parquet").to_pandas(), pq.read_table(tmp_path / "m.parquet").to_pandas()
    assert list(s.columns) == list(m.columns)
    assert (s["row"].to_numpy() == m["row"].to_numpy()).all() and (s["g"] == m["g"]).all()
    assert s["prediction"].isna().sum() == 2
    np.testing.assert_allclose(s["prediction"], m["prediction"], rtol=1e-6)
    np.testing.assert_allclose(s["pred_high"], m["pred_high"], rtol=1e-6)


def test_streamed_batches_in_order(data, tmp_path):
    """Many small batches give the same rows as one batch."""
    from lmmcli.aggregate.duckdb_engine import DuckDBRunner
    from lmmcli.aggregate.source import resolve
    from lmmcli.predict.predict import state_from_fit
    from lmmcli.fit_scale import fit_source
    from lmmcli.predict.stream import prediction_batches
    import pyarrow as pa

    runner = DuckDBRunner(resolve(str(data)), progress=False)
    state = state_from_fit(fit_source(FORMULA, runner, residuals=False))
    cols = ["x", "f", "g"]
    small = pa.concat_tables(prediction_batches(state, runner.batches(cols, rows=7)))
    big = pa.concat_tables(prediction_batches(state, runner.batches(cols, rows=10**6)))
    assert small.num_rows == big.num_rows == 360
    assert small["row"].to_pylist() == big["row"].to_pylist()
    assert small["new_level"].to_pylist() == big["new_level"].to_pylist()
    a, b = small["prediction"].to_numpy(zero_copy_only=False), big["prediction"].to_numpy(zero_copy_only=False)
    np.testing.assert_allclose(a, b, rtol=1e-13)


def test_ranef_parquet_matches_table(data, tmp_path):
    _run("ranef", data, FORMULA, "--engine", "duckdb", "-o", tmp_path / "r.parquet")
    res = _run("ranef", data, FORMULA, "--engine", "memory", "-f", "csv")
    import io

    import pandas as pd

    r = pq.read_table(tmp_path / "r.parquet").to_pandas()
    m = pd.read_csv(io.StringIO(res.stdout))
    assert list(r.columns) == list(m.columns) and len(r) == len(m) == 60
    assert (r["level"].astype(str) == m["level"].astype(str)).all() and (r["term"] == m["term"]).all()
    # the two fits stop within BOBYQA's tolerance of each other (theta ~1e-6 apart), not at one point
    scale = np.abs(m["estimate"]).max()
    np.testing.assert_allclose(r["estimate"], m["estimate"], rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(r["std_error"], m["std_error"], rtol=1e-3)
