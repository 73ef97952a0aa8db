"""lmm fit --family: the summary, the JSON keys, and usage errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from lmmcli.cli import app
from tests.glmm.reference import REF

CBPP = str(REF / "data" / "cbpp.csv")
FORMULA = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def run(*args):
    return CliRunner().invoke(app, list(args))


def test_summary_is_laid_out_as_glmer():
    r = run("fit", CBPP, FORMULA, "--family", "binomial", "--factor", "period")
    assert r.exit_code == 0, r.output
    for text in ("Laplace Approximation", "Family: binomial  ( logit )", "deviance 184.0531", "z value",
                 "Pr(>|z|)", "Correlation of fixed effects"):
        assert text in r.stdout
    assert "Residual" not in r.stdout


def test_json_has_the_linear_keys_and_family_link_nagq():
    r = run("fit", CBPP, FORMULA, "--family", "binomial", "--factor", "period", "--nagq", "25", "-f", "json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert (d["family"], d["link"], d["nagq"]) == ("binomial", "logit", 25)
    assert abs(d["glmer_deviance"] - 100.0102) < 1e-3
    fe = d["fixed_effects"][0]
    assert fe["p_value"] is not None and fe["statistic"] == fe["estimate"] / fe["std_error"]
    assert {"deviance", "loglik", "aic", "bic", "random_effects", "variance_components"} <= set(d)


def test_link_without_family_is_a_usage_error():
    r = run("fit", CBPP, FORMULA, "--link", "probit")
    assert r.exit_code == 2
    assert "add --family" in r.stderr


def test_agq_with_a_slope_is_refused():
    r = run("fit", CBPP, "cbind(incidence, size - incidence) ~ 1 + (1 + period | herd)", "--family", "binomial",
            "--nagq", "5")
    assert r.exit_code == 1
    assert "single scalar" in r.stderr
