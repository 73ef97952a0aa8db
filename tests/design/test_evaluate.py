"""Tests for lmmcli.design.evaluate and design.transforms: R's values of formula expressions (model.frame)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmmcli.design.design import build_design
from lmmcli.design.evaluate import Evaluator
from lmmcli.design.transforms import contrast_matrix, learn_poly, poly_basis
from lmmcli.errors import DataError, ModelSpecError
from lmmcli.formula import parse_formula
from lmmcli.io.frame import Frame

NAN = float("nan")


def frame(**cols) -> Frame:
    return Frame({k: np.asarray(v, dtype=object if any(isinstance(x, str) or x is None for x in v) else None)
                  for k, v in cols.items()})


def expr(text: str):
    return parse_formula(f"y ~ {text}").fixed[0].factors[0]


DF = frame(x=[1.0, 4.0, NAN, 9.0], g=["a", "b", None, "c"], n=[1, 2, 3, 10])

NUMERIC = [
    ("log(x, 3)", [0.0, math.log(4, 3), NAN, 2.0]),
    ("log10(n)", [0.0, math.log10(2), math.log10(3), 1.0]),
    ("I(pi * n)", [math.pi, 2 * math.pi, 3 * math.pi, 10 * math.pi]),
    ("I((x > 3) * 2)", [0.0, 2.0, NAN, 2.0]),                  # TRUE is 1 in arithmetic; NA stays NA
    ("abs(n - 3)", [2.0, 1.0, 0.0, 7.0]),
]


@pytest.mark.parametrize("text, want", NUMERIC, ids=[c[0] for c in NUMERIC])
def test_numeric_values_as_r(text, want):
    np.testing.assert_allclose(Evaluator(DF).numeric(expr(text)), want, equal_nan=True)


LABELS = [
    ("I(x > 3)", ["FALSE", "TRUE", None, "TRUE"]),              # NA > 3 is NA: the row is missing
    ("I(g %in% c('a', 'c'))", ["TRUE", "FALSE", "FALSE", "TRUE"]),   # NA %in% ... is FALSE in R
    ("I(!(n == 2) & g != 'c')", ["TRUE", "FALSE", None, "FALSE"]),    # TRUE & NA is NA
    ("I(n == 2 & g != 'c')", ["FALSE", "TRUE", "FALSE", "FALSE"]),    # FALSE & NA is FALSE
    ("I(n %in% c(2, 10))", ["FALSE", "TRUE", "FALSE", "TRUE"]),
    ("factor(n)", ["1", "2", "3", "10"]),
]


@pytest.mark.parametrize("text, want", LABELS, ids=[c[0] for c in LABELS])
def test_logical_and_factor_labels_as_r(text, want):
    assert list(Evaluator(DF).labels(expr(text))) == want


def test_factor_of_numbers_sorts_numerically_and_logicals_keep_both_levels():
    df = frame(y=[1.0, 2, 3, 4, 5, 6], n=[10, 9, 10, 9, 2, 2], x=[5.0, 6, 7, 8, 9, 10])
    d = build_design(parse_formula("y ~ factor(n) + I(x > 0)"), df)
    assert d.fixed_names == ["(Intercept)", "factor(n)9", "factor(n)10"]   # I(x > 0)TRUE: all TRUE, aliased
    assert d.spec.variables["I(x > 0)"].levels == ("FALSE", "TRUE")
    assert d.spec.aliased == ["I(x > 0)TRUE"]


def test_poly_matches_r_basis_and_predicts_with_its_coefficients():
    # R: poly(c(1, 2, 4, 7, 11), 2)
    x = np.array([1.0, 2, 4, 7, 11])
    coefs = learn_poly(x, 2, "poly(x, 2)")
    Z = poly_basis(x, coefs)
    np.testing.assert_allclose(Z.T @ Z, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(Z[:, 0], (x - x.mean()) / np.linalg.norm(x - x.mean()))
    assert coefs["alpha"][0] == pytest.approx(5.0)
    new = np.array([3.0, 20.0])
    np.testing.assert_allclose(poly_basis(new, coefs)[:, 0], (new - x.mean()) / np.linalg.norm(x - x.mean()))


@pytest.mark.parametrize("kind, names, first_column", [
    ("treatment", ["b", "c", "d"], [0, 1, 0, 0]),
    ("sum", ["1", "2", "3"], [1, 0, 0, -1]),
    ("helmert", ["1", "2", "3"], [-1, 1, 0, 0]),
    ("poly", [".L", ".Q", ".C"], [-3 / math.sqrt(20), -1 / math.sqrt(20), 1 / math.sqrt(20), 3 / math.sqrt(20)]),
])
def test_contrast_matrices_as_r(kind, names, first_column):
    got_names, C = contrast_matrix(kind, ("a", "b", "c", "d"))
    assert got_names == names
    np.testing.assert_allclose(C[:, 0], first_column, atol=1e-12)


def test_poly_refuses_missing_values_and_too_high_a_degree():
    df = frame(y=[1.0, 2, 3, 4], x=[1.0, 2, NAN, 4], z=[1.0, 1, 2, 2])
    with pytest.raises(DataError, match="missing values are not allowed in 'poly'"):
        build_design(parse_formula("y ~ poly(x, 2)"), df)
    with pytest.raises(DataError, match="'degree' must be less than number of unique points"):
        build_design(parse_formula("y ~ poly(z, 2)"), df)


def test_scale_learns_from_every_row_where_its_argument_is_present():
    df = frame(y=[1.0, 2, 3, 4, 5], x=[1.0, 2, 3, 4, 10], z=[1.0, NAN, 2, 3, 4])
    d = build_design(parse_formula("y ~ scale(x) + z"), df)
    c, s = d.spec.scale_state["scale(x)"]
    assert (c, s) == pytest.approx((4.0, np.std([1, 2, 3, 4, 10], ddof=1)))
    assert d.n == 4


def test_offsets_sum_and_their_missing_rows_are_dropped():
    df = frame(y=[1.0, 2, 3, 4, 5], x=[1.0, 3, 2, 5, 4], o=[0.5, 1, NAN, 2, 3])
    d = build_design(parse_formula("y ~ x + offset(o) + offset(2 * x)"), df)
    assert d.n == 4
    np.testing.assert_allclose(d.offset, [2.5, 7, 12, 11])


def test_text_in_arithmetic_is_an_error():
    with pytest.raises(ModelSpecError, match="cannot be used in arithmetic"):
        Evaluator(DF).numeric(expr("I(x + 'a')"))
