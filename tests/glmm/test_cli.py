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


def test_ranef_has_glmers_conditional_modes_and_sds():
    from tests.glmm.reference import CASES

    r = run("ranef", CBPP, FORMULA, "--family", "binomial", "--factor", "period", "-f", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    rows = rows.get("random_effects", rows) if isinstance(rows, dict) else rows
    exp = CASES["cbpp"]["expected"]["ranef"]
    got = {row["level"]: row for row in rows}
    for lev, val, sd in zip(exp["grp"], exp["condval"], exp["condsd"]):
        assert abs(got[lev]["estimate"] - val) < 5e-3 * sd
        assert abs(got[lev]["std_error"] / sd - 1) < 5e-3


def test_predict_response_scale_and_population_and_saved_model(tmp_path):
    import csv
    import io

    from tests.glmm.reference import CASES

    exp = CASES["cbpp"]["expected"]
    r = run("predict", CBPP, FORMULA, "--family", "binomial", "--factor", "period", "--type", "response")
    assert r.exit_code == 0, r.output
    fitted = [float(row["prediction"]) for row in csv.DictReader(io.StringIO(r.stdout))]
    assert max(abs(a - b) for a, b in zip(fitted, exp["fitted"])) < 1e-5
    r = run("predict", CBPP, FORMULA, "--family", "binomial", "--factor", "period", "--population")
    pop = [float(row["prediction"]) for row in csv.DictReader(io.StringIO(r.stdout))]
    assert max(abs(a - b) for a, b in zip(pop, exp["predict_population_link"])) < 1e-4
    model = tmp_path / "m.json"
    assert run("fit", CBPP, FORMULA, "--family", "binomial", "--factor", "period", "--save", str(model)).exit_code == 0
    r = run("predict", "--model", str(model), "--newdata", CBPP, "--type", "response")
    again = [float(row["prediction"]) for row in csv.DictReader(io.StringIO(r.stdout))]
    assert again == fitted


def test_type_is_for_glmms():
    r = run("predict", CBPP, "incidence ~ period + (1 | herd)", "--type", "response")
    assert r.exit_code == 2


def test_compare_glmms_as_anova():
    exp = json.loads((REF / "expected" / "compare_cbpp.json").read_text())
    r = run("compare", CBPP, "cbind(incidence, size - incidence) ~ 1 + (1 | herd)", FORMULA, "--family", "binomial",
            "--factor", "period", "-f", "json")
    assert r.exit_code == 0, r.output
    models = json.loads(r.stdout)["models"]
    for m, ll, npar in zip(models, exp["logLik"], exp["npar"]):
        assert abs(m["loglik"] - ll) < 1e-4 and m["npar"] == npar
    assert abs(models[1]["chisq"] - exp["Chisq"][1]) < 2e-4
    assert abs(models[1]["p_value"] / exp["p"][1] - 1) < 1e-3


def test_plot_ranef_and_resid_for_a_glmm(tmp_path):
    r = run("plot", "ranef", CBPP, FORMULA, "--family", "binomial", "--factor", "period", "--terminal")
    assert r.exit_code == 0, r.output
    assert "herd: (Intercept)" in r.stdout and "0.9703" in r.stdout     # herd 14's mode, as glmer
    out = tmp_path / "resid.png"
    r = run("plot", "resid", CBPP, FORMULA, "--family", "binomial", "--factor", "period", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 1000
    assert run("plot", "fitted", CBPP, FORMULA, "--family", "binomial", "-o", str(out)).exit_code == 2
