"""lmm table: each column holds what lme4 reports for that model (tests/reference/expected/, lme4 1.1-31), and
the four formats show the same grid."""

from __future__ import annotations

import json

import pytest

from conftest import REF
from lmmcli.analysis.model_table import model_table
from lmmcli.errors import UsageError
from lmmcli.io.read import read_table
from lmmcli.render import model_table as render

GPA = read_table(str(REF / "data" / "gpa.csv"))
FORMULAS = ["gpa ~ occasion + (1|student)", "gpa ~ occasion + (1 + occasion|student)", "gpa ~ occasion"]


@pytest.fixture(scope="module")
def table():
    return model_table(FORMULAS, GPA)


def test_columns_hold_lme4s_numbers(table):
    for model, case in zip(table.models[:2], ["gpa_intercept", "gpa_slope"]):
        ref = json.loads((REF / "expected" / f"{case}.json").read_text())
        assert [c.term for c in model.fixed] == ref["fixef"]["terms"]
        for c, est, se in zip(model.fixed, ref["fixef"]["estimate"], ref["fixef"]["se"]):
            assert c.estimate == pytest.approx(est, rel=1e-5) and c.std_error == pytest.approx(se, rel=1e-4)
        sds = [s.sd for s in model.sds if s.group == "student"]
        assert sds == pytest.approx(ref["varcorr"][0]["sd"], rel=1e-4)
        assert model.aic == pytest.approx(ref["AIC"], rel=1e-7) and model.bic == pytest.approx(ref["BIC"], rel=1e-7)
        assert model.nobs == ref["nobs"] and model.ngroups == ref["ngrps"]
    assert table.models[2].model == "lm" and table.models[2].r2 is not None


def test_wald_intervals_match_lme4():
    t = model_table(FORMULAS[1:2], GPA, ci_level=0.95)
    ref = json.loads((REF / "expected" / "gpa_slope.json").read_text())["confint_wald"]
    for c, lo, hi in zip(t.models[0].fixed, ref["lower"][-2:], ref["upper"][-2:]):
        assert c.conf_low == pytest.approx(lo, rel=1e-4) and c.conf_high == pytest.approx(hi, rel=1e-4)


def test_grid_rows(table):
    header, sections = render.grid(table)
    assert header == ["", "(1)", "(2)", "(3)"]
    labels = [label for rows in sections for label, _ in rows]
    for lb in ("(Intercept)", "occasion", "SD (Intercept student)", "SD (occasion student)",
               "Cor (Intercept~occasion student)", "SD (Observations)", "Num.Obs.", "N (student)", "R2",
               "R2 Marg.", "R2 Cond.", "ICC", "AIC", "BIC"):
        assert lb in labels
    assert labels.index("SD (Observations)") > labels.index("Cor (Intercept~occasion student)")
    fixed = dict(sections[0][:2])
    assert fixed["(Intercept)"][0] == f"{table.models[0].fixed[0].estimate:.3f}"
    assert any("not comparable" in n for n in table.notes)


def test_formats_show_the_same_grid(table):
    md = render.as_markdown(table).splitlines()
    assert md[0] == "|  | (1) | (2) | (3) |" and md[1] == "|:---|---:|---:|---:|"
    html = render.as_html(table)
    assert html.startswith("<table>") and "<td>SD (Intercept student)</td>" in html
    csv = render.as_csv(table).splitlines()
    assert csv[0] == ",(1),(2),(3)" and csv[1].startswith("(Intercept),")
    assert "Num.Obs." in render.as_table(table)


def test_kenward_roger_with_ml_is_refused():
    with pytest.raises(UsageError):
        model_table(FORMULAS[:1], GPA, ml=True, df_method="kenward-roger")


def test_weights_and_contrasts_reach_every_model():
    from tests.inference.analysis_reference import data, expected

    df = data("twoway.csv")
    t = model_table(["y ~ A*B + x + (1 | g)"], df, factors=("B",), weights="w", contrasts={"A": "sum", "B": "sum"})
    ref = expected("twoway_sum")["fixef"]     # sum contrasts name the columns A1, A2, B1..
    assert [c.term for c in t.models[0].fixed][:3] == list(ref)[:3]
    w = expected("twoway_weights")["fixef"]
    tw = model_table(["y ~ A*B + x + (1 | g)"], df, factors=("B",), weights="w")
    assert [c.estimate for c in tw.models[0].fixed] == pytest.approx(list(w.values()), rel=1e-5)
