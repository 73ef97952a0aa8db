"""GLMM responses as glmer reads them, weights, offsets, and the errors for responses out of range."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmmcli.errors import DataError, ModelSpecError
from lmmcli.formula import parse_formula
from lmmcli.glmm import check_nagq
from lmmcli.glmm.design import build_glmm_design
from lmmcli.glmm.family import make_family

DF = pd.DataFrame({"g": list("aabbccdd") * 2, "x": np.arange(16.0), "s": [1, 0, 2, 3] * 4, "n": [3, 2, 4, 5] * 4,
                   "ok": [True, False] * 8, "yn": ["no", "yes", "yes", "no"] * 4, "c": [0, 1, 5, 2] * 4,
                   "e": [1.0, 2.0, 4.0, 8.0] * 4})


def design(formula, family="binomial", weights=None):
    return build_glmm_design(parse_formula(formula), DF, make_family(family), weights)


def test_cbind_gives_proportions_and_trials():
    gd = design("cbind(s, n - s) ~ x + (1 | g)")
    np.testing.assert_allclose(gd.y, DF.s / DF.n)
    np.testing.assert_allclose(gd.weights, DF.n)
    assert gd.response_kind == "cbind"


def test_proportion_with_weights_is_the_same_response():
    gd = design("s/n ~ x + (1 | g)", weights="n")
    np.testing.assert_allclose(gd.y, DF.s / DF.n)
    np.testing.assert_allclose(gd.weights, DF.n)


@pytest.mark.parametrize("col, success", [("ok", DF.ok.astype(float)), ("yn", (DF.yn == "yes").astype(float))])
def test_factor_and_logical_responses_second_level_is_success(col, success):
    gd = design(f"{col} ~ x + (1 | g)")
    np.testing.assert_array_equal(gd.y, success)


def test_offset_is_summed_and_kept_out_of_x():
    gd = design("c ~ x + offset(log(e)) + (1 | g)", "poisson")
    np.testing.assert_allclose(gd.offset, np.log(DF.e))
    assert gd.design.fixed_names == ["(Intercept)", "x"]


@pytest.mark.parametrize("formula, family, msg", [
    ("c ~ x + (1 | g)", "binomial", "between 0 and 1"),
    ("I(-c) ~ x + (1 | g)", "poisson", "negative"),
    ("cbind(s, n - s) ~ x + (1 | g)", "poisson", "binomial response"),
    ("yn ~ x + (1 | g)", "poisson", "not numeric"),
])
def test_responses_out_of_range_are_errors(formula, family, msg):
    with pytest.raises((DataError, ModelSpecError), match=msg):
        design(formula, family)


def test_non_integer_counts_warn():
    assert any("non-integer" in w for w in design("I(c + 0.5) ~ x + (1 | g)", "poisson").warnings)
    assert any("non-integer" in w for w in design("s/n ~ x + (1 | g)").warnings)


def test_a_glmm_needs_a_random_term():
    with pytest.raises(ModelSpecError, match="random-effects"):
        design("c ~ x", "poisson")


def test_unknown_family_and_link():
    with pytest.raises(ModelSpecError, match="family"):
        make_family("gamma")
    with pytest.raises(ModelSpecError, match="probit"):
        make_family("poisson", "probit")


def test_agq_only_for_one_scalar_term():
    one = design("c ~ x + (1 | g)", "poisson").design.blocks
    slope = design("c ~ x + (x | g)", "poisson").design.blocks
    check_nagq(9, one)
    with pytest.raises(ModelSpecError, match="single scalar"):
        check_nagq(9, slope)


def test_missing_counts_drop_their_rows():
    df = DF.astype({"s": float}).copy()
    df.loc[3, "s"] = np.nan
    gd = build_glmm_design(parse_formula("cbind(s, n - s) ~ x + (1 | g)"), df, make_family("binomial"))
    assert gd.design.n == len(DF) - 1 and np.all(np.isfinite(gd.y)) and np.all(np.isfinite(gd.weights))
    assert any("missing" in w for w in gd.design.warnings)
