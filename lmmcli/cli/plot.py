"""`lmm plot`: caterpillar, trajectories, densities and diagnostics as images (PNG, SVG, PDF) or terminal text."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from lmmcli.cli.app import Contrasts, Decimal, Delimiter, DataArg, Factor, FormulaArg, Level, Ml, Ref, Strict, command
from lmmcli.cli.common import echo_warnings, read_and_fit, terminal_width, use_color
from lmmcli.cli.glmm import Family, Link, Nagq, Weights, glmm_options


class PlotKind(str, Enum):
    ranef = "ranef"
    fitted = "fitted"
    resid = "resid"
    density = "density"


@dataclass
class Drawing:
    """What to draw, as the options gave it."""

    kind: PlotKind
    level: float
    x: Optional[str]
    highlight: int
    seed: int
    groups: Optional[list]


def split_groups(values: Optional[List[str]]) -> Optional[list]:
    """--groups A,B (or repeated) as a list of level names; None when not given."""
    names = [v.strip() for item in values or [] for v in item.split(",") if v.strip()]
    return names or None


def plot_figure(d: Drawing, fm, result, df):
    """The matplotlib figure of one kind (result is fm.result(), computed once by the caller)."""
    from lmmcli.predict import plotdata
    from lmmcli.render import figures as plot

    if d.kind == PlotKind.ranef:
        return plot.caterpillar_figure(plotdata.caterpillar(result, d.level, aligned=True))
    if d.kind == PlotKind.fitted:
        return plot.trajectories_figure(plotdata.trajectories(fm, df, d.x, d.highlight, d.seed, d.groups))
    if d.kind == PlotKind.density:
        return plot.density_figure(plotdata.densities(result))
    return plot.diagnostics_figure(plotdata.diagnostics(fm))


def check_options(d: Drawing, output, terminal: bool) -> None:
    """Usage errors before any fitting."""
    from lmmcli.errors import UsageError

    if terminal and (d.kind != PlotKind.ranef or output is not None):
        raise UsageError("--terminal draws the ranef caterpillar as text on stdout; use it with KIND ranef, without -o")
    if not terminal and output is None:
        raise UsageError("give the image file with -o FILE.png, FILE.svg or FILE.pdf (or --terminal for a text "
                         "caterpillar)")
    if d.groups and d.kind != PlotKind.fitted:
        raise UsageError("--groups chooses the highlighted groups of `lmm plot fitted`")
    if output is not None:
        from lmmcli.render.figures import image_format

        image_format(str(output))


def _plot_glmm(d: Drawing, data, formula, output, terminal, factor, ref, strict, glmm, contrasts=None, size=None):
    """plot ranef|fitted|resid|density for a GLMM (caterpillar of the conditional modes; each group's data
    and fitted curve on the response scale; Pearson residual diagnostics; the conditional modes' density
    beside the N(0, sd^2) of their term, on the link scale where the model assumes it)."""
    from lmmcli.cli.glmm import read_and_fit_glmm
    from lmmcli.glmm.result import assemble, diagnostics
    from lmmcli.predict.plotdata import Coefficients, caterpillar, densities, trajectories

    kind, level = d.kind, d.level
    fm, df, _ = read_and_fit_glmm(data, formula, factor, ref, glmm, contrasts)
    result = assemble(fm)
    if terminal:
        from lmmcli.render.terminal_plot import caterpillar_text

        sys.stdout.write(caterpillar_text(caterpillar(result, level), width=terminal_width(), color=use_color(output)))
    else:
        from lmmcli.render import figures as plot

        if kind == PlotKind.fitted:
            coefs = Coefficients(fm.beta, fm.b(), fm.model.family.link.linkinv)
            fig = plot.trajectories_figure(trajectories(fm, df, d.x, d.highlight, d.seed, d.groups, coefs))
        elif kind == PlotKind.ranef:
            fig = plot.caterpillar_figure(caterpillar(result, level))
        elif kind == PlotKind.density:
            fig = plot.density_figure(densities(result))
        else:
            fig = plot.diagnostics_figure(diagnostics(fm))
        plot.save(fig, str(output), 0, inputs=(data,), size=size)
    echo_warnings(result.warnings, strict)


@command(examples=(
    'lmm plot ranef sleepstudy.csv "Reaction ~ Days + (Days|Subject)" -o ranef.png',
    'lmm plot fitted sleepstudy.csv "Reaction ~ Days + (Days|Subject)" --groups 308,309 -o fitted.svg',
    'lmm plot density sleepstudy.csv "Reaction ~ Days + (Days|Subject)" -o density.pdf --width 8',
    'lmm plot ranef sleepstudy.csv "Reaction ~ Days + (Days|Subject)" --terminal',
))
def plot(
    kind: Annotated[PlotKind, typer.Argument(
        show_default=False, help="ranef (caterpillar of the random effects), fitted (each group's data and "
                                 "predicted line), resid (standardized residuals and QQ plots) or density (of the "
                                 "random effects)")],
    data: DataArg,
    formula: FormulaArg,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", metavar="FILE", show_default=False,
        help="image file, .png, .svg or .pdf (written atomically)")] = None,
    terminal: Annotated[bool, typer.Option(
        "--terminal", help="ranef only: draw the caterpillar as text on stdout")] = False,
    level: Level = 0.95,
    x: Annotated[Optional[str], typer.Option(
        "--x", metavar="COL", show_default=False,
        help="fitted: the predictor on the x axis (default: the first numeric one in the formula)")] = None,
    groups: Annotated[Optional[List[str]], typer.Option(
        "--groups", metavar="LEVEL[,LEVEL]", show_default=False,
        help="fitted: the groups to highlight, by level (repeatable); default: a seeded sample")] = None,
    highlight: Annotated[int, typer.Option(
        "--highlight", metavar="N", help="fitted: how many groups (a seeded sample) to highlight")] = 6,
    seed: Annotated[int, typer.Option("--seed", metavar="N",
                                      help="seed of the sample of highlighted groups; same seed, same file")] = 0,
    width: Annotated[Optional[float], typer.Option("--width", metavar="INCHES", show_default=False,
                                                   help="width of the image")] = None,
    height: Annotated[Optional[float], typer.Option("--height", metavar="INCHES", show_default=False,
                                                    help="height of the image")] = None,
    ml: Ml = False,
    factor: Factor = None,
    ref: Ref = None,
    strict: Strict = False,
    family: Family = None,
    link: Link = None,
    nagq: Nagq = 1,
    weights: Weights = None,
    contrasts: Contrasts = None,
    delimiter: Delimiter = None,    # both read by common.load_data (their callbacks)
    decimal: Decimal = ".",
):
    """Draw a fitted model: caterpillar plot, group trajectories, random-effect densities or diagnostics (PNG,
    SVG or PDF; needs matplotlib)."""
    from lmmcli.errors import UsageError

    d = Drawing(kind, level, x, highlight, seed, split_groups(groups))
    check_options(d, output, terminal)
    if any(v is not None and v <= 0 for v in (width, height)):
        raise UsageError("--width and --height are inches, greater than 0")
    size = (width, height) if width or height else None
    glmm = glmm_options(family, link, nagq, weights)
    if glmm is not None:
        return _plot_glmm(d, data, formula, output, terminal, factor, ref, strict, glmm, contrasts, size)
    fm, df = read_and_fit(data, formula, ml, factor, ref, weights=weights, contrasts=contrasts)
    result = fm.result()
    if terminal:
        from lmmcli.predict.plotdata import caterpillar
        from lmmcli.render.terminal_plot import caterpillar_text

        sys.stdout.write(caterpillar_text(caterpillar(result, level), width=terminal_width(),
                                          color=use_color(output)))
    else:
        from lmmcli.render.figures import save

        save(plot_figure(d, fm, result, df), str(output), seed, inputs=(data,), size=size)
    echo_warnings(result.warnings, strict)
