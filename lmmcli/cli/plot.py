"""`lmm plot`: caterpillar, trajectories and diagnostics as images or terminal text."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from lmmcli.cli.app import DataArg, Factor, FormulaArg, Level, Ml, Ref, Strict, command
from lmmcli.cli.common import echo_warnings, read_and_fit, terminal_width, use_color


class PlotKind(str, Enum):
    ranef = "ranef"
    fitted = "fitted"
    resid = "resid"


def _plot_figure(kind: PlotKind, fm, result, df, level: float, x, highlight: int, seed: int):
    """The matplotlib figure of one kind (result is fm.result(), computed once by the caller)."""
    from lmmcli.render import figures as plot
    from lmmcli.predict import plotdata

    if kind == PlotKind.ranef:
        return plot.caterpillar_figure(plotdata.caterpillar(result, level))
    if kind == PlotKind.fitted:
        return plot.trajectories_figure(plotdata.trajectories(fm, df, x, highlight, seed))
    return plot.diagnostics_figure(plotdata.diagnostics(fm))


def _plot_command(kind, data, formula, output, terminal, level, x, highlight, seed, ml, factor, ref, strict):
    """Check the options before fitting, fit, then draw to the file or the terminal."""
    from lmmcli.errors import UsageError

    if terminal and (kind != PlotKind.ranef or output is not None):
        raise UsageError("--terminal draws the ranef caterpillar as text on stdout; use it with KIND ranef, without -o")
    if not terminal and output is None:
        raise UsageError("give the image file with -o FILE.png or -o FILE.svg (or --terminal for a text caterpillar)")
    if output is not None:
        from lmmcli.render.figures import image_format

        image_format(str(output))
    fm, df = read_and_fit(data, formula, ml, factor, ref)
    result = fm.result()
    if terminal:
        from lmmcli.predict.plotdata import caterpillar
        from lmmcli.render.terminal_plot import caterpillar_text

        sys.stdout.write(caterpillar_text(caterpillar(result, level), width=terminal_width(),
                                          color=use_color(output)))
    else:
        from lmmcli.render.figures import save

        save(_plot_figure(kind, fm, result, df, level, x, highlight, seed), str(output), seed, inputs=(data,))
    echo_warnings(result.warnings, strict)


@command(examples=(
    'lmm plot ranef sleepstudy.csv "Reaction ~ Days + (Days|Subject)" -o ranef.png',
    'lmm plot fitted sleepstudy.csv "Reaction ~ Days + (Days|Subject)" -o fitted.svg',
    'lmm plot ranef sleepstudy.csv "Reaction ~ Days + (Days|Subject)" --terminal',
))
def plot(
    kind: Annotated[PlotKind, typer.Argument(
        show_default=False, help="ranef (caterpillar of the random effects), fitted (each group's data and "
                                 "predicted line) or resid (residual and QQ diagnostics)")],
    data: DataArg,
    formula: FormulaArg,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", metavar="FILE", show_default=False,
        help="image file, .png or .svg (written atomically)")] = None,
    terminal: Annotated[bool, typer.Option(
        "--terminal", help="ranef only: draw the caterpillar as text on stdout")] = False,
    level: Level = 0.95,
    x: Annotated[Optional[str], typer.Option(
        "--x", metavar="COL", show_default=False,
        help="fitted: the predictor on the x axis (default: the first numeric one in the formula)")] = None,
    highlight: Annotated[int, typer.Option(
        "--highlight", help="fitted: how many groups (a seeded sample) to draw in bold")] = 6,
    seed: Annotated[int, typer.Option("--seed", help="seed of the sample of bold groups; same seed, same file")] = 0,
    ml: Ml = False,
    factor: Factor = None,
    ref: Ref = None,
    strict: Strict = False,
):
    """Draw a fitted model: caterpillar plot, group trajectories or diagnostics (PNG or SVG; needs matplotlib)."""
    _plot_command(kind, data, formula, output, terminal, level, x, highlight, seed, ml, factor, ref, strict)
