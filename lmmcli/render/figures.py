"""Figures with matplotlib (Agg, no display): caterpillar, trajectories, diagnostics; saved as PNG or SVG.

A renderer only: the numbers come from plotdata.py. matplotlib is imported inside the functions,
so nothing else in lmm pays for it and a missing matplotlib is one clear error.
"""

from __future__ import annotations

import math
from pathlib import Path

from lmmcli.errors import LmmError, UsageError

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
MAX_LABELLED_LEVELS = 40       # above this the level names would overlap; the axis says "sorted levels"
PLAIN, BOLD, ZERO = "#7f8c9b", "#1f4e9c", "#b03030"
POPULATION = "black"


def _matplotlib():
    """The Figure class, with the Agg backend; a missing matplotlib is a one-line error."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        raise LmmError("`lmm plot` needs matplotlib, which is not installed (pip install 'matplotlib>=3.6')")
    return Figure


def image_format(path: str) -> str:
    """'png' or 'svg' from the file's extension."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise UsageError(f"cannot tell the image format of '{path}' from its extension",
                         hint="use a file name ending in .png, .svg or .pdf")
    return FORMATS[ext]


def save(fig, path: str, seed: int = 0, inputs=(), size: tuple | None = None) -> None:
    """Write the figure atomically (size: (width, height) in inches, either None to keep the figure's); SVG
    ids and file metadata are fixed so the same seed gives the same bytes."""
    import matplotlib

    from lmmcli.io.write import atomic_write

    fmt = image_format(path)
    if size is not None:
        w, h = fig.get_size_inches()
        fig.set_size_inches(size[0] or w, size[1] or h)
    meta = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}}.get(fmt, {"Software": None})
    with matplotlib.rc_context({"svg.hashsalt": f"lmm-{seed}"}):
        atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=110, metadata=meta), inputs)


def svg_text(fig, salt: str = "lmm") -> str:
    """The figure as an <svg> element for inlining in HTML (no XML header; ids salted so that several figures
    on one page never share an id; no date, so the same figure gives the same text)."""
    import io

    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    start, end = text.find("<metadata>"), text.find("</metadata>")
    return text[:start] + text[end + len("</metadata>"):] if start >= 0 and end > start else text


# -- caterpillar -------------------------------------------------------------------------------
def caterpillar_figure(panels, title: str = ""):
    """One panel per random term: each level's interval (one segment per level) and its estimate."""
    Figure = _matplotlib()
    nmax = max(len(p) for p in panels)
    height = caterpillar_height(nmax)
    fig = Figure(figsize=(min(max(3.6 * len(panels), 6.0), 20.0), height), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for n, (ax, panel) in enumerate(zip(axes, panels)):
        _caterpillar_panel(ax, panel)
        before = panels[n - 1] if n else None
        if before is not None and before.group == panel.group and before.levels == panel.levels:
            ax.set_yticklabels([])           # aligned with the panel to its left: its labels serve both
            ax.set_ylabel("")
    pct = f"{100 * panels[0].level:g}%"
    fig.suptitle(f"{title}Random effects (conditional modes) with {pct} intervals\n"
                 f"bold: interval excludes 0", fontsize=11)
    return fig


def caterpillar_height(nlevels: int) -> float:
    """Inches: room for a label per level up to MAX_LABELLED_LEVELS, then slowly more, at most 12."""
    if nlevels <= MAX_LABELLED_LEVELS:
        return max(2.0 + 0.17 * nlevels, 4.0)
    return min(2.0 + 0.17 * MAX_LABELLED_LEVELS + 0.01 * (nlevels - MAX_LABELLED_LEVELS), 12.0)


def _caterpillar_panel(ax, panel) -> None:
    """Intervals as one LineCollection (gid 'intervals'), estimates as points, a line at zero."""
    from matplotlib.collections import LineCollection

    pos = list(range(len(panel)))
    bold = panel.excludes_zero
    segs = [[(lo, i), (hi, i)] for i, lo, hi in zip(pos, panel.low, panel.high)]
    thin, thick = (1.0, 2.4) if len(panel) <= 100 else (0.5, 1.2)   # many levels: thinner, so they stay apart
    lines = LineCollection(segs, colors=[BOLD if b else PLAIN for b in bold],
                           linewidths=[thick if b else thin for b in bold], gid="intervals")
    ax.add_collection(lines)
    ax.scatter(panel.estimate, pos, s=12 if len(panel) <= 100 else 5, zorder=3,
               c=[BOLD if b else PLAIN for b in bold])
    ax.axvline(0.0, color=ZERO, linewidth=0.9, linestyle="--")
    ax.autoscale_view()
    ax.set_title(f"{panel.group}: {panel.term}", fontsize=10)
    ax.set_xlabel(f"random effect: {panel.term}")
    _level_axis(ax, panel)


def _level_axis(ax, panel) -> None:
    """Level names on the y axis when they fit; otherwise just say how they are ordered."""
    ax.set_ylim(-1, len(panel))
    if len(panel) <= MAX_LABELLED_LEVELS:
        ax.set_yticks(range(len(panel)), labels=panel.levels, fontsize=8)
        ax.set_ylabel(f"{panel.group} (sorted by estimate)")
    else:
        ax.set_yticks([])
        ax.set_ylabel(f"{len(panel)} levels of {panel.group}, sorted by estimate")
    ax.grid(axis="x", alpha=0.3)


# -- trajectories ------------------------------------------------------------------------------
def trajectories_figure(tr):
    """Faded data per group, each group's predicted line, a bold sample of groups, the population line."""
    Figure = _matplotlib()
    fig = Figure(figsize=(8.5, 6.0), layout="constrained")
    ax = fig.subplots()
    many = len(tr.levels) > 50
    for xs, ys in zip(tr.x, tr.y):
        ax.plot(xs, ys, color="0.6", alpha=0.15 if many else 0.35, linewidth=0.6, marker=".",
                markersize=2.5 if many else 4)
    for lx, ly in zip(tr.line_x, tr.line_y):
        ax.plot(lx, ly, color="#4c72b0", alpha=0.15 if many else 0.45, linewidth=0.8)
    _highlighted(ax, tr)
    ax.plot(tr.pop_x, tr.pop_y, color=POPULATION, linewidth=3.2, linestyle="--",
            label="population (fixed effects)", zorder=5)
    ax.set_xlabel(tr.x_name)
    ax.set_ylabel(tr.y_name)
    held = f"\nlines at {', '.join(tr.held)} = mean (numeric) or reference level (factor)" if tr.held else ""
    ax.set_title(f"{tr.y_name} over {tr.x_name} by {tr.group} ({len(tr.levels)} groups)\n"
                 f"grey: data; thin blue: each group's predicted line; bold: {len(tr.highlight)} sampled groups"
                 + held, fontsize=10)
    ax.legend(fontsize=8, loc="best", title=tr.group, title_fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _highlighted(ax, tr) -> None:
    """The sampled groups: their data and predicted line in one colour each."""
    colours = distinct_colours(len(tr.highlight))
    for c, g in zip(colours, tr.highlight):
        ax.plot(tr.x[g], tr.y[g], "o", color=c, markersize=4, alpha=0.9)
        ax.plot(tr.line_x[g], tr.line_y[g], color=c, linewidth=2.4, label=str(tr.levels[g]), zorder=4)


def distinct_colours(n: int) -> list:
    """n colours no two alike: tab10, tab20, then evenly spaced hues."""
    from matplotlib import colormaps

    if n <= 10:
        return list(colormaps["tab10"].colors[:n])
    if n <= 20:
        return list(colormaps["tab20"].colors[:n])
    import colorsys

    return [colorsys.hsv_to_rgb(i / n, 0.75 if i % 2 else 0.95, 0.8 if i % 3 else 0.6) for i in range(n)]


# -- densities of the random effects -------------------------------------------------------------
def density_figure(panels):
    """One panel per random term: the kernel density of its conditional modes, a rug of them, and the normal
    density the model assumes (N(0, sd^2), dashed)."""
    Figure = _matplotlib()
    ncol = min(len(panels), 3)
    nrow = math.ceil(len(panels) / ncol)
    fig = Figure(figsize=(4.3 * ncol, 3.6 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, p in zip(axes, panels):
        ax.plot(p.grid, p.density, color=BOLD, linewidth=1.8, label="density of the conditional modes")
        ax.plot(p.grid, p.normal, color=ZERO, linewidth=1.2, linestyle="--", label=f"N(0, {p.sd:.3g}²)")
        ax.plot(p.values, [0.0] * len(p.values), "|", color=PLAIN, markersize=8)
        ax.set_title(f"{p.group}: {p.term}", fontsize=10)
        ax.set_xlabel(f"random effect: {p.term}")
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("Random effects: kernel density of the conditional modes and the assumed normal", fontsize=11)
    return fig


# -- diagnostics -------------------------------------------------------------------------------
def diagnostics_figure(dg):
    """Residuals vs fitted, then one QQ panel for the residuals and for each random term."""
    Figure = _matplotlib()
    n = 1 + len(dg.qq)
    ncol = 2 if n == 4 else min(n, 3)
    nrow = math.ceil(n / ncol)
    fig = Figure(figsize=(4.3 * ncol, 3.8 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    _resid_panel(axes[0], dg)
    for ax, qq in zip(axes[1:], dg.qq):
        _qq_panel(ax, qq)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(f"Diagnostics for {dg.response}: residuals and normal QQ plots", fontsize=11)
    return fig


def _resid_panel(ax, dg) -> None:
    """Standardized residuals (residual / sigma) against fitted values, with a lowess smoother (lme4's plot())."""
    std = dg.std_residuals if dg.std_residuals is not None else dg.residuals
    ax.scatter(dg.fitted, std, s=8, alpha=0.6, color="#4c72b0")
    ax.axhline(0.0, color=ZERO, linewidth=0.9, linestyle="--")
    if dg.smooth_x is not None:
        ax.plot(dg.smooth_x, dg.smooth_y, color="black", linewidth=1.6, label="lowess smoother", gid="smoother")
        ax.legend(fontsize=7, loc="best")
    ax.set_title("Residuals vs fitted", fontsize=10)
    ax.set_xlabel("fitted value (with random effects)")
    ax.set_ylabel("standardized residual (residual / sigma)")
    ax.grid(alpha=0.3)


def _qq_panel(ax, qq) -> None:
    ax.scatter(qq.theoretical, qq.sample, s=8, alpha=0.7, color="#4c72b0")
    ends = qq.theoretical[[0, -1]]
    ax.plot(ends, qq.intercept + qq.slope * ends, color=ZERO, linewidth=1.0)
    ax.set_title(f"Normal QQ: {qq.title}", fontsize=10)
    ax.set_xlabel("normal quantile")
    ax.set_ylabel("sample quantile")
    ax.grid(alpha=0.3)
