"""lmm against lme4 1.1-31 / lmerTest 3.1-3 on the formula-semantics cases of tests/reference/formula.

Each case of cases.tsv was fitted in R by fit_cases.R on data/formula.csv (made by make_data.R; versions in
versions.txt); the expected JSON files hold R's numbers. Here lmm fits the same formula to the same CSV,
read by lmm's own reader, and every stored number is compared: the coefficient names and estimates,
SEs, Satterthwaite df, the REML criterion or deviance, sigma, VarCorr's groups (with lme4's names),
the number of observations and groups, fitted values, Pearson residuals, conditional modes and
predictions for new data. A case R refuses must be refused by lmm with R's reason.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from lmmcli.errors import LmmError
from lmmcli.fit import fit
from lmmcli.inference.satterthwaite import fixed_inference
from lmmcli.io.read import read_table
from lmmcli.predict.predict import predict, state_from_fit

REF = Path(__file__).parent / "reference" / "formula"


def _cases() -> list[dict]:
    with open(REF / "cases.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    for row in rows:
        row["expected"] = json.loads((REF / "expected" / f"{row['id']}.json").read_text())
    return rows


CASES = {c["id"]: c for c in _cases()}
FITTED = [cid for cid, c in CASES.items() if "error" not in c["expected"] and c["expected"]["objective"] != "Inf"]


def lmm_contrasts(text: str) -> dict:
    """R's contrasts list (V=contr.sum,N=contr.poly) as lmm's (--contrasts V=sum)."""
    out = {}
    for part in filter(None, text.split(",")):
        name, kind = part.split("=")
        out[name] = kind.removeprefix("contr.")
    return out


@pytest.fixture(scope="module")
def data():
    return read_table(str(REF / "data" / "formula.csv"))


@pytest.fixture(scope="module")
def fits(data):
    out = {}
    for cid in FITTED:
        c = CASES[cid]
        out[cid] = fit(c["formula"], data, reml=c["reml"] == "TRUE", weights=c["weights"] or None,
                       contrasts=lmm_contrasts(c["contrasts"]))
    return out


@pytest.mark.parametrize("cid", FITTED)
def test_fixed_effects_as_lme4(fits, cid):
    exp, fm = CASES[cid]["expected"], fits[cid]
    r = fm.result()
    assert [fe.term for fe in r.fixed_effects] == exp["fixef"]["terms"]
    se = np.array(exp["fixef"]["se"])
    np.testing.assert_allclose([fe.estimate for fe in r.fixed_effects], exp["fixef"]["estimate"],
                               rtol=1e-5, atol=1e-4 * se.max())
    np.testing.assert_allclose([fe.std_error for fe in r.fixed_effects], se, rtol=2e-3)
    df = fixed_inference(fm, "satterthwaite").df
    np.testing.assert_allclose(df, exp["fixef"]["df"], rtol=1e-2)


@pytest.mark.parametrize("cid", FITTED)
def test_criterion_and_variance_components_as_lme4(fits, cid):
    exp, r = CASES[cid]["expected"], fits[cid].result()
    objective = r.reml_criterion if r.reml_criterion is not None else r.deviance
    assert objective == pytest.approx(exp["objective"], abs=2e-4)
    assert r.sigma == pytest.approx(exp["sigma"], rel=2e-3)
    assert r.nobs == exp["nobs"]
    assert r.ngroups == exp["ngrps"]
    vc = exp["varcorr"]
    sds = [(v.group, v.term or "", v.sd) for v in r.variance_components]
    cors = [(c.group, c.term1, c.term2, c.correlation) for c in r.correlations]
    want_sd = [(g, a, s) for g, a, b, s in zip(vc["grp"], vc["var1"], vc["var2"], vc["sdcor"]) if not b]
    want_cor = [(g, a, b, s) for g, a, b, s in zip(vc["grp"], vc["var1"], vc["var2"], vc["sdcor"]) if b]
    assert [(g, t) for g, t, _ in sds] == [(g, t) for g, t, _ in want_sd]
    np.testing.assert_allclose([s for *_, s in sds], [s for *_, s in want_sd], rtol=5e-3, atol=2e-3 * exp["sigma"])
    assert sorted((g, a, b) for g, a, b, _ in cors) == sorted((g, b, a) for g, a, b, _ in want_cor) or \
        sorted((g, a, b) for g, a, b, _ in cors) == sorted((g, a, b) for g, a, b, _ in want_cor)
    np.testing.assert_allclose(sorted(c for *_, c in cors), sorted(c for *_, c in want_cor), atol=5e-3)


@pytest.mark.parametrize("cid", FITTED)
def test_fitted_residuals_and_modes_as_lme4(fits, cid):
    exp, fm = CASES[cid]["expected"], fits[cid]
    sigma = exp["sigma"]
    np.testing.assert_allclose(fm.fitted(), exp["fitted"], atol=2e-3 * sigma)
    r = fm.result().scaled_residuals
    pearson = np.array(exp["residuals_pearson"])
    assert r["min"] == pytest.approx(pearson.min(), abs=5e-3)
    assert r["max"] == pytest.approx(pearson.max(), abs=5e-3)
    for blk, b in zip(fm.blocks, fm.sol.b):
        want = exp["ranef"][blk.group]
        assert list(blk.levels) == want["levels"]
        for j, term in enumerate(blk.terms):
            np.testing.assert_allclose(b[:, j], want["values"][want["terms"].index(term)], atol=2e-3 * sigma)


PREDICTED = [cid for cid in FITTED if "predict_new" in CASES[cid]["expected"]]


@pytest.mark.parametrize("cid", PREDICTED)
def test_predictions_for_new_data_as_lme4(fits, cid):
    """New data outside the fitted ranges and a new level: R's poly/ns/bs/scale coefficients and offsets."""
    exp, fm = CASES[cid]["expected"], fits[cid]
    new = read_table(str(REF / "data" / "formula_new.csv"))
    state = state_from_fit(fm)
    for population in (True, False):
        got = predict(state, new, population=population).prediction
        want = exp["predict_new"]["population" if population else "conditional"]
        np.testing.assert_allclose(got, want, atol=2e-3 * exp["sigma"])


ERRORS = {"one_level_factor": "contrasts can be applied only to factors with 2 or more levels"}


@pytest.mark.parametrize("cid", sorted(ERRORS))
def test_refused_as_lme4_refuses(data, cid):
    c = CASES[cid]
    assert ERRORS[cid] in c["expected"]["error"]
    with pytest.raises(LmmError) as info:
        fit(c["formula"], data)
    assert ERRORS[cid] in info.value.message


def test_zero_weights_are_dropped_not_an_infinite_criterion(fits, data):
    """lme4 gives REML = Inf with a weight of 0; lmm drops those rows (with a note) and so agrees with
    lme4 fitted to the rows of positive weight."""
    assert CASES["weights_zero_unsubsetted"]["expected"]["objective"] in (float("inf"), "Inf")
    fm = fit("y ~ x + (1|B)", data, weights="w0")
    assert fm.result().reml_criterion == pytest.approx(CASES["weights_zero"]["expected"]["objective"], abs=2e-4)
    assert any("weight 0 dropped" in w for w in fm.design.warnings)


def test_nan_response_rows_are_dropped_with_a_note(fits):
    fm = fits["nan_response"]
    assert fm.design.n == CASES["nan_response"]["expected"]["nobs"] == 143
    assert any("sqrt(yneg) is not a number" in w for w in fm.design.warnings)


def test_empty_text_is_a_level_with_a_note(fits):
    fm = fits["empty_text_level"]
    assert fm.design.spec.variables["tx"].levels == ("", "left", "right")
    assert any('level named ""' in w for w in fm.design.warnings)


def test_lm_with_weights_and_offset_as_summary_lm(data):
    """No random term: lm(y ~ x + V + offset(o), weights = w) as R 4.2.2's summary.lm reports it."""
    from lmmcli.fit import analyze

    exp = json.loads((REF / "expected" / "lm_weights_offset.json").read_text())
    r = analyze(fit(exp["formula"], data, weights=exp["weights"])).report
    assert [fe.term for fe in r.fixed_effects] == exp["fixef"]["terms"]
    np.testing.assert_allclose([fe.estimate for fe in r.fixed_effects], exp["fixef"]["estimate"], rtol=1e-9)
    np.testing.assert_allclose([fe.std_error for fe in r.fixed_effects], exp["fixef"]["se"], rtol=1e-9)
    got = [r.r_squared, r.adj_r_squared, r.sigma, r.f_statistic, r.loglik, r.aic]
    want = [exp[k] for k in ("r_squared", "adj_r_squared", "sigma", "fstatistic", "loglik", "aic")]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    q = r.residuals
    np.testing.assert_allclose([q["min"], q["q1"], q["median"], q["q3"], q["max"]], exp["residual_quantiles"],
                               rtol=1e-9)


def test_ranova_refits_keep_weights_and_contrasts(data):
    from lmmcli.analysis.ranova import ranova

    exp = json.loads((REF / "expected" / "ranova_weights_contrasts.json").read_text())
    fm = fit(exp["formula"], data, weights=exp["weights"], contrasts=lmm_contrasts(exp["contrasts"]))
    rows = ranova(fm, data).ranova
    assert [r.term for r in rows] == exp["rows"]
    assert [r.npar for r in rows] == exp["npar"]
    np.testing.assert_allclose([r.loglik for r in rows], exp["loglik"], atol=1e-4)


def test_intervals_of_a_second_term_on_a_factor_are_attached_to_g_1():
    """VarCorr names (Days||Subject)'s slope Subject.1; lme4's confint names it sd_Days|Subject."""
    from lmmcli.inference.summary import summarize

    ref = Path(__file__).parent / "reference"
    exp = json.loads((ref / "expected" / "sleepstudy_uncorrelated.json").read_text())["confint_profile"]
    fm = fit("Reaction ~ Days + (Days||Subject)", read_table(str(ref / "data" / "sleepstudy.csv")))
    r = summarize(fm, ci="profile")
    assert [v.group for v in r.variance_components] == ["Subject", "Subject.1", "Residual"]
    slope = r.variance_components[1]
    np.testing.assert_allclose((slope.conf_low, slope.conf_high), (exp["lower"][1], exp["upper"][1]), rtol=1e-3)



NAMES = json.loads((REF / "expected" / "model_matrix_names.json").read_text())


@pytest.mark.parametrize("formula", list(NAMES))
def test_model_matrix_columns_as_r(data, formula):
    """R's model.matrix column names and order (model_matrix_names.R), before aliased columns are dropped."""
    from lmmcli.design.design import Evaluator, build_design, model_columns
    from lmmcli.formula import parse_formula

    f = parse_formula(formula)
    d = build_design(f, data)
    names, _ = model_columns(f.fixed, f.intercept, d.spec, Evaluator.for_spec(d.spec, data.take(d.rows)), fixed=True)
    assert names == NAMES[formula]


ANOVA = json.loads((REF / "expected" / "anova_contrasts.json").read_text())


@pytest.mark.parametrize("table", ANOVA["tables"], ids=[f"{t['contrasts']}-type{t['type']}" for t in ANOVA["tables"]])
def test_anova_with_other_contrasts_as_lmertest(data, table):
    """Types 1 and 2 work on X in any coding; type 3 maps the treatment-coded hypotheses (lmerTest)."""
    from lmmcli.inference.anova import anova

    fm = fit(ANOVA["formula"], data, weights=ANOVA["weights"],
             contrasts={"V": table["contrasts"][6:], "N": table["contrasts"][6:]})
    rows = anova(fm, data, str(table["type"])).anova
    assert [r.term for r in rows] == table["terms"]
    np.testing.assert_allclose([r.f_value for r in rows], table["F"], rtol=1e-4)
    assert [r.num_df for r in rows] == table["NumDF"]
    np.testing.assert_allclose([r.den_df for r in rows], table["DenDF"], rtol=1e-3)
