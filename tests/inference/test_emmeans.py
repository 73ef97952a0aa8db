"""lmm emmeans against emmeans 1.8.4 on lmerTest fits (tests/reference/analysis/).

Means, standard errors, estimates and t ratios within 1e-4 relative (of the value, or of its standard
error when the value is nearer 0 than its SE: a contrast near 0 inherits the fit's ~1e-6 absolute
differences from lme4's optimum); df within 1e-3 relative; p-values within 1e-4 absolute."""

from __future__ import annotations

import numpy as np
import pytest

from lmmcli.errors import ModelSpecError, UsageError
from lmmcli.inference.emmeans import RefGrid, adjust_p, cell_labels, emmeans, emmeans_of, is_numeric_label
from tests.inference.analysis_reference import CASES, basis, expected, fitted, params, rel

RUNS = [(case, i) for case in CASES for i in range(len(expected(case)["emmeans"]))]


def _as_list(v):
    return [] if v is None else [v] if isinstance(v, str) else list(v)


def close(got, want, scale) -> bool:
    return abs(got - want) <= 1e-4 * max(abs(want), scale)


def run(case, i):
    e = expected(case)["emmeans"][i]
    return emmeans_of(basis(case), _as_list(e["specs"]), _as_list(e["by"]), True, e["adjust"], e["df"],
                      e["level"]), e


@pytest.mark.parametrize("case,i", params(RUNS))
def test_means_match_emmeans(case, i):
    got, e = run(case, i)
    assert len(got.emmeans) == len(e["emmeans"])
    for g, w in zip(got.emmeans, e["emmeans"]):
        assert g.levels == w["levels"]
        if w["emmean"] is None:          # a non-estimable mean (an empty cell), emmeans' nonEst
            assert (g.emmean, g.std_error, g.df, g.conf_low) == (None, None, None, None)
            continue
        assert close(g.emmean, w["emmean"], w["std_error"]) and rel(g.std_error, w["std_error"]) < 1e-4
        assert rel(g.df, w["df"]) < 1e-3
        for k in ("conf_low", "conf_high"):
            assert close(getattr(g, k), w[k], w["std_error"])


@pytest.mark.parametrize("case,i", params(RUNS))
def test_pairwise_contrasts_match_emmeans(case, i):
    got, e = run(case, i)
    assert [c.contrast for c in got.contrasts] == [w["contrast"] for w in e["contrasts"]]
    for g, w in zip(got.contrasts, e["contrasts"]):
        assert (g.by or None) == w.get("by")
        if w["estimate"] is None:
            assert (g.estimate, g.std_error, g.p_value) == (None, None, None)
            continue
        assert close(g.estimate, w["estimate"], w["std_error"]) and rel(g.std_error, w["std_error"]) < 1e-4
        assert close(g.t_ratio, w["t_ratio"], 1.0)
        assert rel(g.df, w["df"]) < 1e-3
        assert abs(g.p_value - w["p_value"]) < 1e-4


def test_single_contrast_is_reported_unadjusted():
    fm, df = fitted("gpa_main")
    got = emmeans(fm, df, ["sex"], pairwise_=True, adjust="tukey")
    assert got.adjust == "none" and len(got.contrasts) == 1
    doc = got.to_dict()
    assert "by" not in doc["contrasts"][0] and doc["adjust"] == "none"


def test_document_keys_without_pairwise():
    fm, df = fitted("gpa_main")
    doc = emmeans(fm, df, ["job"]).to_dict()
    assert "contrasts" not in doc and doc["df_method"] == "kenward-roger"
    assert set(doc["emmeans"][0]) == {"levels", "emmean", "std_error", "df", "conf_low", "conf_high"}


@pytest.mark.parametrize("levels,want", {
    "numbers": ((("B", ("1", "2")),), ["B1", "B2"]),
    "dash": ((("A", ("ctrl", "low-dose")),), ["ctrl", "(low-dose)"]),
    "two": ((("A", ("a", "b")), ("B", ("1", "2"))), ["a B1", "b B1", "a B2", "b B2"]),
    "plus": ((("A", ("x+y", "z")),), ["(x+y)", "z"]),
}.values())
def test_labels_follow_emmeans(levels, want):
    factors = dict(levels)
    names = list(factors)
    import itertools

    cells = [dict(zip(names, reversed(c))) for c in itertools.product(*[factors[n] for n in reversed(names)])]
    grid = RefGrid(factors, {}, cells, np.zeros((len(cells), 1)))
    assert cell_labels(cells, names, grid) == want


@pytest.mark.parametrize("text,want", {"int": ("12", True), "float": ("1.5e3", True), "word": ("1 hour", False),
                                       "nan": ("NaN", False), "underscore": ("1_0", False)}.values())
def test_numeric_labels(text, want):
    assert is_numeric_label(text) is want


def test_holm_and_bonferroni():
    p = np.array([0.01, 0.04, 0.03])
    assert np.allclose(adjust_p(p, None, None, "holm", 3), [0.03, 0.06, 0.06])
    assert np.allclose(adjust_p(p, None, None, "bonferroni", 3), [0.03, 0.12, 0.09])


def test_refusals():
    fm, df = fitted("gpa_main")
    with pytest.raises(ModelSpecError, match="not a factor"):
        emmeans(fm, df, ["highgpa"])
    with pytest.raises(UsageError):
        emmeans(fm, df, ["job"], adjust="scheffe")
    with pytest.raises(UsageError):
        emmeans(fm, df, ["job"], ["job"])
    fm_ml, df_ml = fitted("twoway_ml")
    with pytest.raises(UsageError, match="REML"):
        emmeans(fm_ml, df_ml, ["A"], df_method="kenward-roger")
    assert emmeans(fm_ml, df_ml, ["A"]).df_method == "satterthwaite"
