"""A caterpillar plot drawn with text (rich), for a quick look at random effects over SSH.

Each level is one line: its name, '*' when its interval excludes zero (bold too, but bold is lost in a
pipe), a bar where '─' spans the interval, '●' marks the estimate and '┊' marks zero, then the numbers.
Under each panel an axis marks the range's ends and zero. Formats only; the intervals come from
plotdata.caterpillar.
"""

from __future__ import annotations

from rich.text import Text

from lmmcli.render.numbers import fmt
from lmmcli.render.text import to_text

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


def _layout(panel, width: int):
    """(name width, number texts, bar width, value -> column) of a panel at this terminal width."""
    name_w = max(len(str(lv)) for lv in panel.levels)
    nums = [f"{fmt(e)} [{fmt(lo)}, {fmt(hi)}]" for e, lo, hi in zip(panel.estimate, panel.low, panel.high)]
    num_w = max(len(s) for s in nums)
    bar_w = max(width - name_w - num_w - 6, MIN_BAR)
    return name_w, nums, bar_w, _scale(panel, bar_w)


def panel_text(panel, width: int = 100) -> Text:
    """One random term's caterpillar: a title, then one line per level (largest estimate first)."""
    name_w, nums, bar_w, col = _layout(panel, width)
    pct = f"{100 * panel.level:g}%"
    text = Text(f"{panel.group}: {panel.term}  (estimate and {pct} interval; * and bold: excludes 0)", style="bold")
    for i in reversed(range(len(panel))):
        excludes = bool(panel.excludes_zero[i])
        bar = _bar(col, panel.low[i], panel.estimate[i], panel.high[i], bar_w)
        text.append(f"\n{str(panel.levels[i]):>{name_w}} {'*' if excludes else ' '}  {bar}  {nums[i]}",
                    style="bold" if excludes else "")
    return text


def axis_text(panel, width: int = 100) -> Text:
    """The axis under a panel's bars: ticks at both ends of the range and at zero, with their values."""
    name_w, _, bar_w, col = _layout(panel, width)
    lo, hi = min(float(panel.low.min()), 0.0), max(float(panel.high.max()), 0.0)
    rule, labels = ["─"] * bar_w, [" "] * (bar_w + 12)
    for value in (lo, 0.0, hi):
        c = col(value)
        rule[c] = "┴"
        label = fmt(value)
        start = min(max(c - len(label) // 2, 0), bar_w + 12 - len(label))
        if all(ch == " " for ch in labels[max(start - 1, 0):start + len(label) + 1]):
            labels[start:start + len(label)] = label
    pad = " " * (name_w + 4)
    return Text(f"{pad}{''.join(rule)}\n{pad}{''.join(labels).rstrip()}", style="dim")


def caterpillar_text(panels, width: int = 100, color: bool = False) -> str:
    """All panels, one after another, as a string."""
    parts = []
    for panel in panels:
        parts += [panel_text(panel, width), axis_text(panel, width), Text("")]
    return to_text(parts[:-1], width=width, color=color)
