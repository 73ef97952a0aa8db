"""frame.Frame and as_frame: numpy columns, and pandas' dtypes mapped the way the pandas-based code treated them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import REF
from lmmcli.io.read import read_table
from lmmcli.design.design import build_design
from lmmcli.design.levels import group_codes, sorted_levels, value_labels
from lmmcli.formula import parse_formula
from lmmcli.io.frame import Frame, as_frame, frames_equal, infer_kind, missing

NA = None

# (id, pandas Series, expected numpy dtype, expected values (None/NaN for missing))
PANDAS_KINDS = [
    ("float with NaN", pd.Series([1.5, np.nan]), np.float64, [1.5, np.nan]),
    ("int64", pd.Series([1, 2]), np.int64, [1, 2]),
    ("int32 widens", pd.Series([1, 2], dtype="int32"), np.int64, [1, 2]),
    ("float32 widens", pd.Series([1.5, 2.0], dtype="float32"), np.float64, [1.5, 2.0]),
    ("bool", pd.Series([True, False]), np.bool_, [True, False]),
    ("nullable Int64 without NA", pd.Series([1, 2], dtype="Int64"), np.int64, [1, 2]),
    ("nullable Int64 with NA: float, as pyarrow gives ints with nulls", pd.Series([1, NA], dtype="Int64"),
     np.float64, [1.0, np.nan]),
    ("nullable Float64", pd.Series([1.5, NA], dtype="Float64"), np.float64, [1.5, np.nan]),
    ("nullable boolean: numbers (pandas counts it numeric)", pd.Series([True, False, NA], dtype="boolean"),
     np.float64, [1.0, 0.0, np.nan]),
    ("object booleans with None stay objects", pd.Series([True, NA, False], dtype=object), object,
     [True, None, False]),
    ("text with NaN: None", pd.Series(["a", np.nan, "b"], dtype=object), object, ["a", None, "b"]),
    ("string dtype", pd.Series(["a", NA], dtype="string"), object, ["a", None]),
    ("category: its values", pd.Series(pd.Categorical([3, 1, NA])), object, [3, 1, None]),
    ("dates: their text", pd.Series(pd.to_datetime(["2020-01-01", NA])), object, ["2020-01-01", None]),
    ("durations: their text", pd.Series(pd.to_timedelta(["1 day", NA])), object, ["1 days", None]),
]


@pytest.mark.parametrize("cid, series, dtype, values", PANDAS_KINDS, ids=[k[0] for k in PANDAS_KINDS])
def test_pandas_columns_map_to_numpy_kinds(cid, series, dtype, values):
    col = as_frame(pd.DataFrame({"c": series}))["c"]
    assert col.dtype == np.dtype(dtype)
    gone = missing(col)
    assert gone.tolist() == [v is None or (isinstance(v, float) and np.isnan(v)) for v in values]
    assert [v for v, g in zip(col.tolist(), gone) if not g] == [v for v, g in zip(values, gone) if not g]


def test_take_select_len_columns_attrs():
    f = Frame({"y": np.array([1.0, 2.0, 3.0]), "g": np.array(["a", "b", None], dtype=object)}, {"note": "x"})
    assert len(f) == 3 and f.columns == ["y", "g"] and "g" in f and "z" not in f
    sub = f.take([2, 0]).select(["g"])
    assert sub.columns == ["g"] and sub["g"].tolist() == [None, "a"] and sub.attrs == {"note": "x"}
    assert len(f.take(np.array([], dtype=int))) == 0


def test_columns_of_unequal_length_are_refused():
    with pytest.raises(ValueError, match="equal lengths"):
        Frame({"a": np.zeros(2), "b": np.zeros(3)})


def test_to_pandas_round_trip():
    f = read_table(str(REF / "data" / "pastes.csv"))
    df = f.to_pandas()
    assert list(df.columns) == f.columns and len(df) == len(f)
    assert frames_equal(as_frame(df), f)
    assert as_frame(f) is f


@pytest.mark.parametrize("values, dtype", [
    ([True, False], np.bool_),          # TRUE/FALSE with its missing values dropped: boolean again
    ([1, 2], np.int64),
    ([1, 2.5], np.float64),
    (["a", True], object),              # mixed stays text
])
def test_infer_kind(values, dtype):
    assert infer_kind(np.array(values, dtype=object)).dtype == np.dtype(dtype)


@pytest.mark.parametrize("values, levels", [
    (np.array([10, 9, 10, 2]), ("2", "9", "10")),                 # numeric order, not text order
    (np.array([2.5, 1.0, 2.5]), ("1", "2.5")),
    (np.array([True, False]), ("FALSE", "TRUE")),
    (np.array(["b", "a", None, "b"], dtype=object), ("a", "b")),
])
def test_levels_and_group_codes_in_r_order(values, levels):
    assert sorted_levels(values) == levels
    present = values[~missing(values)]
    codes, labels = group_codes(Frame({"g": present}), ("g",))
    assert labels == levels
    assert [labels[c] for c in codes] == value_labels(present).tolist()


@pytest.mark.parametrize("csv, formula", [
    ("gpa.csv", "gpa ~ occasion + job + sex + (1|student)"),
    ("pastes.csv", "strength ~ 1 + (1|batch/cask)"),
])
def test_design_is_the_same_from_a_frame_and_from_pandas(csv, formula):
    f = read_table(str(REF / "data" / csv))
    a = build_design(parse_formula(formula), f)
    b = build_design(parse_formula(formula), f.to_pandas())
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert [(blk.levels, blk.codes.tolist()) for blk in a.blocks] == [(blk.levels, blk.codes.tolist()) for blk in b.blocks]


def test_a_categorical_grouping_factor_keeps_its_category_order(tmp_path):
    """As pandas' factorize did: the levels present, in the categories' order (Parquet dictionaries too)."""
    g = pd.Categorical(["b", "a", "b", "d"], categories=["d", "c", "b", "a"])
    pd.DataFrame({"g": g, "y": [1.0, 2.0, 3.0, 4.0]}).to_parquet(tmp_path / "d.parquet")
    for f in (as_frame(pd.DataFrame({"g": g})), read_table(str(tmp_path / "d.parquet")).take([0, 1, 2, 3])):
        codes, labels = group_codes(f, ("g",))
        assert labels == ("d", "b", "a") and codes.tolist() == [1, 2, 1, 0]
        assert sorted_levels(f["g"]) == ("a", "b", "d")     # a fixed-effect factor's levels: value order
