"""Level labels: every label reads back as its value, and two levels never share one (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest

from lmmcli.design.levels import group_codes, number_label, value_labels
from lmmcli.errors import DataError
from lmmcli.io.frame import Frame


@pytest.mark.parametrize("value, label", [
    (308.0, "308"),
    (-2.0, "-2"),
    (0.1, "0.1"),
    (1e-200, "1e-200"),
    (2.5, "2.5"),
    (1234567890123400.0, "1234567890123400"),
    (1234567890123401.0, "1234567890123401"),
    (1.5e20, "1.5e+20"),
    (1 / 3, "0.3333333333333333"),
    (float("inf"), "Inf"),
    (float("-inf"), "-Inf"),
])
def test_number_labels(value, label):
    assert number_label(value) == label


@pytest.mark.parametrize("values", [
    np.array([1234567890123400.0 + i for i in range(20)]),     # 16-digit IDs read as floats (one NA)
    np.array([0.1, 0.1 + 2e-17, 0.30000000000000004, 0.3]),
    np.array([1e16, 1e16 + 2, 2.0 ** 60, 2.0 ** 60 + 256]),
])
def test_float_labels_round_trip_and_stay_distinct(values):
    labels = value_labels(values)
    assert len(set(labels)) == len(set(values.tolist()))
    assert [float(s) for s in labels] == values.tolist()


def test_integer_labels_are_integers():
    assert list(value_labels(np.array([12345678901234567, -3], dtype=np.int64))) == ["12345678901234567", "-3"]


def test_group_codes_of_long_ids_keep_every_group():
    ids = np.repeat(1234567890123400.0 + np.arange(20), 3)
    codes, labels = group_codes(Frame({"g": ids}), ("g",))
    assert len(labels) == 20 and len(set(labels)) == 20 and codes.max() == 19


def test_interaction_labels_that_collide_are_refused():
    df = Frame({"a": np.array(["x:y", "x"], dtype=object), "b": np.array(["z", "y:z"], dtype=object)})
    with pytest.raises(DataError, match="both labelled 'x:y:z'"):
        group_codes(df, ("a", "b"))


@pytest.mark.parametrize("values", [
    ["b", "B", "a", "A", "Z", "", "b", "a"], ["g10", "g9", "g100", "g9"], ["x"], ["é", "e", "E", "\u00e9"],
    ["nul\x00inside", "a"], ["\ud800", "a"], ["a", 1.5, "b"]])
def test_text_codes_by_dictionary_encode_equal_the_sorting_rule(values):
    """_factorize of text (pyarrow's dictionary_encode, or the fallback) gives R's order and matching codes."""
    from lmmcli.design.levels import _factorize, text_order

    v = np.array(values, dtype=object)
    codes, uniq = _factorize(v)
    assert list(uniq) == sorted(dict.fromkeys(values), key=text_order)
    assert [uniq[c] for c in codes] == values


@pytest.mark.parametrize("values", [["b", "B", "a", "", "b"], ["nul\x00inside", "a"], ["a", None, "b"]])
def test_text_codes_of_long_columns_equal_those_of_short_ones(values):
    """From COMPUTE_WORTH values on, pyarrow's dictionary_encode codes the text; below, a dict: the same codes."""
    from lmmcli.design.levels import _factorize
    from lmmcli.io.arrow import COMPUTE_WORTH

    reps = COMPUTE_WORTH // len(values) + 1
    long = np.array(values * reps, dtype=object)
    codes, uniq = _factorize(long)
    short_codes, short_uniq = _factorize(np.array(values, dtype=object))
    assert list(uniq) == list(short_uniq)
    assert np.array_equal(codes, np.tile(short_codes, reps))
