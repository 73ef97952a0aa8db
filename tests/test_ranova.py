"""lmm ranova against lmerTest 3.1-3's ranova() (tests/reference/analysis/): row names and npar exactly,
logLik and AIC within 1e-6 relative, LRT within 1e-3 (relative, or absolute below 1), p within 1e-4 absolute."""

from __future__ import annotations

import pytest

from lmmcli.analysis.ranova import bars, drop_scope, ranova, reductions
from lmmcli.errors import ModelSpecError
from lmmcli.formula import parse_formula
from tests.inference.analysis_reference import CASES, expected, fitted, params, rel

RANOVA = [case for case in CASES if "ranova" in expected(case)]


@pytest.mark.parametrize("case", params([(c,) for c in RANOVA]))
def test_ranova_matches_lmertest(case):
    fm, df = fitted(case)
    got = ranova(fm, df, tuple(expected(case)["factors"]))
    want = expected(case)["ranova"]
    assert [r.term for r in got.ranova] == [w["term"] for w in want]
    for g, w in zip(got.ranova, want):
        assert g.npar == w["npar"] and g.df == w["df"]
        assert rel(g.loglik, w["loglik"]) < 1e-6 and rel(g.aic, w["aic"]) < 1e-6
        if w["lrt"] is not None:
            assert abs(g.lrt - w["lrt"]) < 1e-3 * max(1.0, abs(w["lrt"]))
            assert abs(g.p_value - w["p_value"]) < 1e-4


@pytest.mark.parametrize("formula,names", {
    "slope": ("y ~ x + (1 + x | g)", ["x in (1 + x | g)"]),
    "two": ("y ~ x + (x + z | g)", ["x in (x + z | g)", "z in (x + z | g)"]),
    "interaction": ("y ~ x + (x*z | g)", ["x:z in (x * z | g)"]),
    "nested": ("y ~ x + (1 | a/b)", ["(1 | b:a)", "(1 | a)"]),
    "uncorrelated": ("y ~ x + (x || g)", ["(1 | g)", "x in (0 + x | g)"]),
}.values())
def test_rows_are_named_as_lmertest_names_them(formula, names):
    f = parse_formula(formula)
    assert [name for b in bars(f) for name, _ in reductions(b)] == names


def test_reduced_slope_terms():
    f = parse_formula("y ~ x + (x + z | g)")
    (b,) = bars(f)
    (_, first), (_, second) = reductions(b)
    assert [t.label for t in first.terms] == ["z"] and first.intercept
    assert [t.label for t in drop_scope(parse_formula("y ~ (a*b | g)").random[0].terms)] == ["a:b"]


def test_document_keys():
    fm, df = fitted("sleep_slope")
    doc = ranova(fm, df).to_dict()
    assert set(doc["ranova"][0]) == {"term", "npar", "loglik", "aic", "lrt", "df", "p_value"}
    assert doc["ranova"][0]["term"] == "<none>" and doc["ranova"][0]["lrt"] is None


def test_no_random_terms_is_refused():
    from lmmcli.fit import fit

    _, df = fitted("sleep_slope")
    with pytest.raises(ModelSpecError):
        ranova(fit("Reaction ~ Days", df), df)
