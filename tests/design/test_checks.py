"""checks.py, through design.build_design: lme4's identifiability rules and the value checks, as exceptions;
and rows with missing values: dropped, counted (n_dropped) and reported in the table, on stderr and in JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lmmcli.cli import app
from lmmcli.design.design import build_design
from lmmcli.errors import DataError, ModelSpecError
from lmmcli.formula import parse_formula


def toy(n_groups=6, per=5, **cols) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = n_groups * per
    df = pd.DataFrame({"y": rng.normal(size=n), "x": np.tile(np.arange(float(per)), n_groups),
                       "g": np.repeat([f"g{i}" for i in range(n_groups)], per), "f": np.tile(["a", "b"], n // 2 + 1)[:n]})
    return df.assign(**cols)


def design(text, df, **kw):
    return build_design(parse_formula(text), df, **kw)


# (id, formula, data, error type, message fragment) -- lme4's rule named where it is one
ERRORS = [
    ("checkNlevels: one level", "y ~ x + (1|g)", toy(g="same"), DataError, "grouping factors must have > 1 sampled level"),
    ("checkNlevels: levels == nobs", "y ~ x + (1|g)", toy(per=1, n_groups=12), DataError,
     "number of levels of each grouping factor must be < number of observations"),
    ("checkNlevels after dropping rows", "y ~ x + (1|g)",
     toy(n_groups=3, per=2, y=[1.0, np.nan, 2.0, np.nan, 3.0, np.nan]), DataError, "has 3 levels for 3 observations"),
    ("checkZdims: slope per pair", "y ~ x + (x|g)", toy(n_groups=10, per=2), DataError,
     "number of observations (=20) <= number of random effects (=20)"),
    ("text response", "y ~ x + (1|g)", toy(y="a"), DataError, "is not numeric: it holds text such as 'a'"),
    ("constant response", "y ~ x + (1|g)", toy(y=2.5), DataError, "is constant (every value is 2.5)"),
    ("all-missing response", "y ~ x + (1|g)", toy(y=np.nan), DataError, "every value of the response 'y' is missing"),
    ("infinite in a random slope only", "y ~ 1 + (log(x)|g)", toy(), DataError, "'log(x)' in the random term for 'g'"),
    ("same column on both sides", "y ~ x + y + (1|g)", toy(), ModelSpecError, "'y' is on both sides"),
    ("--ref on a grouping-only column", "y ~ x + (1|g)", toy(), ModelSpecError, "'g' is not a predictor"),
]


@pytest.mark.parametrize("cid, formula, df, exc, fragment", ERRORS, ids=[e[0] for e in ERRORS])
def test_checks(cid, formula, df, exc, fragment):
    refs = {"g": "g1"} if "--ref" in cid else None
    with pytest.raises(exc) as info:
        design(formula, df, refs=refs)
    assert fragment in info.value.message


def test_log_response_of_its_own_column_is_fine():
    """log(y) ~ x: the response's column is not on the right-hand side."""
    df = toy(y=np.exp(np.random.default_rng(0).normal(size=30)))
    assert design("log(y) ~ x + (1|g)", df).n == 30


def test_boolean_factor_with_missing_values_keeps_r_labels():
    df = toy(b=pd.array([True, False, None] * 10, dtype=object))
    d = design("y ~ b + (1|g)", df)
    assert d.fixed_names == ["(Intercept)", "bTRUE"] and d.n_dropped == 10


def test_rank_z_warning_not_error():
    a = np.repeat(np.arange(6), 2)
    b = np.array([0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 0])
    c = np.array([0, 3, 1, 4, 2, 5, 0, 3, 1, 4, 2, 5])
    df = pd.DataFrame({"y": np.arange(12.0) ** 1.5, "a": a, "b": b, "c": c})
    d = design("y ~ 1 + (1|a) + (1|b) + (1|c)", df)
    assert any("rank(Z) (=12)" in w for w in d.warnings)
    assert not any("rank(Z)" in w for w in design("y ~ 1 + (1|a) + (1|b)", df).warnings)


# -- n_dropped: table, stderr, JSON ---------------------------------------------------------------
@pytest.fixture
def with_missing(tmp_path, sleepstudy):
    df = sleepstudy.copy()
    df.loc[[3, 50, 100], "Reaction"] = np.nan
    df.loc[7, "Days"] = np.nan
    df.to_csv(tmp_path / "s.csv", index=False)
    return str(tmp_path / "s.csv")


def test_n_dropped_everywhere(with_missing):
    runner = CliRunner()
    table = runner.invoke(app, ["fit", with_missing, "Reaction ~ Days + (Days|Subject)"])
    assert table.exit_code == 0
    assert "Number of obs: 176" in table.stdout and "(4 rows with missing values dropped)" in table.stdout
    assert "warning: 4 rows with missing values dropped" in table.stderr
    doc = json.loads(runner.invoke(app, ["fit", with_missing, "Reaction ~ Days + (Days|Subject)", "-f", "json"]).stdout)
    assert (doc["nobs"], doc["n_dropped"]) == (176, 4)
