"""Text data the aggregation engines read as the memory reader does: --delimiter and --decimal given
or sniffed, compressed CSV; a semicolon CSV with decimal commas gives the memory fit."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lmmcli.cli import app
from tests.aggregate.conftest import rel
from tests.aggregate.test_duckdb import _frame

FORMULA = "y ~ x + f + (x|g)"


def _fit(*args, code=0):
    res = CliRunner().invoke(app, ["fit", *map(str, args), "-f", "json", "--df", "none"])
    assert res.exit_code == code, res.output
    return json.loads(res.stdout) if code == 0 else res


def semicolon_csv(path):
    """The European spelling: ';' between fields, ',' as the decimal mark, NA for missing."""
    df = _frame(seed=41)
    df.loc[[3, 30], "x"] = np.nan
    text = df.to_csv(index=False, sep=";", decimal=",", na_rep="NA")
    path.write_text(text)
    return path


def assert_same(a: dict, b: dict) -> None:
    assert a["nobs"] == b["nobs"] and [fe["term"] for fe in a["fixed_effects"]] == \
        [fe["term"] for fe in b["fixed_effects"]]
    assert rel(a["reml_criterion"], b["reml_criterion"]) < 1e-10
    assert rel([fe["estimate"] for fe in a["fixed_effects"]], [fe["estimate"] for fe in b["fixed_effects"]]) < 1e-5   # (optimizer stops)


@pytest.mark.parametrize("delimiter", [("--delimiter", ";"), ()], ids=["given", "sniffed"])
def test_semicolon_decimal_comma_duckdb(tmp_path, delimiter):
    path = semicolon_csv(tmp_path / "eu.csv")
    mem = _fit(path, FORMULA, *delimiter, "--decimal", ",", "--engine", "memory")
    agg = _fit(path, FORMULA, *delimiter, "--decimal", ",", "--engine", "duckdb")
    assert agg["engine"] == "duckdb" and agg["nobs"] == 358
    assert_same(agg, mem)


def test_gzip_csv_and_glob_of_gzip_parts(tmp_path):
    df = _frame(seed=42)
    plain = tmp_path / "d.csv"
    df.to_csv(plain, index=False)
    (tmp_path / "parts").mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        with gzip.open(tmp_path / "parts" / f"p{i}.csv.gz", "wt") as fh:
            df.iloc[part].to_csv(fh, index=False)
    mem = _fit(plain, FORMULA, "--engine", "memory")
    agg = _fit(tmp_path / "parts" / "*.csv.gz", FORMULA)        # a glob: auto takes duckdb
    assert agg["engine"] == "duckdb"
    assert_same(agg, mem)


def test_compression_duckdb_cannot_read_is_one_error(tmp_path):
    import bz2

    df = _frame(seed=43)
    path = tmp_path / "d.csv.bz2"
    path.write_bytes(bz2.compress(df.to_csv(index=False).encode()))
    res = _fit(path, FORMULA, "--engine", "duckdb", code=1)
    assert "cannot read bz2-compressed" in res.output and "Traceback" not in res.output
    assert _fit(path, FORMULA)["engine"] == "memory"          # auto: the memory reader decompresses it


def test_same_delimiter_and_decimal_refused(tmp_path):
    path = semicolon_csv(tmp_path / "eu.csv")
    res = _fit(path, FORMULA, "--delimiter", ",", "--decimal", ",", "--engine", "duckdb", code=1)
    assert "both ','" in res.output
