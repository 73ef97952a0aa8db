"""lmm fit --family: the summary, the JSON keys, and usage errors."""

from __future__ import annotations

import json

import pytest
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


@pytest.mark.parametrize("args, named", [(["--df", "kenward-roger"], "--df kenward-roger"),
                                         (["--df", "none"], "--df none"), (["--df", "residual"], "--df residual"),
                                         (["--ml"], "--ml")])
def test_linear_only_options_are_refused(args, named):
    r = run("fit", CBPP, FORMULA, "--family", "binomial", "--factor", "period", *args)
    assert r.exit_code == 2, r.output
    assert named in r.stderr and r.stdout == ""


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


def test_save_to_stdout_writes_no_file_named_dash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run("fit", CBPP, FORMULA, "--family", "binomial", "--factor", "period", "--save", "-", "-o", "s.txt")
    assert r.exit_code == 0, r.output
    saved = json.loads(r.stdout)
    assert saved["format"] == "lmm-model" and saved["summary"]["family"] == "binomial"
    assert (tmp_path / "s.txt").read_text().startswith("Generalized linear mixed model")
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("command", [["anova"], ["emmeans", "--specs", "period"]])
def test_anova_and_emmeans_of_a_saved_glmm_say_they_are_for_linear_models(tmp_path, command):
    model = tmp_path / "m.json"
    assert run("fit", CBPP, FORMULA, "--family", "binomial", "--factor", "period", "--save", str(model)).exit_code == 0
    r = run(*command, "--model", str(model))
    assert r.exit_code == 2, r.output
    assert "for linear mixed models" in r.stderr and "save it again" not in r.stderr


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


def test_plot_fitted_draws_each_groups_curve_on_the_response_scale(tmp_path):
    out = tmp_path / "fitted.png"
    r = run("plot", "fitted", str(REF / "data" / "poisson.csv"), "count ~ x + f + (x | g)", "--family", "poisson",
            "--groups", "c1,c2", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 1000
    r = run("plot", "fitted", CBPP, FORMULA, "--family", "binomial", "--factor", "period", "-o", str(out))
    assert r.exit_code == 1 and "no numeric predictor" in r.stderr       # period is a factor


def test_plot_fitted_lines_are_glmers_fitted_values():
    """At each group's own x, its line is predict(glmer, type = "response"), i.e. fitted(glmer)."""
    import numpy as np

    from lmmcli.io.read import read_table
    from lmmcli.predict.plotdata import Coefficients, trajectories
    from tests.glmm.reference import CASES, fitted

    fm = fitted("counts_offset")
    coefs = Coefficients(fm.beta, fm.b(), fm.model.family.link.linkinv)
    df = read_table(str(REF / "data" / "counts.csv"))
    tr = trajectories(fm, df, "x", coefs=coefs)
    mu = np.array(CASES["counts_offset"]["expected"]["fitted"])
    blk = fm.blocks[0]
    g = 3
    rows = np.flatnonzero(blk.codes == g)
    # the line holds exposure at its mean, so compare with the fitted value rescaled to that exposure
    expo = df.to_pandas()["exposure"].to_numpy()
    xs = df.to_pandas()["x"].to_numpy()
    want = mu[rows] / expo[rows] * expo.mean()
    got = np.interp(xs[rows], tr.line_x[g], tr.line_y[g])
    np.testing.assert_allclose(got, want, rtol=2e-3)


def test_plot_density_and_image_size_for_a_glmm(tmp_path):
    """plot density draws a GLMM's conditional modes (glmer's condval) beside N(0, sd^2) with glmer's sd;
    --width and --height size the image as for a linear model."""
    import struct

    from lmmcli.cli.common import load_data
    from lmmcli.glmm import glmer
    from lmmcli.glmm.result import assemble
    from lmmcli.predict.plotdata import densities

    exp = json.loads((REF / "expected" / "cbpp.json").read_text())
    df, _ = load_data(CBPP)
    (panel,) = densities(assemble(glmer(FORMULA, df, "binomial", factors=("period",))))
    assert (panel.group, panel.term) == ("herd", "(Intercept)")
    assert max(abs(a - b) for a, b in zip(panel.values, exp["ranef"]["condval"])) < 1e-3
    assert abs(panel.sd / exp["varcorr"]["herd"]["sd"] - 1) < 5e-3
    sizes = []
    for width in (4, 8):
        out = tmp_path / f"density{width}.png"
        r = run("plot", "density", CBPP, FORMULA, "--family", "binomial", "--factor", "period", "-o", str(out),
                "--width", str(width), "--height", "3")
        assert r.exit_code == 0, r.output
        sizes.append(struct.unpack(">II", out.read_bytes()[16:24]))     # the PNG header's pixel width, height
    assert sizes[1][0] == 2 * sizes[0][0] and sizes[0][1] == sizes[1][1]
