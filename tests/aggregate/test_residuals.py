"""aggregate/residuals.py: the one-pass windowed quantiles and the two-pass fallback are exact (R type 7)."""

import duckdb
import numpy as np
import pytest

from lmmcli.aggregate import residuals


class TableRunner:
    """The runner interface (run(query) -> numpy columns) over one in-memory DuckDB table `t` of column r."""

    def __init__(self, r):
        self.con = duckdb.connect()
        self.con.execute("CREATE TABLE t AS SELECT * FROM (SELECT unnest($1::DOUBLE[]) AS r)", [list(map(float, r))])
        self.queries = 0

    def run(self, query):
        self.queries += 1
        table = self.con.sql(query).to_arrow_table()
        return {c: table.column(c).to_numpy() for c in table.column_names}


ROWS = "(SELECT r FROM t) AS rr"


def want(r):
    return dict(zip(("min", "q1", "median", "q3", "max"), np.quantile(r, [0, 0.25, 0.5, 0.75, 1])))


@pytest.mark.parametrize("n", [1, 2, 7, 5000])
def test_windowed_pass_is_exact(n, monkeypatch):
    monkeypatch.setattr(residuals, "PILOT", 1000)
    r = np.random.default_rng(n).standard_t(3, size=n)
    r[: n // 10] = np.round(r[: n // 10], 1)                                      # ties
    runner = TableRunner(r)
    pilot = np.sort(runner.run(f"SELECT r FROM {ROWS} LIMIT {residuals.PILOT}")["r"])
    found = residuals._windowed(runner, ROWS, pilot)
    assert found is not None
    assert_quantiles(found, r)


def test_misleading_pilot_falls_back_to_two_passes():
    r = np.random.default_rng(0).standard_normal(5000)
    runner = TableRunner(r)
    pilot = np.sort(r)[:1000]                   # the smallest fifth: its windows miss the wanted ranks
    assert residuals._windowed(runner, ROWS, pilot) is None
    assert_quantiles(residuals._two_pass(runner, ROWS), r)


def assert_quantiles(found, r):
    n, lo, hi, stats = found
    assert n == len(r) and lo == r.min() and hi == r.max()
    srt = np.sort(r)
    for rank, value in stats.items():
        assert value == srt[rank]
