"""Tables fit the terminal without losing a character: at 60, 80 and 200 columns every number and name of the
wide rendering is printed whole, no line is wider than the terminal and nothing ends in an ellipsis."""

from __future__ import annotations

import pytest
from rich.table import Table

from conftest import REF
from lmmcli.render import tables
from lmmcli.render.layout import fit_table, natural_width

WIDTHS = (60, 80, 200)
SLEEP = REF / "data" / "sleepstudy.csv"


def tokens(text: str) -> set[str]:
    """The words of a rendering, without the rules under the headers."""
    return {w for w in text.split() if set(w) - {"─"}}


@pytest.fixture(scope="module")
def renderings():
    """name -> function(width) -> text, for each kind of table lmm prints."""
    import pandas as pd

    from lmmcli.compare import compare
    from lmmcli.fit import analyze, fit
    from lmmcli.predict.predict import state_from_fit
    from lmmcli.predict.ranef import effects

    df = pd.read_csv(SLEEP)
    mixed = analyze(fit("Reaction ~ Days + (Days|Subject)", df), ci="wald").report
    lm = analyze(fit("Reaction ~ Days * I(Days^2)", df)).report
    cmp = compare(["Reaction ~ Days + (1|Subject)", "Reaction ~ Days + (Days|Subject)"], df)
    eff = effects(state_from_fit(fit("Reaction ~ Days + (Days|Subject)", df)), "coef")
    return {
        "fit": lambda w: tables.fit_table(mixed, width=w),
        "lm": lambda w: tables.lm_table(lm, width=w),
        "compare": lambda w: tables.compare_table(cmp, width=w),
        "coef": lambda w: tables.effects_table(eff.rows, eff.title, eff.level, width=w),
    }


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["fit", "lm", "compare", "coef"])
def test_nothing_is_cut_at_any_width(renderings, name, width):
    text = renderings[name](width)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    assert tokens(text) == tokens(renderings[name](200))


def test_the_fixed_effects_keep_every_digit_at_60_columns(renderings):
    text = renderings["fit"](60)
    for piece in ("(Intercept)", "251.41", "6.825", "36.838", "< 2e-16", "3.26e-06", "Days", "10.47"):
        assert piece in text


def test_a_wide_table_wraps_with_its_labels_repeated():
    t = Table(title="T")
    t.add_column("name", justify="left")
    for i in range(6):
        t.add_column(f"value{i}", justify="right")
    t.add_row("a long label", *[f"{1000 + i}.123456" for i in range(6)])
    parts = [p for p in fit_table(t, 40) if isinstance(p, Table)]
    assert len(parts) > 1
    assert all(p.columns[0].header == "name" and natural_width(p) <= 40 for p in parts)
    assert sum(len(p.columns) - 1 for p in parts) == 6


def test_a_table_that_fits_is_left_alone():
    t = Table()
    t.add_column("a")
    t.add_row("1")
    assert fit_table(t, 80) == [t]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", ["fit", "lm", "compare", "coef"])
def test_plain_layout_is_riches(renderings, name, width, monkeypatch):
    """Uncoloured Text and tables are laid out by render.text itself: character for character rich's output."""
    from lmmcli.render import text

    fast = renderings[name](width)
    monkeypatch.setattr(text, "_plain_render", lambda part, width: None)
    assert fast == renderings[name](width)
