"""render_plot: the text caterpillar's bar (interval '─', estimate '●', zero '┊'/'┼') and its layout."""

from __future__ import annotations

import numpy as np
import pytest

from lmmcli.predict.plotdata import CaterpillarPanel
from lmmcli.render.terminal_plot import caterpillar_text, panel_text


def panel(est, sd=1.0):
    est = np.array(est, dtype=float)
    return CaterpillarPanel("g", "(Intercept)", [f"L{i}" for i in range(len(est))], est, est - 2 * sd,
                            est + 2 * sd, 0.95)


@pytest.mark.parametrize("est, bold", [
    ([-5.0, 0.0, 5.0], [True, False, True]),
    ([1.0, 3.0], [False, True]),
])
def test_one_line_per_level_largest_first_bold_excludes_zero(est, bold):
    text = panel_text(panel(est), width=80)
    lines = text.plain.splitlines()
    assert lines[0].startswith("g: (Intercept)") and len(lines) == 1 + len(est)
    assert [ln.split()[0] for ln in lines[1:]] == [f"L{i}" for i in reversed(range(len(est)))]
    bold_lines = {text.plain[s.start:s.end].strip().split()[0] for s in text.spans if s.style == "bold"}
    assert bold_lines - {"g:"} == {f"L{i}" for i, b in enumerate(bold) if b}


def test_bar_marks_zero_estimate_and_interval():
    lines = panel_text(panel([-5.0, 5.0]), width=60).plain.splitlines()
    low, high = lines[2], lines[1]                       # L0 (estimate -5) is printed last
    assert low.index("●") < low.index("┊") < high.index("●")
    assert "─" in low and "[-7.000, -3.000]" in low


def test_panels_are_separated_by_one_blank_line():
    out = caterpillar_text([panel([1.0, 2.0]), panel([3.0])], width=70)
    assert out.count("g: (Intercept)") == 2 and "\n\n\n" not in out and "\n\n" in out
