"""render.jsontext.dumps writes exactly what json.dumps(indent=2, allow_nan=False) writes; clean as before."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import REF
from lmmcli.fit import fit
from lmmcli.render.jsontext import dumps
from lmmcli.results import clean

scalars = st.none() | st.booleans() | st.integers(-10 ** 20, 10 ** 20) | st.text(max_size=8) \
    | st.floats(allow_nan=False, allow_infinity=False)
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=12)
                         | st.dictionaries(st.text(max_size=5), inner, max_size=6), max_leaves=60)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_same_text_as_json_dumps(doc):
    assert dumps(doc) == json.dumps(doc, indent=2, allow_nan=False)


def test_rows_of_flat_dicts_and_odd_rows():
    rows = [{"a": i, "b": 0.1 * i, "c": "x\u00e9\"", "d": None, "e": i % 2 == 0} for i in range(20)]
    for doc in (rows, rows + [{"a": 1}], rows[:3] + [{"a": [1, {"z": []}], "b": {}, "c": 1, "d": 2, "e": 3}] * 9,
                {"k": rows, 3: 1.5, None: True}):
        assert dumps(doc) == json.dumps(doc, indent=2, allow_nan=False)


@pytest.mark.parametrize("bad", [math.nan, math.inf, [1.0, -math.inf]])
def test_non_finite_numbers_are_refused_as_json_does(bad):
    with pytest.raises(ValueError):
        json.dumps(bad, allow_nan=False)
    with pytest.raises(ValueError):
        dumps(bad)


def _clean_reference(value):
    """clean() as it was: one recursive rule per type."""
    from dataclasses import fields, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _clean_reference(getattr(value, f.name)) for f in fields(value) if not f.name.startswith("_")}
    if isinstance(value, dict):
        return {str(k): _clean_reference(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_reference(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean_reference(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def test_clean_of_a_fit_is_unchanged():
    import pandas as pd

    res = fit("Reaction ~ Days + (Days|Subject)", pd.read_csv(REF / "data" / "sleepstudy.csv")).result()
    assert json.dumps(clean(res)) == json.dumps(_clean_reference(res))
    odd = {"a": np.array([1.0, np.nan, np.inf]), "b": (np.float32(2.5), np.int64(3), np.bool_(True)),
           "c": [res.fixed_effects[0], 7], "d": np.array([["x", None]], dtype=object)}
    assert clean(odd) == _clean_reference(odd)
