"""plot: figures drawn from plotdata, saved as valid PNG/SVG; `lmm plot` on the command line.

The caterpillar check counts drawn artists: each panel's LineCollection (gid 'intervals') must hold
one segment per level, as many levels as lme4's ranef() has (tests/reference/expected/*.json).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import CASES, REF
from lmmcli.render import figures as plot
from lmmcli.predict import plotdata
from lmmcli.cli import app
from lmmcli.fit import fit

runner = CliRunner()
BY_ID = {c["id"]: c for c in CASES}
SLEEP = str(REF / "data" / "sleepstudy.csv")
FORMULA = "Reaction ~ Days + (Days|Subject)"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fit_case(case_id):
    case = BY_ID[case_id]
    df = pd.read_csv(case["path"])
    return fit(case["formula"], df, reml=case["reml"], factors=case["factors"]), df, case["expected"]


def interval_collections(fig):
    """The LineCollection of intervals in each axes (one per panel)."""
    return [[c for c in ax.collections if c.get_gid() == "intervals"] for ax in fig.axes]


def assert_image(path, fmt):
    data = path.read_bytes()
    if fmt == "png":
        assert data[:8] == PNG_MAGIC
    else:
        assert ET.fromstring(data).tag == "{http://www.w3.org/2000/svg}svg"


@pytest.mark.parametrize("case_id", ["sleepstudy_slope", "penicillin_crossed", "pastes_nested",
                                     "simulated_intercepts", "gpa_slope"])
def test_caterpillar_draws_one_interval_per_level(case_id):
    fm, _, exp = fit_case(case_id)
    fig = plot.caterpillar_figure(plotdata.caterpillar(fm.result()))
    r = exp["ranef"]
    expected = Counter(zip(r["grpvar"], r["term"]))          # levels per (group, term) in lme4's ranef()
    drawn = {}
    for ax, cols in zip(fig.axes, interval_collections(fig)):
        assert len(cols) == 1
        group, term = ax.get_title().split(": ", 1)
        drawn[(group, term)] = len(cols[0].get_segments())
    assert drawn == dict(expected)


def test_caterpillar_bold_intervals_are_those_excluding_zero():
    fm, _, _ = fit_case("sleepstudy_slope")
    panels = plotdata.caterpillar(fm.result())
    fig = plot.caterpillar_figure(panels)
    for panel, (col,) in zip(panels, interval_collections(fig)):
        widths = np.asarray(col.get_linewidths())
        np.testing.assert_array_equal(widths > 1.5, panel.excludes_zero)
        assert 0 < panel.excludes_zero.sum() < len(panel)   # both kinds are drawn in this data
        segs = col.get_segments()
        np.testing.assert_allclose([s[0][0] for s in segs], panel.low)
        np.testing.assert_allclose([s[1][0] for s in segs], panel.high)


def test_figures_say_what_is_drawn():
    fm, df, _ = fit_case("sleepstudy_slope")
    cat = plot.caterpillar_figure(plotdata.caterpillar(fm.result()))
    assert "95% intervals" in cat.get_suptitle()
    assert [ax.get_title() for ax in cat.axes] == ["Subject: (Intercept)", "Subject: Days"]
    tr = plot.trajectories_figure(plotdata.trajectories(fm, df, n_highlight=4))
    (ax,) = tr.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Days", "Reaction")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(legend) == 5 and legend[-1] == "population (fixed effects)"
    dg = plot.diagnostics_figure(plotdata.diagnostics(fm))
    titles = [ax.get_title() for ax in dg.axes if ax.get_visible()]
    assert titles == ["Residuals vs fitted", "Normal QQ: Residuals", "Normal QQ: Subject: (Intercept)",
                      "Normal QQ: Subject: Days"]


@pytest.mark.parametrize("kind", ["ranef", "fitted", "resid"])
@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_cli_writes_valid_images(tmp_path, kind, fmt):
    out = tmp_path / f"fig.{fmt}"
    res = runner.invoke(app, ["plot", kind, SLEEP, FORMULA, "-o", str(out)])
    assert res.exit_code == 0, res.stderr
    assert res.stdout == "" and res.stderr == ""
    assert_image(out, fmt)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]     # no temporary file left behind


# png's writing is covered by the test above; its determinism (the slower render) runs with the slow tests
@pytest.mark.parametrize("fmt", [pytest.param("png", marks=pytest.mark.slow), "svg"])
def test_same_seed_same_bytes(tmp_path, fmt):
    paths = [tmp_path / f"{name}.{fmt}" for name in ("a", "b", "c")]
    for path, seed in zip(paths, ("7", "7", "8")):
        assert runner.invoke(app, ["plot", "fitted", SLEEP, FORMULA, "--seed", seed, "-o", str(path)]).exit_code == 0
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b and a != c


@pytest.mark.parametrize("args, code, message", [
    (["plot", "ranef", SLEEP, FORMULA], 2, "-o FILE.png"),
    (["plot", "ranef", SLEEP, FORMULA, "-o", "out.jpg"], 2, "image format"),
    (["plot", "fitted", SLEEP, FORMULA, "--terminal"], 2, "--terminal"),
    (["plot", "ranef", SLEEP, FORMULA, "--terminal", "-o", "x.png"], 2, "--terminal"),
    (["plot", "ranef", SLEEP, FORMULA, "-o", "no/such/dir/x.png"], 2, "does not exist"),
    (["plot", "ranef", SLEEP, "Reaction ~ Days", "-o", "x.png"], 1, "no random terms"),
    (["plot", "fitted", SLEEP, FORMULA, "--x", "Subject", "-o", "x.png"], 2, "numeric predictor"),
    (["plot", "ranef", SLEEP, FORMULA, "--level", "2", "-o", "x.png"], 2, "--level"),
    (["plot", "pie", SLEEP, FORMULA, "-o", "x.png"], 2, "pie"),
])
def test_cli_errors_are_one_clean_message(tmp_path, monkeypatch, args, code, message):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, args)
    assert res.exit_code == code
    assert message in res.stderr and "Traceback" not in res.stderr
    assert not any(tmp_path.iterdir())


def test_missing_matplotlib_is_one_line(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # makes `import matplotlib` raise ImportError
    res = runner.invoke(app, ["plot", "ranef", SLEEP, FORMULA, "-o", str(tmp_path / "x.png")])
    assert res.exit_code == 1
    assert res.stderr.count("\n") == 1 and "matplotlib" in res.stderr and res.stderr.startswith("error:")


def test_terminal_caterpillar_has_one_line_per_level():
    res = runner.invoke(app, ["plot", "ranef", SLEEP, FORMULA, "--terminal"])
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert sum(line.startswith("Subject: ") for line in lines) == 2
    assert sum("●" in line for line in lines) == 36                # 18 subjects x 2 terms
    assert lines[1].split()[0] == "337"                             # largest intercept first
