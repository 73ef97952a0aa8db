"""Tests for lmmcli.predict.saved_model and `lmm fit --save` / `lmm predict --model`: a saved model predicts exactly
as the fit it came from (to 1e-10, every reference case), without the data; bad files are refused clearly."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import CASE_IDS, CASES, REF, read_case_data
from lmmcli.cli import app
from lmmcli.errors import DataError
from lmmcli.fit import fit
from lmmcli.predict.saved_model import SCHEMA_VERSION, dumps, from_dict, load
from lmmcli.predict.predict import predict, state_from_fit
from lmmcli.predict.ranef import coef_rows, ranef_rows

EXACT = 1e-10
SLEEP = "Reaction ~ Days + (Days|Subject)"
SLEEP_CSV = str(REF / "data" / "sleepstudy.csv")
runner = CliRunner()


@pytest.fixture(scope="module")
def saved():
    """(state from the fit, state reloaded from its JSON text, data) for every reference case."""
    out = {}
    for c in CASES:
        df = read_case_data(c)
        state = state_from_fit(fit(c["formula"], df, reml=c["reml"], factors=c["factors"]))
        out[c["id"]] = (state, from_dict(json.loads(dumps(state))), df)
    return out


def _same(a: list, b: list):
    np.testing.assert_allclose(np.array(a, dtype=float), np.array(b, dtype=float), rtol=EXACT, atol=0)


@pytest.mark.parametrize("cid", CASE_IDS)
@pytest.mark.parametrize("population,interval", [(False, None), (True, None), (False, "prediction"),
                                                 (True, "confidence")])
def test_saved_model_predicts_as_the_fit(saved, cid, population, interval):
    state, loaded, df = saved[cid]
    a = predict(state, df, population=population, interval=interval)
    b = predict(loaded, df, population=population, interval=interval)
    _same(a.prediction, b.prediction)
    if interval:
        _same(a.lower, b.lower)
        _same(a.upper, b.upper)


@pytest.mark.parametrize("cid", ["sleepstudy_uncorrelated", "pastes_nested", "gpa_job"])
def test_saved_model_keeps_random_effects(saved, cid):
    state, loaded, _ = saved[cid]
    for rows in (ranef_rows, coef_rows):
        assert rows(state) == rows(loaded)


@pytest.mark.parametrize("formula,factors,refs", [
    ("Reaction ~ scale(Days) + (1|Subject)", (), {}),
    ("Reaction ~ log(Days + 1) + I(Days^2) + (Days|Subject)", (), {}),
    ("Reaction ~ Days + (1|Subject)", ("Days",), {"Days": "3"}),
])
def test_spec_round_trip_on_new_rows(sleepstudy, formula, factors, refs):
    state = state_from_fit(fit(formula, sleepstudy, factors=factors, refs=refs))
    loaded = from_dict(json.loads(dumps(state)))
    assert loaded.spec.scale_state == state.spec.scale_state and loaded.spec.refs == state.spec.refs
    assert loaded.spec.variables == state.spec.variables and loaded.spec.fixed_names == state.spec.fixed_names
    new = sleepstudy.sample(25, random_state=1).reset_index(drop=True)   # scale() must use the fit's centre
    _same(predict(state, new).prediction, predict(loaded, new).prediction)


def _doc(saved):
    return json.loads(dumps(saved["sleepstudy_slope"][0]))


def _break(doc, how):
    doc = copy.deepcopy(doc)
    if how == "newer":
        doc["schema_version"] = SCHEMA_VERSION + 1
    elif how == "format":
        doc["format"] = "something-else"
    elif how == "missing":
        del doc["beta"]
    elif how == "shape":
        doc["random_terms"][0]["b"] = doc["random_terms"][0]["b"][:-1]
    elif how == "formula":
        doc["formula"] = "Reaction ~ (Days"
    elif how == "group":
        doc["random_terms"][0]["group"] = "Other"
    elif how == "variable":
        doc["spec"]["variables"] = []
    return doc


@pytest.mark.parametrize("how,message", [
    ("newer", f"schema version {SCHEMA_VERSION + 1}"),
    ("format", "is not a saved lmm model"),
    ("missing", "missing key 'beta'"),
    ("shape", "'b of Subject' has shape"),
    ("formula", "formula does not parse"),
    ("group", "does not match the formula"),
    ("variable", "no variable entry for 'Days'"),
])
def test_bad_documents_are_refused(saved, how, message):
    with pytest.raises(DataError, match=message):
        from_dict(_break(_doc(saved), how), "m.json")


@pytest.mark.parametrize("text,message", [("{not json", "not valid JSON"), ("[1, 2]", "is not a saved lmm model")])
def test_bad_files_are_refused(tmp_path, text, message):
    path = tmp_path / "m.json"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        load(str(path))


# -- the commands --------------------------------------------------------------------------------
def test_cli_fit_save_then_predict_without_data(tmp_path, sleepstudy):
    model = tmp_path / "model.json"
    r = runner.invoke(app, ["fit", SLEEP_CSV, SLEEP, "--save", str(model), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(model.read_text())
    assert doc["format"] == "lmm-model" and doc["schema_version"] == SCHEMA_VERSION and doc["formula"] == SLEEP
    assert doc["summary"]["reml_criterion"] == json.loads(r.stdout)["reml_criterion"]
    new = tmp_path / "new.csv"
    sleepstudy.drop(columns=["Reaction"]).to_csv(new, index=False)
    direct = runner.invoke(app, ["predict", SLEEP_CSV, SLEEP, "--format", "json", "--interval", "confidence"])
    viamodel = runner.invoke(app, ["predict", "--model", str(model), "--newdata", str(new), "--format", "json",
                                   "--interval", "confidence"])
    assert viamodel.exit_code == 0, viamodel.stderr
    assert json.loads(viamodel.stdout) == json.loads(direct.stdout)


@pytest.mark.parametrize("command", ["ranef", "coef"])
def test_cli_effects_from_a_saved_model(tmp_path, command):
    model = tmp_path / "model.json"
    assert runner.invoke(app, ["fit", SLEEP_CSV, SLEEP, "--save", str(model)]).exit_code == 0
    direct = runner.invoke(app, [command, SLEEP_CSV, SLEEP, "-f", "csv"])
    viamodel = runner.invoke(app, [command, "--model", str(model), "-f", "csv"])
    assert viamodel.exit_code == 0 and viamodel.stdout == direct.stdout


@pytest.mark.parametrize("how,message", [
    ("newer", f"error: 'model.json' was saved with model schema version {SCHEMA_VERSION + 1}"),
    ("shape", "error: malformed model file 'model.json'"),
    (None, "error: 'model.json' is not a saved lmm model: not valid JSON"),
])
def test_cli_refuses_bad_model_files(tmp_path, saved, how, message):
    model = tmp_path / "model.json"
    model.write_text(json.dumps(_break(_doc(saved), how)) if how else "{broken")
    r = runner.invoke(app, ["predict", "--model", str(model), "--newdata", SLEEP_CSV])
    assert r.exit_code == 1 and r.stderr.startswith(message) and "Traceback" not in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("args", [
    ["--model", "m.json", SLEEP_CSV, SLEEP],
    ["--model", "m.json", "--ml", "--newdata", SLEEP_CSV],
    ["--model", "m.json"],
])
def test_cli_model_usage_errors(tmp_path, saved, args):
    (tmp_path / "m.json").write_text(dumps(saved["sleepstudy_slope"][0]))
    args = [str(tmp_path / a) if a == "m.json" else a for a in args]
    r = runner.invoke(app, ["predict"] + args)
    assert r.exit_code == 2 and r.stderr.startswith("error:")


def test_newdata_frame_without_response(saved):
    state, loaded, df = saved["gpa_cluster"]
    new = pd.DataFrame({"occasion": [0, 5], "sex": ["male", "female"], "highgpa": [3.0, 2.5], "student": [1, 999]})
    p = predict(loaded, new)
    assert p.new_level == [False, True]
    _same(p.prediction, predict(state, new).prediction)


@pytest.mark.parametrize("command", [["predict", "--newdata", str(REF / "data" / "dyestuff2.csv")], ["ranef"], ["coef"]])
def test_cli_saved_model_keeps_its_warnings_for_strict(tmp_path, command):
    """A singular fit saved and used again warns, and exits 3 under --strict, as fitting DATA FORMULA does."""
    model = tmp_path / "model.json"
    assert runner.invoke(app, ["fit", str(REF / "data" / "dyestuff2.csv"), "Yield ~ 1 + (1|Batch)",
                               "--save", str(model)]).exit_code == 0
    r = runner.invoke(app, command + ["--model", str(model)])
    assert r.exit_code == 0 and "singular" in r.stderr
    assert runner.invoke(app, command + ["--model", str(model), "--strict"]).exit_code == 3


# -- issue 13: the whole file is checked against its schema -------------------------------------------
def _set(path: str, value):
    def change(doc):
        *keys, last = path.split(".")
        node = doc
        for k in keys:
            node = node[int(k)] if k.isdigit() else node[k]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value
        return doc
    return change


_DELETE = object()


@pytest.mark.parametrize("path, value, message", [
    ("random_terms.0.cov.0.0", -1.0, "negative variances"),
    ("random_terms.0.cov.0.1", 1e6, "not symmetric"),
    ("vcov.0.0", -3.0, "negative variances"),
    ("random_terms.0.cond_var.0.1.1", -0.5, "cond_var of Subject has negative variances"),
    ("sigma", -1.0, "the model.sigma must not be negative"),
    ("sigma", "12", "the model.sigma must be a finite number"),
    ("sigma", True, "the model.sigma must be a finite number"),
    ("beta.0", None, r"the model.beta\[0\] must be a finite number"),
    ("theta", [1.0], "'theta' has 1 values, but the random terms need 3"),
    ("summary.warnings", 5, "the model.summary.warnings must be a list"),
    ("summary.nobs", True, "summary.nobs must be a whole number"),
    ("summary.variance_components.0.variance", -2.0, "must not be negative"),
    ("extra", 1, "unexpected name 'extra'"),
    ("spec.surprise", [], "the model.spec has an unexpected name 'surprise'"),
    ("random_terms.0.note", "x", r"the model.random_terms\[0\] has an unexpected name 'note'"),
    ("spec.variables.0.kind", "ordinal", "must be one of 'numeric', 'matrix', 'factor'"),
    ("random_terms.0.correlated", 1, "must be true or false"),
    ("random_terms.0.levels.0", 308, "must be text"),
    ("spec.scale_state", {"x": [0.0, 0.0]}, "the scale"),
    ("method", "GLS", "must be one of 'REML', 'ML'"),
])
def test_impossible_contents_are_refused(saved, path, value, message):
    doc = _set(path, value)(copy.deepcopy(_doc(saved)))
    with pytest.raises(DataError, match=message):
        from_dict(doc, "m.json")


@pytest.mark.parametrize("name, text, message", [
    ("nan", None, "it holds NaN"),
    ("deep", "[" * 200_000 + "]" * 200_000, "nested too deeply"),
])
def test_nan_and_deep_nesting_are_refused(tmp_path, saved, name, text, message):
    import json

    path = tmp_path / "m.json"
    if text is None:
        text = json.dumps(_doc(saved)).replace(str(_doc(saved)["sigma"]), "NaN", 1)
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        load(str(path))


def test_oversized_model_file_is_refused_before_reading(tmp_path, monkeypatch):
    import lmmcli.predict.saved_model as saved_model

    monkeypatch.setattr(saved_model, "MAX_BYTES", 10)
    path = tmp_path / "m.json"
    path.write_text("{" + " " * 20 + "}")
    with pytest.raises(DataError, match="larger than any saved lmm model"):
        load(str(path))


def test_cli_deep_model_file_is_one_error_line(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("[" * 200_000)
    res = runner.invoke(app, ["predict", "--model", str(path), "--newdata", SLEEP_CSV])
    assert res.exit_code == 1 and res.stderr.startswith("error: ") and "Traceback" not in res.stderr
