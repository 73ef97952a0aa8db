"""`lmm plot`: caterpillar, trajectories and diagnostics as images or terminal text."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from lmmcli.cli.app import (DecimalOpt, DelimiterOpt, DataArg, FactorOpt, FormulaArg, LevelOpt, MlOpt, RefOpt, StrictOpt, app, echo_warnings, read_and_fit, run_guarded, terminal_width, use_color)


# -- pictures and simulation (lmmcli.predict.plotdata, lmmcli.render.figures, lmmcli.render.terminal_plot, lmmcli.predict.simulate) -------
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


@app.command()
def plot(
    kind: PlotKind = typer.Argument(..., help="ranef (caterpillar of the random effects), fitted (each group's "
                                    "data and predicted line) or resid (residual and QQ diagnostics)"),
    data: str = DataArg,
    formula: str = FormulaArg,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="image file, .png or .svg (written atomically)"),
    terminal: bool = typer.Option(False, "--terminal", help="ranef only: draw the caterpillar as text on stdout"),
    level: float = LevelOpt,
    x: Optional[str] = typer.Option(None, "--x", help="fitted: the predictor on the x axis (default: the first "
                                    "numeric one in the formula)"),
    highlight: int = typer.Option(6, "--highlight", help="fitted: how many groups (a seeded sample) to draw in bold"),
    seed: int = typer.Option(0, "--seed", help="seed of the sample of bold groups; same seed, same file"),
    ml: bool = MlOpt,
    factor: Optional[List[str]] = FactorOpt,
    ref: Optional[List[str]] = RefOpt,
    strict: bool = StrictOpt,
    delimiter: Optional[str] = DelimiterOpt,   # read by load_data (callback)
    decimal: str = DecimalOpt,
):
    """Draw a fitted model: caterpillar plot, group trajectories or diagnostics (PNG or SVG; needs matplotlib)."""
    run_guarded(lambda: _plot_command(kind, data, formula, output, terminal, level, x, highlight, seed, ml,
                                      factor, ref, strict))
