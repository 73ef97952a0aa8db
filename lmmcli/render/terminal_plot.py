"""A caterpillar plot drawn with text (rich), for a quick look at random effects over SSH.

Each level is one line: its name, a bar where '─' spans the interval, '●' marks the estimate and
'┊' marks zero, then the numbers. Intervals that exclude zero are bold. Formats only; the
intervals come from plotdata.caterpillar.
"""

from __future__ import annotations

from rich.text import Text

from lmmcli.render.tables import fmt, to_text

MIN_BAR = 20


def _scale(panel, width: int):
    """Map a value to a column 0..width-1 over the panel's range (zero always included)."""
    lo = min(float(panel.low.min()), 0.0)
    hi = max(float(panel.high.max()), 0.0)
    span = hi - lo if hi > lo else 1.0
    return lambda v: int(round((float(v) - lo) / span * (width - 1)))


def _bar(col, low, est, high, width: int) -> str:
    """The interval, estimate and zero line as a string of `width` characters."""
    cells = [" "] * width
    for c in range(col(low), col(high) + 1):
        cells[c] = "─"
    zero = col(0.0)
    cells[zero] = "┼" if cells[zero] == "─" else "┊"
    cells[col(est)] = "●"
    return "".join(cells)


def panel_text(panel, width: int = 100) -> Text:
    """One random term's caterpillar: a title, then one line per level (largest estimate first)."""
    name_w = max(len(str(lv)) for lv in panel.levels)
    nums = [f"{fmt(e)} [{fmt(lo)}, {fmt(hi)}]" for e, lo, hi in zip(panel.estimate, panel.low, panel.high)]
    num_w = max(len(s) for s in nums)
    bar_w = max(width - name_w - num_w - 4, MIN_BAR)
    col = _scale(panel, bar_w)
    pct = f"{100 * panel.level:g}%"
    text = Text(f"{panel.group}: {panel.term}  (estimate and {pct} interval; bold excludes 0)", style="bold")
    for i in reversed(range(len(panel))):
        style = "bold" if panel.excludes_zero[i] else ""
        bar = _bar(col, panel.low[i], panel.estimate[i], panel.high[i], bar_w)
        text.append(f"\n{str(panel.levels[i]):>{name_w}}  {bar}  {nums[i]}", style=style)
    return text


def caterpillar_text(panels, width: int = 100, color: bool = False) -> str:
    """All panels, one after another, as a string."""
    parts = []
    for panel in panels:
        parts += [panel_text(panel, width), Text("")]
    return to_text(parts[:-1], width=width, color=color)
