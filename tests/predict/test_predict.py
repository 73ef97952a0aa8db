"""Tests for lmmcli.predict.predict and `lmm predict`: lme4's fitted / predict(re.form = NA), new data, new levels,
intervals, output formats. Reference numbers: tests/reference/expected/*.json (lme4 1.1-31)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from typer.testing import CliRunner

from conftest import CASE_IDS, CASES, REF, read_case_data
from lmmcli.cli import app
from lmmcli.errors import DataError, UsageError
from lmmcli.fit import fit
from lmmcli.predict.predict import predict, state_from_fit

FITTED_REL = 1e-4          # as check_reference.py's fitted_rel: our optimum vs lme4's
Z95 = norm.ppf(0.975)
SLEEP = "Reaction ~ Days + (Days|Subject)"
SLEEP_CSV = str(REF / "data" / "sleepstudy.csv")
runner = CliRunner()


@pytest.fixture(scope="module")
def states():
    """ModelState and data of every reference case (fits take < 0.5 s each)."""
    out = {}
    for c in CASES:
        df = read_case_data(c)
        out[c["id"]] = (state_from_fit(fit(c["formula"], df, reml=c["reml"], factors=c["factors"])), df)
    return out


@pytest.mark.parametrize("cid", CASE_IDS)
@pytest.mark.parametrize("population,key", [(False, "fitted"), (True, "predict_population")])
def test_predictions_match_lme4(states, cid, population, key):
    state, df = states[cid]
    want = np.array(next(c for c in CASES if c["id"] == cid)["expected"][key])
    got = np.array(predict(state, df, population=population).prediction, dtype=float)
    np.testing.assert_allclose(got, want, rtol=FITTED_REL)


def _held_back(sleepstudy, subject=372):
    train = sleepstudy[sleepstudy.Subject != subject].reset_index(drop=True)
    return state_from_fit(fit(SLEEP, train)), sleepstudy


def test_new_level_gets_population_prediction(sleepstudy):
    state, full = _held_back(sleepstudy)
    cond = predict(state, full)
    pop = predict(state, full, population=True)
    new = (full.Subject == 372).to_numpy()
    assert np.array(cond.new_level)[new].all() and not np.array(cond.new_level)[~new].any()
    assert cond.n_new_level == new.sum() == 10
    np.testing.assert_allclose(np.array(cond.prediction)[new], np.array(pop.prediction)[new], rtol=0, atol=1e-12)
    beta = state.beta
    np.testing.assert_allclose(np.array(cond.prediction)[new], beta[0] + beta[1] * full.Days[new], rtol=1e-14)
    assert not np.allclose(np.array(cond.prediction)[~new], np.array(pop.prediction)[~new])


def test_rows_with_missing_values_get_null_in_input_order(sleepstudy):
    state = state_from_fit(fit(SLEEP, sleepstudy))
    new = sleepstudy.iloc[[5, 0, 3]].reset_index(drop=True).astype({"Days": float})
    new.loc[1, "Days"] = np.nan
    new.loc[2, "Reaction"] = np.nan      # the response is never needed
    p = predict(state, new)
    full = predict(state, sleepstudy).prediction
    assert p.prediction[1] is None and p.n_missing == 1
    assert p.prediction[0] == pytest.approx(full[5], rel=1e-14)
    assert p.prediction[2] == pytest.approx(full[3], rel=1e-14)


def test_population_needs_no_group_column(sleepstudy):
    state = state_from_fit(fit(SLEEP, sleepstudy))
    p = predict(state, pd.DataFrame({"Days": [0.0, 10.0]}), population=True)
    np.testing.assert_allclose(p.prediction, [state.beta[0], state.beta[0] + 10 * state.beta[1]], rtol=1e-14)
    assert p.new_level is None


@pytest.mark.parametrize("drop,population,message", [
    (["Subject"], False, "Subject"),
    (["Days"], True, "Days"),
])
def test_missing_column_is_a_clear_error(sleepstudy, drop, population, message):
    state = state_from_fit(fit(SLEEP, sleepstudy))
    with pytest.raises(DataError, match=f"lacks column '{message}'"):
        predict(state, sleepstudy.drop(columns=drop), population=population)


def test_unseen_level_of_a_fixed_factor_is_an_error(states):
    state, df = states["gpa_job"]
    new = df.head(2).copy()
    new["job"] = ["2 hours", "9 hours"]
    with pytest.raises(DataError, match="9 hours"):
        predict(state, new)


# -- intervals: dyestuff is intercept-only, so every variance is a single reference number ----------
def _dyestuff_sd(key):
    exp = next(c for c in CASES if c["id"] == "dyestuff")["expected"]
    se_beta = exp["fixef"]["se"][0]
    condsd = exp["ranef"]["condsd"][0]        # same for every batch (balanced design)
    return {"pop_conf": se_beta, "pop_pred": np.sqrt(se_beta ** 2 + exp["varcorr"][0]["var"][0] + exp["sigma"] ** 2),
            "cond_conf": np.sqrt(se_beta ** 2 + condsd ** 2),
            "cond_pred": np.sqrt(se_beta ** 2 + condsd ** 2 + exp["sigma"] ** 2)}[key]


@pytest.mark.parametrize("population,interval,key", [
    (True, "confidence", "pop_conf"), (True, "prediction", "pop_pred"),
    (False, "confidence", "cond_conf"), (False, "prediction", "cond_pred"),
])
def test_interval_widths_from_lme4_variances(states, population, interval, key):
    state, df = states["dyestuff"]
    p = predict(state, df, population=population, interval=interval, level=0.95)
    half = (np.array(p.upper) - np.array(p.lower)) / 2
    np.testing.assert_allclose(half, Z95 * _dyestuff_sd(key), rtol=2e-3)   # se_rel of check_reference
    np.testing.assert_allclose((np.array(p.upper) + np.array(p.lower)) / 2, p.prediction, rtol=1e-12)
    assert "analytic" in p.interval_method


def test_new_level_prediction_interval_adds_the_term_variance(sleepstudy):
    state, full = _held_back(sleepstudy)
    row = full[full.Subject == 372].head(1).reset_index(drop=True)
    p = predict(state, row, interval="prediction")
    x = np.array([1.0, row.Days[0]])
    var = x @ state.vcov @ x + x @ state.terms[0].cov @ x + state.sigma ** 2
    assert (p.upper[0] - p.lower[0]) / 2 == pytest.approx(Z95 * np.sqrt(var), rel=1e-12)
    conf = predict(state, row, interval="confidence")
    assert (conf.upper[0] - conf.lower[0]) / 2 == pytest.approx(Z95 * np.sqrt(x @ state.vcov @ x), rel=1e-12)


@pytest.mark.parametrize("kwargs,error", [
    (dict(interval="wide"), UsageError), (dict(level=1.5), UsageError), (dict(keep=("nope",)), DataError),
])
def test_bad_arguments(states, kwargs, error):
    state, df = states["dyestuff"]
    with pytest.raises(error):
        predict(state, df, **kwargs)


# -- the command ---------------------------------------------------------------------------------
def test_cli_json_rows_in_input_order_with_keep():
    r = runner.invoke(app, ["predict", SLEEP_CSV, SLEEP, "--format", "json", "--keep", "Subject",
                            "--interval", "confidence", "--level", "0.9"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["interval"] == "confidence" and doc["level"] == 0.9 and "analytic" in doc["interval_method"]
    rows = doc["predictions"]
    assert [row["row"] for row in rows] == list(range(1, 181))
    assert list(rows[0]) == ["row", "Subject", "prediction", "conf_low", "conf_high", "new_level"]
    assert rows[0]["Subject"] == 308


def test_cli_csv_is_default_and_notes_go_to_stderr(tmp_path, sleepstudy):
    new = sleepstudy.head(3).copy()
    new.loc[1, "Days"] = np.nan
    new.loc[2, "Subject"] = 999
    path = tmp_path / "new.csv"
    new.to_csv(path, index=False)
    r = runner.invoke(app, ["predict", SLEEP_CSV, SLEEP, "--newdata", str(path)])
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "row,prediction,new_level" and lines[2] == "2,," and lines[3].endswith(",True")
    assert "1 row(s) have missing values" in r.stderr and "1 row(s) have group levels not seen" in r.stderr


def test_cli_parquet_output(tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "p.parquet"
    r = runner.invoke(app, ["predict", SLEEP_CSV, SLEEP, "--population", "--interval", "prediction", "-o", str(out)])
    assert r.exit_code == 0, r.stderr
    table = pq.read_table(out)
    assert table.column_names == ["row", "prediction", "pred_low", "pred_high"] and table.num_rows == 180
    assert b"analytic" in table.schema.metadata[b"interval_method"]
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize("args,code,message", [
    (["--newdata", "MISSING"], 1, "does not exist"),
    (["--keep", "Nope"], 1, "lacks column 'Nope'"),
    (["--interval", "wide"], 2, ""),
])
def test_cli_errors(args, code, message):
    r = runner.invoke(app, ["predict", SLEEP_CSV, SLEEP] + args)
    assert r.exit_code == code
    assert message in r.stderr and "Traceback" not in r.stderr


def test_cli_newdata_missing_column(tmp_path, sleepstudy):
    path = tmp_path / "new.csv"
    sleepstudy.drop(columns=["Subject"]).to_csv(path, index=False)
    r = runner.invoke(app, ["predict", SLEEP_CSV, SLEEP, "--newdata", str(path)])
    assert r.exit_code == 1 and r.stderr.startswith("error: new.csv lacks column 'Subject'")
    assert r.stdout == ""


def test_cli_needs_data_and_formula_without_model():
    r = runner.invoke(app, ["predict", SLEEP_CSV])
    assert r.exit_code == 2 and "give DATA and FORMULA" in r.stderr


def test_cli_reads_standard_input_once():
    text = (REF / "data" / "sleepstudy.csv").read_text()
    r = runner.invoke(app, ["predict", "-", "Reaction ~ Days + (1|Subject)", "--population"], input=text)
    assert r.exit_code == 0, r.stderr
    assert len(r.stdout.splitlines()) == 181


def test_model_without_random_terms_predicts_the_regression(sleepstudy):
    state = state_from_fit(fit("Reaction ~ Days", sleepstudy))
    p = predict(state, sleepstudy, interval="confidence")
    beta = np.polyfit(sleepstudy.Days, sleepstudy.Reaction, 1)[::-1]     # ordinary least squares
    np.testing.assert_allclose(p.prediction, beta[0] + beta[1] * sleepstudy.Days, rtol=1e-10)
    assert p.interval_method.startswith("analytic: Var = x'V(beta)x;")
