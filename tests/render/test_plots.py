"""The plots of issue 16: chosen highlighted groups with distinct colours and an honest legend, densities of the
random effects, standardized residuals with a smoother, caterpillar panels aligned by level, sizes, PDF,
--width/--height, and the terminal caterpillar's axis and pipe-proof marker."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import REF
from lmmcli.cli import app
from lmmcli.fit import fit
from lmmcli.predict import plotdata
from lmmcli.render import figures

runner = CliRunner()
SLEEP = str(REF / "data" / "sleepstudy.csv")
FORMULA = "Reaction ~ Days + (Days|Subject)"


@pytest.fixture(scope="module")
def sleep_fit():
    df = pd.read_csv(SLEEP)
    return fit(FORMULA, df), df


def legend_texts(fig):
    (ax,) = fig.axes
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_groups_choose_the_highlighted_groups_and_the_legend_shows_only_them(sleep_fit):
    fm, df = sleep_fit
    tr = plotdata.trajectories(fm, df, groups=["310", "308"])
    assert [tr.levels[g] for g in tr.highlight] == ["310", "308"]
    assert legend_texts(figures.trajectories_figure(tr)) == ["310", "308", "population (fixed effects)"]


def test_every_highlighted_group_has_its_own_colour(sleep_fit):
    fm, df = sleep_fit
    tr = plotdata.trajectories(fm, df, n_highlight=14)
    (ax,) = figures.trajectories_figure(tr).axes
    handles = ax.get_legend().legend_handles[:-1]
    colours = {tuple(np.round(h.get_color() if isinstance(h.get_color(), tuple) else
                              __import__("matplotlib").colors.to_rgb(h.get_color()), 4)) for h in handles}
    assert len(handles) == 14 and len(colours) == 14
    assert len({tuple(c) for c in figures.distinct_colours(40)}) == 40


def test_unknown_group_names_the_levels():
    res = runner.invoke(app, ["plot", "fitted", SLEEP, FORMULA, "--groups", "999", "-o", "x.png"])
    assert res.exit_code == 1 and "'999' is not a level of Subject" in res.stderr and "hint: levels" in res.stderr
    res = runner.invoke(app, ["plot", "ranef", SLEEP, FORMULA, "--groups", "308", "-o", "x.png"])
    assert res.exit_code == 2 and "--groups" in res.stderr


def test_bandwidth_and_density_match_r():
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    assert plotdata.bw_nrd0(x) == pytest.approx(0.97358462285063574, rel=1e-12)   # R: bw.nrd0(x)
    grid = np.array([0.0, 2.0, 4.0, 6.0, 8.0])
    # R: density(x, bw = "nrd0", n = 5, from = 0, to = 8)$y (R bins the data; 1% covers its approximation)
    r = [0.0591254155597832898, 0.1887408353295107477, 0.1410445390489288853, 0.0107383560356034153,
         0.0099991669001647052]
    np.testing.assert_allclose(plotdata.kernel_density(x, grid, plotdata.bw_nrd0(x)), r, rtol=1e-2)


def test_densities_of_the_random_effects(sleep_fit):
    fm, _ = sleep_fit
    panels = plotdata.densities(fm.result())
    assert [(p.group, p.term) for p in panels] == [("Subject", "(Intercept)"), ("Subject", "Days")]
    for p in panels:
        step = p.grid[1] - p.grid[0]
        assert p.density.sum() * step == pytest.approx(1.0, abs=0.02)
        assert p.normal.sum() * step == pytest.approx(1.0, abs=0.02)
    assert panels[1].sd == pytest.approx(fm.result().variance_components[1].sd)
    fig = figures.density_figure(panels)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["Subject: (Intercept)", "Subject: Days"]


def test_lowess_reproduces_a_line_and_resid_shows_standardized_residuals(sleep_fit):
    x = np.linspace(0, 10, 50)
    gx, gy = plotdata.lowess(x, 2 * x + 1)
    np.testing.assert_allclose(gy, 2 * gx + 1, atol=1e-9)
    fm, _ = sleep_fit
    dg = plotdata.diagnostics(fm)
    np.testing.assert_allclose(dg.std_residuals, dg.residuals / fm.sol.sigma)
    ax = figures.diagnostics_figure(dg).axes[0]
    assert ax.get_ylabel().startswith("standardized residual")
    assert [ln.get_gid() for ln in ax.get_lines()].count("smoother") == 1


def test_caterpillar_panels_are_aligned_by_level(sleep_fit):
    fm, _ = sleep_fit
    panels = plotdata.caterpillar(fm.result(), aligned=True)
    assert panels[0].levels == panels[1].levels
    assert np.all(np.diff(panels[0].estimate) >= 0)
    fig = figures.caterpillar_figure(panels)
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == [""] * 18 or not fig.axes[1].get_yticklabels()
    by_level = {r.level: r.estimate for r in fm.result().random_effects if r.term == "Days"}
    np.testing.assert_allclose(panels[1].estimate, [by_level[lv] for lv in panels[1].levels])


def test_a_caterpillar_of_300_levels_keeps_a_sensible_size():
    rng = np.random.default_rng(3)
    est = np.sort(rng.normal(size=300))
    panel = plotdata.CaterpillarPanel("g", "(Intercept)", [str(i) for i in range(300)], est, est - 1, est + 1, 0.95)
    w, h = figures.caterpillar_figure([panel]).get_size_inches()
    assert h <= 12 and w <= 20


def png_size(path):
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def test_pdf_and_width_height(tmp_path):
    pdf = tmp_path / "d.pdf"
    assert runner.invoke(app, ["plot", "density", SLEEP, FORMULA, "-o", str(pdf)]).exit_code == 0
    assert pdf.read_bytes()[:5] == b"%PDF-"
    png = tmp_path / "r.png"
    res = runner.invoke(app, ["plot", "ranef", SLEEP, FORMULA, "-o", str(png), "--width", "5", "--height", "4"])
    assert res.exit_code == 0, res.stderr
    assert png_size(png) == (550, 440)                    # inches x 110 dpi
    res = runner.invoke(app, ["plot", "ranef", SLEEP, FORMULA, "-o", str(png), "--width", "0"])
    assert res.exit_code == 2


def test_terminal_caterpillar_has_an_axis_and_a_marker_that_survives_a_pipe(sleep_fit):
    fm, _ = sleep_fit
    res = runner.invoke(app, ["plot", "ranef", SLEEP, FORMULA, "--terminal"])     # stdout is not a terminal
    assert res.exit_code == 0 and "\x1b[" not in res.stdout
    panels = plotdata.caterpillar(fm.result())
    lines = res.stdout.splitlines()
    marked = {ln.split()[0] for ln in lines if "●" in ln and ln.split()[1] == "*"}
    expected = {lv for p in panels[:1] for lv, x in zip(p.levels, p.excludes_zero) if x}
    first_panel = {ln.split()[0] for ln in lines[1:19] if ln.split()[1] == "*"}
    assert first_panel == expected and marked
    axes = [i for i, ln in enumerate(lines) if "┴" in ln]
    assert len(axes) == 2
    ticks = lines[axes[0] + 1].split()
    assert "0" in ticks and float(ticks[0]) == pytest.approx(panels[0].low.min(), rel=1e-3)
