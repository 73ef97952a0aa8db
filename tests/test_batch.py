"""batch.fit_by: one fit per value of a column, the same as fitting each part alone, in parallel or not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import REF
from lmmcli.batch import fit_by, split_by
from lmmcli.errors import DataError
from lmmcli.fit import fit

GPA = REF.parent.parent / "sample_data" / "gpa.csv"
FORMULA = "gpa ~ occasion + (1|student)"


@pytest.fixture(scope="module")
def gpa():
    return pd.read_csv(GPA)


def test_split_follows_the_level_order_and_keeps_row_order(gpa):
    parts, n_missing = split_by(gpa, "sex")
    assert [label for label, _ in parts] == ["female", "male"] and n_missing == 0
    female = parts[0][1]
    assert len(female) == (gpa.sex == "female").sum()
    assert list(female["student"][:3]) == list(gpa.student[gpa.sex == "female"][:3])


def test_rows_without_a_value_are_in_no_part(gpa):
    df = gpa.copy()
    df.loc[:9, "sex"] = None
    parts, n_missing = split_by(df, "sex")
    assert n_missing == 10 and sum(len(p) for _, p in parts) == len(df) - 10


def test_an_unknown_column_is_named_with_a_hint(gpa):
    with pytest.raises(DataError, match="--by column 'sx' is not in") as exc:
        split_by(gpa, "sx")
    assert exc.value.hint == "did you mean 'sex'?"


@pytest.mark.parametrize("workers", [1, 2])
def test_each_part_is_fitted_as_if_alone(gpa, workers):
    result = fit_by(FORMULA, gpa, "sex", workers=workers)
    for f in result.fits:
        alone = fit(FORMULA, gpa[gpa.sex == f.value].reset_index(drop=True)).result()
        assert f.error is None and f.report.nobs == alone.nobs
        assert f.report.reml_criterion == pytest.approx(alone.reml_criterion, rel=1e-12)
        assert [fe.estimate for fe in f.report.fixed_effects] == pytest.approx(
            [fe.estimate for fe in alone.fixed_effects], rel=1e-10)
        assert f.report.fixed_effects[0].p_value is not None     # lmerTest's inference, as lmm fit


def test_a_part_that_cannot_be_fitted_keeps_its_error_and_the_others_are_fitted(gpa):
    df = gpa.copy()
    df["site"] = np.where(df.student <= 198, "big", "tiny")          # 'tiny': 2 students, 12 rows
    df.loc[df.site == "tiny", "gpa"] = 3.0                            # a constant response cannot be fitted
    result = fit_by(FORMULA, df, "site", workers=1)
    ok, bad = result.fits
    assert ok.error is None and bad.error is not None and result.failed == [bad]


def test_a_formula_without_random_terms_gives_lm_reports(gpa):
    result = fit_by("gpa ~ occasion", gpa, "sex", workers=1)
    assert all(not f.mixed and f.report.r_squared > 0 for f in result.fits)
