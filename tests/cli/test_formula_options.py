"""CLI: --weights and --contrasts on every command that fits, and saved models that carry the weights,
offsets, contrasts and poly/ns/bs coefficients, so predictions from --model equal those of a fresh fit
(and lme4's, stored in tests/reference/formula)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lmmcli.cli import app

runner = CliRunner()
REF = Path(__file__).parent.parent / "reference" / "formula"
DATA = str(REF / "data" / "formula.csv")
NEW = str(REF / "data" / "formula_new.csv")


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def expected(cid: str) -> dict:
    return json.loads((REF / "expected" / f"{cid}.json").read_text())


def fit_json(*args) -> dict:
    res = run("fit", DATA, *args, "--format", "json")
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.parametrize("cid, args", [
    ("weights_reml", ["y ~ x + V + (1|B)", "--weights", "w"]),
    ("contrasts_sum", ["y ~ V * N + (1|B)", "--contrasts", "sum"]),
    ("contrasts_one", ["y ~ V + N + (1|B)", "--contrasts", "N=contr.sum"]),
    ("contrasts_poly", ["y ~ V + N + (V|B)", "--contrasts", "V=poly", "--contrasts", "N=poly"]),
])
def test_fit_options_as_lmer(cid, args):
    doc, exp = fit_json(*args), expected(cid)
    assert [fe["term"] for fe in doc["fixed_effects"]] == exp["fixef"]["terms"]
    assert doc["reml_criterion"] == pytest.approx(exp["objective"], abs=2e-4)
    np.testing.assert_allclose([fe["df"] for fe in doc["fixed_effects"]], exp["fixef"]["df"], rtol=1e-2)


def _predictions(res) -> list[float]:
    assert res.exit_code == 0, res.stderr
    return [float(r["prediction"]) for r in csv.DictReader(io.StringIO(res.stdout))]


@pytest.mark.parametrize("cid, args", [
    ("poly_orthogonal", ["y ~ poly(Time, 3) + V + (1|B)"]),
    ("splines_ns", ["y ~ ns(x, 3) + (1|B)"]),
    ("splines_bs", ["y ~ bs(x, 4) + z + (1|B)"]),
    ("scale_before_dropping", ["y ~ scale(x) + z2 + (1|B)"]),
    ("offsets", ["y ~ x + offset(o) + offset(2*z) + (1|B)"]),
    ("weights_reml", ["y ~ x + V + (1|B)", "--weights", "w"]),
    ("contrasts_sum", ["y ~ V * N + (1|B)", "--contrasts", "sum"]),
])
def test_saved_model_predicts_new_data_as_lme4(tmp_path, cid, args):
    saved = tmp_path / "m.json"
    res = run("fit", DATA, *args, "--save", saved)
    assert res.exit_code == 0, res.stderr
    from_model = _predictions(run("predict", "--model", saved, "--newdata", NEW))
    fresh = _predictions(run("predict", DATA, *args, "--newdata", NEW))
    np.testing.assert_allclose(from_model, fresh, rtol=1e-12)
    np.testing.assert_allclose(from_model, expected(cid)["predict_new"]["conditional"], atol=2e-3)


def test_prediction_intervals_use_the_new_rows_weights(tmp_path):
    saved = tmp_path / "m.json"
    assert run("fit", DATA, "y ~ x + V + (1|B)", "--weights", "w", "--save", saved).exit_code == 0
    res = run("predict", "--model", saved, "--newdata", NEW, "--interval", "prediction", "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    width = [r["pred_high"] - r["pred_low"] for r in doc["predictions"]]
    # formula_new.csv's w is 1, 2, 0.5, 1: with sigma^2 / w the lightest row has the widest interval
    assert width[2] > width[0] > width[1]
    assert "sigma^2/w" in doc["interval_method"]


def test_simulate_with_weights_has_residual_variance_sigma2_over_w():
    res = run("simulate", DATA, "y ~ x + (1|B)", "--weights", "w", "--nsim", 400, "--seed", 1, "--use-u")
    assert res.exit_code == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    sims = np.array([[float(r[f"sim_{j}"]) for j in range(1, 401)] for r in rows])
    w = np.array([float(r["w"]) for r in rows])
    ratio = sims.var(axis=1) * w        # sigma^2 on every row when the noise is sigma^2 / w
    assert np.std(np.log(ratio)) < 0.15
    light, heavy = w < 0.6, w > 2.5
    assert sims[light].var(axis=1).mean() > 3 * sims[heavy].var(axis=1).mean()


def test_compare_with_weights_and_contrasts():
    res = run("compare", DATA, "y ~ x + (1|B)", "y ~ x + V + (1|B)", "--weights", "w", "--contrasts", "sum",
              "--format", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert [m["npar"] for m in doc["models"]] == [4, 6]
    assert doc["nobs"] == 144


@pytest.mark.parametrize("command", ["ranef", "coef"])
def test_effects_take_the_options(command):
    res = run(command, DATA, "y ~ V + (1|B)", "--weights", "w", "--contrasts", "sum", "--format", "json")
    assert res.exit_code == 0, res.stderr


@pytest.mark.parametrize("args, code, fragment", [
    (["y ~ x + (1|B)", "--weights", "nope"], 1, "--weights names column 'nope'"),
    (["y ~ x + (1|B)", "--weights", "yneg"], 1, "negative weights are not allowed"),
    (["y ~ V + (1|B)", "--contrasts", "wiggly"], 2, "--contrasts expects KIND or COL=KIND"),
    (["y ~ V + (1|B)", "--contrasts", "x=sum"], 1, "'x' is not a factor of the model"),
    (["y ~ f1 + z2 + (1|B)"], 1, "contrasts can be applied only to factors with 2 or more levels"),
    (["y ~ poly(z2, 2) + (1|B)"], 1, "missing values are not allowed in 'poly'"),
])
def test_option_errors(args, code, fragment):
    res = run("fit", DATA, *args)
    assert res.exit_code == code, (res.stdout, res.stderr)
    assert fragment in res.stderr and res.stdout == ""


@pytest.mark.parametrize("formula", ["y ~ poly(Time, 2) + (1|B)", "y ~ x + offset(o) + (1|B)"])
def test_plot_fitted_draws_over_a_column_inside_a_function_and_with_offsets(tmp_path, formula):
    from lmmcli.fit import fit
    from lmmcli.io.read import read_table
    from lmmcli.predict.plotdata import trajectories

    df = read_table(DATA)
    fm = fit(formula, df, weights="w")
    tr = trajectories(fm, df)
    assert tr.x_name in ("Time", "x") and not [h for h in tr.held if "Time" in h]
    if "offset" in formula:   # the population line: the fixed part along x, the offset at its mean
        o = np.asarray(df["o"], dtype=float)
        want = fm.sol.beta[0] + fm.sol.beta[1] * np.asarray(tr.pop_x) + o.mean()
        np.testing.assert_allclose(tr.pop_y, want, rtol=1e-10)
    res = run("plot", "fitted", DATA, formula, "--weights", "w", "-o", tmp_path / "t.png")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "t.png").stat().st_size > 1000


def test_fit_by_takes_weights_and_contrasts():
    exp = expected("by_weights_contrasts")
    res = run("fit", DATA, exp["formula"], "--by", exp["by"], "--weights", "w", "--contrasts", "sum",
              "-f", "json", "-j", 1)
    assert res.exit_code == 0, res.stderr
    fits = json.loads(res.stdout)["fits"]
    for got, want in zip(fits, exp["fits"]):
        assert got["by"] == want["value"]
        assert [fe["term"] for fe in got["fixed_effects"]] == want["terms"]
        assert got["reml_criterion"] == pytest.approx(want["objective"], abs=2e-4)
        np.testing.assert_allclose([fe["estimate"] for fe in got["fixed_effects"]], want["estimate"], atol=1e-4)


def test_a_schema_1_model_file_still_loads(tmp_path):
    """Files saved before transforms/contrasts/weights were stored (schema 1) load with none of them."""
    from lmmcli.predict.saved_model import load

    saved = tmp_path / "m.json"
    assert run("fit", DATA, "y ~ x + V + (1|B)", "--save", saved).exit_code == 0
    doc = json.loads(saved.read_text())
    doc["schema_version"] = 1
    for key in ("transforms", "contrasts", "weights"):
        del doc["spec"][key]
    saved.write_text(json.dumps(doc))
    state = load(str(saved))
    assert state.spec.transforms == {} and state.spec.contrasts == {} and state.spec.weights is None


def test_model_table_fits_with_the_weights_and_contrasts():
    res = run("table", DATA, "y ~ V + (1|B)", "--weights", "w", "--contrasts", "sum", "-f", "csv")
    assert res.exit_code == 0, res.stderr
    single = fit_json("y ~ V + (1|B)", "--weights", "w", "--contrasts", "sum")
    for fe in single["fixed_effects"]:    # the table shows lmm fit's estimates, to 3 decimals
        assert fe["term"] in res.stdout and f"{fe['estimate']:.3f}" in res.stdout


def test_glmer_with_contrasts():
    exp = expected("glmer_contrasts")
    doc = fit_json(exp["formula"], "--family", exp["family"], "--contrasts", exp["contrasts"])
    assert [fe["term"] for fe in doc["fixed_effects"]] == exp["terms"]
    np.testing.assert_allclose([fe["estimate"] for fe in doc["fixed_effects"]], exp["estimate"], atol=5e-4)
    assert doc["aic"] == pytest.approx(exp["aic"], abs=1e-3)
