"""Tests for lmmcli.predict.ranef and `lmm ranef` / `lmm coef`: lme4's ranef(condVar = TRUE) and coef() from
tests/reference/expected/*.json (lme4 1.1-31), mixedup's columns, intervals, formats."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm
from typer.testing import CliRunner

from conftest import CASE_IDS, CASES, REF, read_case_data
from lmmcli.cli import app
from lmmcli.errors import UsageError
from lmmcli.fit import fit
from lmmcli.predict.predict import state_from_fit
from lmmcli.predict.ranef import coef_rows, ranef_rows

# tolerances of check_reference.py: ranef_abs_of_sd 2e-3 (of that component's sd), se_rel 2e-3
RANEF_ABS_OF_SD = 2e-3
SE_REL = 2e-3
COLUMNS = ["group", "level", "term", "estimate", "std_error", "conf_low", "conf_high"]
SLEEP_CSV = str(REF / "data" / "sleepstudy.csv")
runner = CliRunner()


@pytest.fixture(scope="module")
def states():
    return {c["id"]: state_from_fit(fit(c["formula"], read_case_data(c), reml=c["reml"], factors=c["factors"]))
            for c in CASES}


def _expected(cid):
    return next(c for c in CASES if c["id"] == cid)["expected"]


def _sd_of(exp):
    """lme4's sd of each (group, term) random effect."""
    out = {}
    for g in exp["varcorr"]:
        terms = g["terms"] if isinstance(g["terms"], list) else [g["terms"]]
        sds = g["sd"] if isinstance(g["sd"], list) else [g["sd"]]
        out.update({(g["group"].split(".")[0], t): s for t, s in zip(terms, sds)})
    return out


@pytest.mark.parametrize("cid", CASE_IDS)
def test_ranef_matches_lme4(states, cid):
    exp = _expected(cid)
    r = exp["ranef"]
    sd_of, sigma = _sd_of(exp), exp["sigma"]
    mine = {(row.group, row.level, row.term): row for row in ranef_rows(states[cid])}
    assert len(mine) == len(r["condval"])
    for g, t, lv, val, sd in zip(r["grpvar"], r["term"], r["grp"], r["condval"], r["condsd"]):
        row = mine[(g, str(lv), t)]
        assert abs(row.estimate - val) <= RANEF_ABS_OF_SD * sd_of[(g, t)] + 1e-6 * sigma
        assert abs(row.std_error - sd) <= SE_REL * max(r["condsd"]) + 1e-6 * sigma


@pytest.mark.parametrize("cid", CASE_IDS)
def test_coef_matches_lme4(states, cid):
    exp = _expected(cid)
    sd_of, sigma = _sd_of(exp), exp["sigma"]
    mine = {(row.group, row.level, row.term): row.estimate for row in coef_rows(states[cid])}
    n = 0
    for g in exp["coef"]:
        values = np.array(g["values"], dtype=float).reshape(len(g["levels"]), len(g["terms"]))
        for i, lv in enumerate(g["levels"]):
            for j, t in enumerate(g["terms"]):
                tol = RANEF_ABS_OF_SD * sd_of.get((g["group"], t), 0.0) + 1e-4 * abs(values[i, j]) + 1e-6 * sigma
                assert abs(mine[(g["group"], str(lv), t)] - values[i, j]) <= tol
                n += 1
    assert n == len(mine)


def test_uncorrelated_terms_of_one_group_are_merged(states):
    rows = ranef_rows(states["sleepstudy_uncorrelated"])
    assert [(r.level, r.term) for r in rows[:4]] == [("308", "(Intercept)"), ("308", "Days"),
                                                     ("309", "(Intercept)"), ("309", "Days")]


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_intervals_are_normal(states, level):
    q = norm.ppf(0.5 + level / 2)
    for row in ranef_rows(states["sleepstudy_slope"], level) + coef_rows(states["sleepstudy_slope"], level):
        assert row.conf_low == pytest.approx(row.estimate - q * row.std_error, rel=1e-12)
        assert row.conf_high == pytest.approx(row.estimate + q * row.std_error, rel=1e-12)


def test_coef_std_error_adds_fixed_and_conditional_variance(states):
    state = states["sleepstudy_slope"]
    re = {(r.level, r.term): r.std_error for r in ranef_rows(state)}
    for row in coef_rows(state):
        j = state.spec.fixed_names.index(row.term)
        assert row.std_error == pytest.approx(np.sqrt(state.vcov[j, j] + re[(row.level, row.term)] ** 2), rel=1e-12)


def test_coef_of_a_term_without_random_part_is_the_fixed_effect(states):
    state = states["gpa_cluster"]
    for row in coef_rows(state):
        if row.term != "(Intercept)":
            j = state.spec.fixed_names.index(row.term)
            assert row.estimate == state.beta[j]


def test_bad_level(states):
    with pytest.raises(UsageError):
        ranef_rows(states["dyestuff"], 1.0)


# -- the commands --------------------------------------------------------------------------------
@pytest.mark.parametrize("command,key", [("ranef", "random_effects"), ("coef", "coefficients")])
def test_cli_json(command, key):
    r = runner.invoke(app, [command, SLEEP_CSV, "Reaction ~ Days + (Days|Subject)", "--format", "json"])
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["level"] == 0.95 and list(doc[key][0]) == COLUMNS and len(doc[key]) == 36


@pytest.mark.parametrize("command", ["ranef", "coef"])
def test_cli_csv_has_mixedup_columns(command):
    r = runner.invoke(app, [command, SLEEP_CSV, "Reaction ~ Days + (1|Subject)", "-f", "csv", "--level", "0.9"])
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == ",".join(COLUMNS) and lines[1].startswith("Subject,308,(Intercept),")


def test_cli_table_sorted_by_group_and_level():
    r = runner.invoke(app, ["ranef", str(REF / "data" / "penicillin.csv"), "diameter ~ 1 + (1|plate) + (1|sample)"])
    assert r.exit_code == 0, r.stderr
    body = [ln.split() for ln in r.stdout.splitlines()[3:] if ln.strip()]
    assert [b[0] for b in body] == ["plate"] * 24 + ["sample"] * 6
    assert [b[1] for b in body[:3]] == ["a", "b", "c"]


def test_cli_usage_errors():
    r = runner.invoke(app, ["ranef", SLEEP_CSV])
    assert r.exit_code == 2 and r.stderr.startswith("error: give DATA and FORMULA")
    r = runner.invoke(app, ["coef", SLEEP_CSV, "Reaction ~ Days + (1|Subject)", "--level", "2"])
    assert r.exit_code == 2 and "--level" in r.stderr
