"""Tests for lmmcli.compare: likelihood-ratio tests as lme4's anova(m1, m2, ...).

Reference numbers: lme4's anova(fm1, fm2) on sleepstudy, (1|Subject) vs (Days|Subject), as quoted in
issue 5 (Chisq 42.139, Df 2, p 7.07e-10, AIC 1802.1 and 1763.9; printed digits give the tolerances),
and the ML/REML fits of the same models in tests/reference/expected/sleepstudy_*.json (lme4 1.1-31).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import REF
from lmmcli.cli import app
from lmmcli.compare import compare
from lmmcli.design.design import build_design
from lmmcli.errors import ModelSpecError, UsageError
from lmmcli.fit import fit
from lmmcli.formula import parse_formula
from lmmcli.lm import fit_lm

SLEEP = REF / "data" / "sleepstudy.csv"
GPA = REF / "data" / "gpa.csv"
M_INT = "Reaction ~ Days + (1|Subject)"
M_SLOPE = "Reaction ~ Days + (Days|Subject)"
M_LM = "Reaction ~ Days"
runner = CliRunner()


@pytest.fixture(scope="module")
def acceptance(sleepstudy):
    return compare([M_INT, M_SLOPE], sleepstudy)


# (row, key, lme4's printed value, tolerance from the printed digits)
ANOVA_SLEEP = [
    (0, "aic", 1802.1, 0.05), (1, "aic", 1763.9, 0.05),
    (1, "chisq", 42.139, 5e-4), (1, "df", 2, 0), (1, "p_value", 7.07e-10, 5e-13),
    (0, "npar", 4, 0), (1, "npar", 6, 0),
]


@pytest.mark.parametrize("row, key, value, tol", ANOVA_SLEEP)
def test_sleepstudy_anova_matches_lme4(acceptance, row, key, value, tol):
    assert getattr(acceptance.models[row], key) == pytest.approx(value, abs=tol)


@pytest.mark.parametrize("row, case", [(0, "sleepstudy_intercept_ml"), (1, "sleepstudy_slope_ml")])
def test_refit_rows_are_lme4_ml_fits(acceptance, cases, row, case):
    """The refitted rows are lme4's ML fits: deviance, AIC, BIC (expected/*.json, rel 1e-6)."""
    exp = cases[case]["expected"]
    m = acceptance.models[row]
    assert m.deviance == pytest.approx(exp["deviance"], rel=1e-6)
    assert m.aic == pytest.approx(exp["AIC"], rel=1e-6)
    assert m.bic == pytest.approx(exp["BIC"], rel=1e-6)
    assert acceptance.refit is True and acceptance.method == "ML"


def test_chisq_is_the_reference_deviance_difference(acceptance, cases):
    exp = [cases[c]["expected"]["deviance"] for c in ("sleepstudy_intercept_ml", "sleepstudy_slope_ml")]
    assert acceptance.models[1].chisq == pytest.approx(exp[0] - exp[1], abs=1e-4)
    assert any("refits REML fits by ML" in n for n in acceptance.notes)


@pytest.mark.parametrize("order", [[M_SLOPE, M_INT, M_LM], [M_LM, M_SLOPE, M_INT], [M_INT, M_LM, M_SLOPE]])
def test_models_ordered_by_npar(sleepstudy, order):
    r = compare(order, sleepstudy)
    assert [m.formula for m in r.models] == [M_LM, M_INT, M_SLOPE]
    assert [m.name for m in r.models] == [f"M{order.index(f) + 1}" for f in (M_LM, M_INT, M_SLOPE)]
    assert r.models[0].chisq is None and r.models[0].p_value is None


def test_lm_model_uses_lm_likelihood_and_notes_boundary(sleepstudy):
    r = compare([M_LM, M_INT], sleepstudy)
    f = parse_formula(M_LM)
    lm = fit_lm(f, build_design(f, sleepstudy))
    assert r.models[0].model == "lm" and r.models[1].model == "lmer"
    assert r.models[0].loglik == pytest.approx(lm.loglik, rel=1e-10)
    assert r.models[1].chisq == pytest.approx(2 * (r.models[1].loglik - lm.loglik), rel=1e-10)
    assert any("boundary" in n and "conservative" in n for n in r.notes)


def test_no_boundary_note_without_lm(acceptance):
    assert not any("boundary" in n for n in acceptance.notes)


@pytest.mark.parametrize("row, case", [(0, "sleepstudy_intercept"), (1, "sleepstudy_slope")])
def test_no_refit_compares_reml_criteria(sleepstudy, cases, row, case):
    r = compare([M_INT, M_SLOPE], sleepstudy, refit=False)
    assert r.refit is False and r.method == "REML"
    assert r.models[row].deviance == pytest.approx(cases[case]["expected"]["reml_criterion"], rel=1e-6)


def test_no_refit_refuses_different_fixed_effects(sleepstudy):
    with pytest.raises(UsageError, match="fixed effects are the same") as exc:
        compare([M_INT, "Reaction ~ 1 + (Days|Subject)"], sleepstudy, refit=False)
    assert exc.value.exit_code == 2


def test_ml_fits_need_no_refit(sleepstudy, acceptance):
    r = compare([M_INT, M_SLOPE], sleepstudy, ml=True, refit=False)
    assert r.refit is False and r.method == "ML"
    assert r.models[1].chisq == pytest.approx(acceptance.models[1].chisq, rel=1e-8)


def test_rows_complete_for_all_models(sleepstudy):
    """A column with missing values in one model only: both models use the rows complete for both."""
    df = sleepstudy.copy()
    rng = np.random.default_rng(1)
    df["extra"] = rng.normal(size=len(df))
    df.loc[[3, 50, 99], "extra"] = np.nan
    r = compare([M_INT, M_INT.replace("Days +", "Days + extra +")], df)
    assert (r.nobs, r.n_input, r.n_dropped) == (177, 180, 3)
    assert any("3 rows" in n and "same 177 rows" in n for n in r.notes)
    alone = fit(M_INT, df.dropna().reset_index(drop=True), reml=False)
    assert r.models[0].loglik == pytest.approx(alone.loglik(), rel=1e-8)


@pytest.mark.parametrize("texts, error", [
    ([M_INT], UsageError),
    ([M_INT, "Days ~ 1 + (1|Subject)"], ModelSpecError),
])
def test_bad_sets_of_models(sleepstudy, texts, error):
    with pytest.raises(error):
        compare(texts, sleepstudy)


# -- CLI ---------------------------------------------------------------------------------------
def test_cli_table():
    res = runner.invoke(app, ["compare", str(SLEEP), M_INT, M_SLOPE])
    assert res.exit_code == 0, res.stderr
    for piece in ("npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)",
                  "1802.1", "1763.9", "42.139", "7.07e-10", "refits REML fits by ML"):
        assert piece in res.stdout
    assert res.stderr == ""


def test_cli_json():
    res = runner.invoke(app, ["compare", str(SLEEP), M_INT, M_SLOPE, M_LM, "--format", "json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["refit"] is True
    keys = {"formula", "npar", "aic", "bic", "loglik", "deviance", "chisq", "df", "p_value"}
    assert all(keys <= set(m) for m in doc["models"])
    assert [m["npar"] for m in doc["models"]] == [3, 4, 6]


def test_cli_no_refit_refusal_exit_2():
    res = runner.invoke(app, ["compare", str(SLEEP), M_INT, "Reaction ~ 1 + (Days|Subject)", "--no-refit"])
    assert res.exit_code == 2
    assert res.stdout == ""
    assert res.stderr.startswith("error: --no-refit") and "Traceback" not in res.stderr


def test_cli_factor_and_ref_pass_through():
    args = ["compare", str(GPA), "gpa ~ occasion + (1|student)", "gpa ~ occasion + job + (1|student)",
            "--ref", "job=2 hours", "--factor", "occasion", "--format", "json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    gpa = pd.read_csv(GPA)
    # occasion as a factor (6 levels -> 5 contrasts; numeric it would be 1) + job (3 levels -> 2):
    # npar = intercept + 5 (+ 2) + theta + sigma
    assert [m["npar"] for m in doc["models"]] == [8, 10]
    assert doc["nobs"] == len(gpa.dropna(subset=["gpa", "occasion", "job", "student"]))


def test_cli_bad_ref_is_clean_error():
    res = runner.invoke(app, ["compare", str(GPA), "gpa ~ job + (1|student)", "gpa ~ 1 + (1|student)",
                              "--ref", "job=nine hours"])
    assert res.exit_code == 1
    assert res.stderr.startswith("error: --ref job=nine hours")


def test_cli_ref_for_no_model_is_refused():
    res = runner.invoke(app, ["compare", str(GPA), "gpa ~ occasion + (1|student)", "gpa ~ 1 + (1|student)",
                              "--ref", "job=2 hours"])
    assert res.exit_code == 1
    assert res.stderr.startswith("error: --ref job=2 hours")
