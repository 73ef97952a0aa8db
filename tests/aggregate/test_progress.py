"""Long passes show progress on stderr when it is a terminal, and nothing in pipes."""

from __future__ import annotations

import io
import sys

import numpy as np
import pyarrow as pa
import pytest

import lmmcli.aggregate.duckdb_engine as de
from lmmcli.aggregate.source import resolve
from tests.aggregate.test_duckdb import _frame

SLOW_QUERY = "SELECT SUM(sqrt(a.range * b.range)) AS s FROM range(20000) a, range(1000) b"


@pytest.fixture()
def data(tmp_path):
    path = tmp_path / "d.parquet"
    _frame(seed=51).to_parquet(path)
    return path


def _stderr_of(monkeypatch, fn) -> str:
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    fn()
    return buf.getvalue()


def test_duckdb_query_progress_on_a_terminal(data, monkeypatch):
    monkeypatch.setattr(de, "PROGRESS_EVERY", 0.02)
    runner = de.DuckDBRunner(resolve(str(data)), progress=True)
    err = _stderr_of(monkeypatch, lambda: runner.run(SLOW_QUERY))
    assert "aggregating d.parquet with duckdb:" in err and "%" in err
    assert err.endswith("\r\033[K")          # the line is cleared when the query ends


def test_duckdb_silent_in_pipes(data, monkeypatch):
    monkeypatch.setattr(de, "PROGRESS_EVERY", 0.02)
    monkeypatch.setattr(sys, "stderr", io.StringIO())      # not a terminal: progress defaults off
    runner = de.DuckDBRunner(resolve(str(data)))
    assert runner.progress is False
    assert _stderr_of(monkeypatch, lambda: runner.run(SLOW_QUERY)) == ""


def test_streamed_predictions_count_rows():
    from lmmcli.predict.stream import counted

    seen = []
    tables = [pa.table({"x": np.arange(k)}) for k in (3, 4)]
    assert [t.num_rows for t in counted(iter(tables), seen.append)] == [3, 4]
    assert seen == [3, 7]
