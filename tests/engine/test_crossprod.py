"""CrossProducts: batches merge to the whole, and the derived records equal records formed from rows."""

from __future__ import annotations

import dataclasses
from functools import reduce

import numpy as np
import pandas as pd
import pytest

from conftest import REF
from lmmcli.design.design import build_design
from lmmcli.engine.crossprod import CrossProducts, merge
from lmmcli.engine.pls import PlsModel
from lmmcli.formula import parse_formula

CASES = [("sleepstudy.csv", "Reaction ~ Days + (Days|Subject)"),                  # one vector term
         ("penicillin.csv", "diameter ~ 1 + (1|plate) + (1|sample)"),             # crossed: A21, A22, A2Xy
         ("gpa.csv", "gpa ~ occasion + (occasion|student) + (1|job) + (1|sex)")]  # p1 = 2 and two rest terms


def _design(csv, text):
    return build_design(parse_formula(text), pd.read_csv(REF / "data" / csv))


def _batch(design, rows):
    """The record of some rows of a design (the same terms and levels)."""
    blocks = [dataclasses.replace(b, codes=b.codes[rows], Z=b.Z[rows]) for b in design.blocks]
    return CrossProducts.from_rows(design.X[rows], design.y[rows], blocks)


def _theta(model):
    return model.theta0 * 0.7 + np.where(model.lower == 0, 0.2, 0.1)


@pytest.mark.parametrize("csv,text", CASES)
def test_batches_and_halves_merge_to_the_whole(csv, text):
    design = _design(csv, text)
    whole = PlsModel(CrossProducts.from_rows(design.X, design.y, design.blocks))
    theta = _theta(whole)
    want = whole.objective(theta)
    batches = [_batch(design, rows) for rows in np.array_split(np.arange(design.n), 7)]
    seven = reduce(merge, batches)
    halves = merge(reduce(merge, batches[:3]), reduce(merge, batches[3:]))   # another bracketing
    for cp in (seven, halves):
        assert cp.n == design.n
        assert PlsModel(cp).objective(theta) == pytest.approx(want, rel=1e-12)
        np.testing.assert_allclose(cp.col_min, whole.cp.col_min)
        np.testing.assert_allclose(cp.col_max, whole.cp.col_max)
        np.testing.assert_allclose(cp.counts1, whole.cp.counts1)


def test_merge_refuses_other_terms():
    a = _design(*CASES[0])
    b = _design("sleepstudy.csv", "Reaction ~ Days + (1|Subject)")
    with pytest.raises(ValueError, match="same columns and random terms"):
        merge(CrossProducts.from_rows(a.X, a.y, a.blocks), CrossProducts.from_rows(b.X, b.y, b.blocks))


def test_column_statistics_and_names():
    d = _design(*CASES[0])
    cp = CrossProducts.from_rows(d.X, d.y, d.blocks, (*d.fixed_names, d.response))
    assert cp.columns == ("(Intercept)", "Days", "Reaction")
    np.testing.assert_allclose(cp.col_sum, [180, d.X[:, 1].sum(), d.y.sum()])
    assert cp.col_min[2] == d.y.min() and cp.col_max[1] == 9
    assert not cp.nonfinite.any()
    assert cp.terms[0].columns == ("(Intercept)", "Days") and len(cp.terms[0].levels) == 18
    np.testing.assert_allclose(cp.term_gram(0), d.blocks[0].Z.T @ d.blocks[0].Z)


def test_records_are_not_changed_by_derived_ones():
    d = _design(*CASES[1])
    cp = CrossProducts.from_rows(d.X, d.y, d.blocks)
    before = PlsModel(cp).objective(np.array([0.5, 0.9]))
    cp.with_response(d.y[::-1].copy(), d.X, d.blocks)
    cp.recombined(np.eye(cp.m))
    cp.term(1)
    assert PlsModel(cp).objective(np.array([0.5, 0.9])) == before


@pytest.mark.parametrize("cy, cx", [(1e9, 1.0), (1e-9, 1e3), (1.0, 1e-6)])
def test_a_record_without_units_is_rescaled_inside_engine_fit(sleepstudy, cy, cx):
    """A record formed as it is (as a database's GROUP BY gives it) with extreme scales fits like the
    rows-based path: engine.fit puts it in diagonal units first."""
    from lmmcli.engine.fit import fit as engine_fit
    from lmmcli.fit import fit

    df = sleepstudy.assign(Reaction=sleepstudy.Reaction * cy, Days=sleepstudy.Days * cx)
    d = build_design(parse_formula("Reaction ~ Days + (Days|Subject)"), df)
    ef = engine_fit(CrossProducts.from_rows(d.X, d.y, d.blocks))
    assert ef.scaled
    want = fit("Reaction ~ Days + (Days|Subject)", df)
    assert ef.sol.objective == pytest.approx(want.sol.objective, abs=1e-6)
    np.testing.assert_allclose(ef.sol.beta, want.sol.beta, rtol=1e-5)
    assert ef.sol.sigma == pytest.approx(want.sol.sigma, rel=1e-5)
    np.testing.assert_allclose(ef.sol.b[0], want.sol.b[0], rtol=1e-4, atol=1e-6 * np.abs(want.sol.b[0]).max())


@pytest.mark.parametrize("reml", [True, False])
def test_without_first_is_the_record_of_the_other_terms(reml):
    """Dropping the first term from the fields already formed gives the other terms' own record."""
    full = _design("gpa.csv", "gpa ~ occasion + (1|student) + (1|job) + (1|sex)")
    others = _design("gpa.csv", "gpa ~ occasion + (1|job) + (1|sex)")
    a = PlsModel(CrossProducts.from_rows(full.X, full.y, full.blocks).without_first(), reml)
    b = PlsModel(CrossProducts.from_rows(others.X, others.y, others.blocks), reml)
    assert [t.group for t in a.blocks] == [t.group for t in b.blocks] == ["job", "sex"]
    for theta in ([0.3, 0.8], [1.2, 0.0]):
        assert a.objective(np.array(theta)) == pytest.approx(b.objective(np.array(theta)), rel=1e-12)


def test_without_first_needs_scalar_terms_after_the_first():
    d = _design("sleepstudy.csv", "Reaction ~ Days + (1|Subject) + (Days|Days)")
    with pytest.raises(ValueError):
        CrossProducts.from_rows(d.X, d.y, d.blocks).without_first()
