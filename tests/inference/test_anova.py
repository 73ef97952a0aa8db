"""lmm anova against lmerTest 3.1-3's anova() (tests/reference/analysis/): F, df within 1e-3 relative,
p within 1e-4 absolute; and the pieces (R's zapsmall and doolittle, lmerTest's F df rule)."""

from __future__ import annotations

import numpy as np
import pytest

from lmmcli.errors import ModelSpecError, UsageError
from lmmcli.inference.anova import anova, anova_of, check_options, fstat_ddf
from lmmcli.inference.hypotheses import doolittle, zapsmall
from tests.inference.analysis_reference import CASES, basis, expected, fitted, params, rel

TABLES = [(case, key) for case in CASES for key in expected(case)["anova"]]


@pytest.mark.parametrize("case,key", params(TABLES))
def test_anova_matches_lmertest(case, key):
    type_, method = key.split("_")
    result = anova_of(basis(case), type_, method)
    want = expected(case)["anova"][key]
    assert [r.term for r in result.anova] == [w["term"] for w in want]
    for got, w in zip(result.anova, want):
        assert got.num_df == w["num_df"]
        for k in ("sum_sq", "mean_sq", "den_df", "f_value"):
            assert rel(getattr(got, k), w[k]) < 1e-3, (got.term, k, getattr(got, k), w[k])
        assert abs(got.p_value - w["p_value"]) < 1e-4


def test_type3_is_not_the_naive_test_of_the_main_effect_columns():
    """With A*B in treatment coding, type 3's A averages over B: not the test of A's two columns."""
    fm, df = fitted("twoway_AxB")
    t3 = {r.term: r for r in anova(fm, df, "3").anova}
    want = {w["term"]: w for w in expected("twoway_AxB")["anova"]["3_satterthwaite"]}
    V, b = fm.vcov(), fm.sol.beta
    cols = [fm.design.fixed_names.index(n) for n in ("Ahigh-dose", "Alow-dose")]
    naive = b[cols] @ np.linalg.solve(V[np.ix_(cols, cols)], b[cols]) / 2
    assert rel(t3["A"].f_value, want["A"]["f_value"]) < 1e-3
    assert rel(naive, want["A"]["f_value"]) > 0.05


def test_result_document_keys():
    fm, df = fitted("sleep_slope")
    doc = anova(fm, df).to_dict()
    assert set(doc) >= {"anova", "type", "df_method"}
    assert doc["type"] == "3" and doc["df_method"] == "satterthwaite"
    assert set(doc["anova"][0]) == {"term", "sum_sq", "mean_sq", "num_df", "den_df", "f_value", "p_value"}


@pytest.mark.parametrize("x,want", {
    "plain": ([1.23456789, 1e-12], [1.234568, 0.0]),
    "large": ([123456.789, 0.0001], [123456.8, 0.0]),
}.values())
def test_zapsmall_rounds_to_seven_significant_digits_of_the_largest(x, want):
    assert np.allclose(zapsmall(np.array(x)), want, rtol=0, atol=1e-12)


def test_doolittle_is_the_unit_lower_factor():
    A = np.array([[4.0, 2, 1], [2, 5, 3], [1, 3, 6]])
    L = doolittle(A)
    U = np.linalg.solve(L, A)
    assert np.allclose(np.diag(L), 1) and np.allclose(np.triu(L, 1), 0)
    assert np.allclose(np.tril(U, -1), 0, atol=1e-12)


@pytest.mark.parametrize("nu,want", {
    "one": ([7.0], 7.0),
    "equal": ([10.0, 10.0], 10.0),
    "small": ([1.5, 20.0], 2.0),
    "general": ([10.0, 20.0], 2 * (10 / 8 + 20 / 18) / (10 / 8 + 20 / 18 - 2)),
}.values())
def test_fstat_ddf(nu, want):
    assert fstat_ddf(np.array(nu)) == pytest.approx(want)


def test_options_refused():
    with pytest.raises(UsageError):
        check_options("4", "satterthwaite")
    with pytest.raises(UsageError):
        check_options("3", "residual")
    with pytest.raises(UsageError, match="REML"):
        check_options("3", "kenward-roger", reml=False)
    assert check_options("III", "Kenward_Roger") == ("3", "kenward-roger")


def test_a_model_without_random_terms_is_refused():
    from lmmcli.fit import fit

    _, df = fitted("sleep_slope")
    fm = fit("Reaction ~ Days", df)
    with pytest.raises(ModelSpecError):
        anova(fm, df)
