"""Design: columns coded and named as R's model.matrix, groups as lme4's, data bookkeeping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmmcli.design.aliasing import aliased_columns
from lmmcli.design.design import build_design, fixed_matrix
from lmmcli.design.levels import sorted_levels, value_labels
from lmmcli.errors import ModelSpecError
from lmmcli.formula import parse_formula


def toy() -> pd.DataFrame:
    """A small data set with a numeric, two text factors, a boolean and a grouping column."""
    rng = np.random.default_rng(0)
    n = 24
    return pd.DataFrame({
        "y": rng.normal(size=n),
        "x": np.arange(n, dtype=float),
        "recipe": np.tile(["A", "B", "C"], 8),
        "temp": np.repeat([175, 185, 195, 205], 6),
        "sex": np.tile(["female", "male"], 12),
        "flag": np.tile([True, False, False], 8),
        "g": np.repeat(list("abcdef"), 4),
        "h": np.tile(list("uvw"), 8),
    })


def design(text, df=None, **kw):
    return build_design(parse_formula(text), toy() if df is None else df, **kw)


@pytest.mark.parametrize("text, names", [
    ("y ~ x", ["(Intercept)", "x"]),
    ("y ~ sex", ["(Intercept)", "sexmale"]),
    ("y ~ 0 + sex", ["sexfemale", "sexmale"]),
    ("y ~ x - 1", ["x"]),
    ("y ~ x * sex", ["(Intercept)", "x", "sexmale", "x:sexmale"]),
    ("y ~ x:sex", ["(Intercept)", "x:sexfemale", "x:sexmale"]),
    ("y ~ recipe * sex", ["(Intercept)", "recipeB", "recipeC", "sexmale", "recipeB:sexmale", "recipeC:sexmale"]),
    ("y ~ flag", ["(Intercept)", "flagTRUE"]),
    ("y ~ I(x^2) + log(x + 1)", ["(Intercept)", "I(x^2)", "log(x + 1)"]),
    ("y ~ scale(x)", ["(Intercept)", "scale(x)"]),
    ("y ~ sex:x + recipe", ["(Intercept)", "recipeB", "recipeC", "sexfemale:x", "sexmale:x"]),
])
def test_fixed_column_names(text, names):
    assert design(text).fixed_names == names


def test_interaction_first_factor_varies_fastest():
    d = design("y ~ recipe * temp", factor_columns=("temp",))
    names = d.fixed_names
    assert names[:6] == ["(Intercept)", "recipeB", "recipeC", "temp185", "temp195", "temp205"]
    assert names[6:9] == ["recipeB:temp185", "recipeC:temp185", "recipeB:temp195"]


def test_reference_level_option():
    d = design("y ~ recipe", refs={"recipe": "B"})
    assert d.fixed_names == ["(Intercept)", "recipeA", "recipeC"]


def test_unknown_reference_level_names_levels():
    with pytest.raises(ModelSpecError, match="'D' is not a level of 'recipe'"):
        design("y ~ recipe", refs={"recipe": "D"})


def test_interaction_column_values():
    d = design("y ~ x * sex")
    df = toy()
    np.testing.assert_allclose(d.X[:, 3], df.x * (df.sex == "male"))


def test_scale_uses_mean_and_sd_and_is_remembered():
    d = design("y ~ scale(x)")
    x = toy().x
    np.testing.assert_allclose(d.X[:, 1], (x - x.mean()) / x.std(ddof=1))
    new = pd.DataFrame({"x": [x.mean()]})
    np.testing.assert_allclose(fixed_matrix(d.spec, new), [[1.0, 0.0]])


def test_response_transform():
    d = design("log(x + 1) ~ sex")
    np.testing.assert_allclose(d.y, np.log(toy().x + 1))
    assert d.response == "log(x + 1)"


def test_aliased_columns_are_dropped_with_warning():
    df = toy().assign(x2=lambda d: 2 * d.x)
    d = design("y ~ x + x2", df)
    assert d.fixed_names == ["(Intercept)", "x"]
    assert any("x2" in w and "rank deficient" in w for w in d.warnings)


def test_aliased_columns_keeps_first():
    X = np.column_stack([np.ones(5), np.arange(5.0), np.arange(5.0) + 1])
    assert aliased_columns(X) == [2]


def test_missing_values_are_dropped_and_counted():
    df = toy()
    df.loc[[1, 5], "x"] = np.nan
    d = design("y ~ x + (1|g)", df)
    assert (d.n, d.n_dropped) == (22, 2)
    assert d.warnings[0].startswith("2 rows with missing values dropped")
    assert list(d.rows[:3]) == [0, 2, 3]


def test_random_blocks_sorted_by_levels_and_named():
    d = design("y ~ 1 + (1|h) + (x|g) + (1|g:h)")
    assert [(b.group, b.nlevels) for b in d.blocks] == [("g:h", 18), ("g", 6), ("h", 3)]
    assert d.blocks[1].terms == ("(Intercept)", "x")


def test_nested_grouping_labels():
    d = design("y ~ 1 + (1|g/h)")
    assert [b.group for b in d.blocks] == ["h:g", "g"]
    assert d.blocks[0].levels[:3] == ("u:a", "u:b", "u:c")


def test_double_bar_is_one_block_per_part_named_as_varcorr():
    d = design("y ~ x + (x||g)")
    assert [(b.group, b.name, b.terms) for b in d.blocks] == [("g", "g", ("(Intercept)",)), ("g", "g.1", ("x",))]


def test_numeric_grouping_column_labels():
    df = toy().assign(g=np.repeat([308, 309, 310, 311, 312, 313], 4))
    d = design("y ~ x + (1|g)", df)
    assert d.blocks[0].levels == ("308", "309", "310", "311", "312", "313")


@pytest.mark.parametrize("values, expected", [
    ([3, 1, 2], ("1", "2", "3")),
    ([1.5, 0.25], ("0.25", "1.5")),
    (["b", "a"], ("a", "b")),
    # R's factor() in an English UTF-8 locale: case-insensitive, lower case first on a tie
    (["b", "B", "a", "A", "apple", "Banana", "10", "9"], ("10", "9", "a", "A", "apple", "b", "B", "Banana")),
    ([True, False], ("FALSE", "TRUE")),
])
def test_sorted_levels(values, expected):
    assert sorted_levels(values) == expected


def test_value_labels_of_whole_floats():
    assert list(value_labels(pd.Series([1.0, 2.5]))) == ["1", "2.5"]


def test_unknown_column_suggests_close_name():
    with pytest.raises(ModelSpecError) as info:
        design("y ~ xx + (1|g)")
    assert "column 'xx' is not in the data" in info.value.message
    assert info.value.hint == "did you mean 'x'?"
    assert info.value.span == (4, 6)


@pytest.mark.parametrize("scale", [1e-200, 1e-20, 1.0, 1e20, 1e300])
def test_aliasing_is_relative_to_column_scale(scale):
    """A column of scale * x is aliased exactly when x is in the span of the others, at any scale."""
    x = np.arange(10.0) % 4
    z = np.sin(np.arange(10.0))
    one = np.ones(10)
    assert aliased_columns(np.column_stack([one, scale * x])) == []
    assert aliased_columns(np.column_stack([one, x, scale * x])) == [2]
    assert aliased_columns(np.column_stack([one, scale * x, z, scale * (x + 2 * z) + 3 * scale])) == [3]
    assert aliased_columns(np.column_stack([one, np.zeros(10)])) == [1]
