"""--ci profile for GLMMs: lme4's confint(method = "profile") on glmer fits (numbers: make_profile.R)."""

from __future__ import annotations

import json

import pytest

from tests.glmm.reference import REF, fitted


def _expected(case_id):
    return json.loads((REF / "expected" / f"profile_{case_id}.json").read_text())


@pytest.mark.parametrize("case_id", ["counts_offset", pytest.param("cbpp", marks=pytest.mark.slow),
                                     pytest.param("cbpp_agq25", marks=pytest.mark.slow)])
def test_profile_intervals_match_confint(case_id):
    from lmmcli.glmm.profile import profile_intervals

    fm, exp = fitted(case_id), _expected(case_id)
    iv = profile_intervals(fm)
    assert not iv.warnings
    for name, lo, hi in zip(exp["names"], exp["lower"], exp["upper"]):
        got = iv.bounds[name]
        assert got[0] == pytest.approx(lo, abs=1e-4), name
        assert got[1] == pytest.approx(hi, abs=1e-4), name


def test_cli_fit_ci_profile_puts_the_intervals_on_the_rows():
    from typer.testing import CliRunner

    from lmmcli.cli import app

    exp = _expected("counts_offset")
    r = CliRunner().invoke(app, ["fit", str(REF / "data" / "counts.csv"), "count ~ x + offset(log(exposure)) + (1 | site)",
                                 "--family", "poisson", "--ci", "profile", "-f", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["ci_method"] == "profile"
    want = dict(zip(exp["names"], zip(exp["lower"], exp["upper"])))
    vc = d["variance_components"][0]
    assert (vc["conf_low"], vc["conf_high"]) == pytest.approx(want["sd_(Intercept)|site"], abs=1e-4)
    for fe in d["fixed_effects"]:
        assert (fe["conf_low"], fe["conf_high"]) == pytest.approx(want[fe["term"]], abs=1e-4)
