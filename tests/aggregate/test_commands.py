"""Every command that fits works through --engine duckdb and gives the memory answer: compare (ML
refits, --no-refit, common rows), fit --save then predict/ranef --model, coef."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lmmcli.cli import app
from tests.aggregate.conftest import rel
from tests.aggregate.test_duckdb import _frame

M1, M2, M3 = "y ~ x + (1|g)", "y ~ x + (x|g)", "y ~ x + f + (x|g)"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A CSV where f (in one model only) has missing values: the comparison drops those rows for all."""
    df = _frame(seed=31)
    df.loc[[4, 77], "f"] = None
    df.loc[[9], "x"] = np.nan
    path = tmp_path_factory.mktemp("cmd") / "d.csv"
    df.to_csv(path, index=False, na_rep="NA")
    return path


def _run(*args, code=0):
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == code, res.output
    return res


def _json(*args):
    return json.loads(_run(*args, "-f", "json").stdout)


@pytest.mark.parametrize("extra", [(), ("--no-refit",), ("--ml",)], ids=["refit", "no-refit", "ml"])
def test_compare_matches_memory(data, extra):
    formulas = (M1, M2) if extra == ("--no-refit",) else (M1, M2, M3)   # --no-refit: the same fixed effects
    d = _json("compare", data, *formulas, *extra, "--engine", "duckdb")
    m = _json("compare", data, *formulas, *extra, "--engine", "memory")
    assert (d["nobs"], d["n_input"], d["n_dropped"], d["method"], d["refit"]) == \
        (m["nobs"], m["n_input"], m["n_dropped"], m["method"], m["refit"])
    assert d["n_dropped"] == (1 if extra == ("--no-refit",) else 3)
    assert [r["name"] for r in d["models"]] == [r["name"] for r in m["models"]]
    for key in ("npar", "df"):
        assert [r[key] for r in d["models"]] == [r[key] for r in m["models"]]
    assert rel([r["deviance"] for r in d["models"]], [r["deviance"] for r in m["models"]]) < 1e-10
    chisq = [(a["chisq"], b["chisq"]) for a, b in zip(d["models"], m["models"]) if b["chisq"] is not None]
    assert max(abs(a - b) for a, b in chisq) < 1e-6
    assert d["notes"][:-1] == m["notes"] and "duckdb" in d["notes"][-1]
    assert d["warnings"] == m["warnings"]


def test_compare_no_refit_refuses_different_fixed_effects(data):
    res = _run("compare", data, M1, M3, "--no-refit", "--engine", "duckdb", code=2)
    assert "--no-refit compares REML fits" in res.output


def test_compare_glmm_refuses_aggregation(data):
    res = _run("compare", data, M1, M2, "--family", "poisson", "--engine", "duckdb", code=2)
    assert "a GLMM is fitted in memory" in res.output


def test_saved_aggregated_fit_predicts_as_memory(data, tmp_path):
    """fit --save through duckdb, then predict and ranef --model: the memory fit's answers."""
    for engine in ("duckdb", "memory"):
        _run("fit", data, M2, "--engine", engine, "--save", tmp_path / f"{engine}.json", "-o", tmp_path / "x.json")
    new = tmp_path / "new.csv"
    _frame(seed=32).head(40).to_csv(new, index=False)
    pred = {e: _json("predict", "--model", tmp_path / f"{e}.json", "--newdata", new) for e in ("duckdb", "memory")}
    p_d, p_m = (np.array([r["prediction"] for r in pred[e]["predictions"]]) for e in ("duckdb", "memory"))
    np.testing.assert_allclose(p_d, p_m, rtol=1e-6)
    r_d, r_m = (_json("ranef", "--model", tmp_path / f"{e}.json") for e in ("duckdb", "memory"))
    assert [(r["level"], r["term"]) for r in r_d["random_effects"]] == \
        [(r["level"], r["term"]) for r in r_m["random_effects"]]


def test_coef_matches_memory(data):
    d = _json("coef", data, M2, "--engine", "duckdb")
    m = _json("coef", data, M2, "--engine", "memory")
    est_d = [r["estimate"] for r in d["coefficients"]]
    est_m = [r["estimate"] for r in m["coefficients"]]
    np.testing.assert_allclose(est_d, est_m, rtol=1e-5)
