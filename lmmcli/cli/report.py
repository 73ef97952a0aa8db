"""`lmm report`: one self-contained HTML page of a fit (summary, p-values, variance components, figures)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from lmmcli.cli.app import (CiMethod, DataArg, Decimal, Delimiter, DfMethod, Factor, FormulaArg, Level, Ml, Ref, Seed,
                            Strict, command)
from lmmcli.cli.common import echo_warnings, note, read_and_fit, source_name


def versions() -> dict:
    """The versions of lmm and of the libraries that made the numbers and the pictures."""
    import platform

    import matplotlib
    import numpy

    from lmmcli import __version__

    out = {"lmm": __version__, "Python": platform.python_version(), "numpy": numpy.__version__}
    if "scipy" in sys.modules:
        out["scipy"] = sys.modules["scipy"].__version__
    out["matplotlib"] = matplotlib.__version__
    return out


def report_figures(fm, df, result, level: float, x: Optional[str], groups, seed: int) -> list[tuple[str, str]]:
    """(caption, inline SVG) of the caterpillar, the group trajectories and the residual diagnostics; a figure
    that cannot be drawn for this model is a sentence saying why."""
    import html

    from lmmcli.errors import LmmError
    from lmmcli.predict import plotdata
    from lmmcli.render import figures

    out = []
    if fm.blocks:
        out.append(("Random effects (conditional modes) with intervals, every level",
                    figures.svg_text(figures.caterpillar_figure(plotdata.caterpillar(result, level)), "cat")))
        try:
            tr = plotdata.trajectories(fm, df, x, 6, seed, groups)
            out.append(("Data and predicted lines per group, population line dashed",
                        figures.svg_text(figures.trajectories_figure(tr), "traj")))
        except LmmError as exc:         # e.g. no numeric predictor to draw over: the page says why
            out.append(("No group trajectories", f"<p class=\"note\">{html.escape(exc.message)}</p>"))
    out.append(("Residual diagnostics", figures.svg_text(figures.diagnostics_figure(plotdata.diagnostics(fm)),
                                                         "diag")))
    return out


@command(examples=(
    'lmm report sleepstudy.csv "Reaction ~ Days + (Days|Subject)" -o report.html',
    'lmm report gpa.csv "gpa ~ occasion + (1|student)" --ci profile -o gpa.html',
))
def report(
    ctx: typer.Context,
    data: DataArg,
    formula: FormulaArg,
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE.html", show_default=False,
                                         help="the HTML file to write (atomically)")],
    ml: Ml = False,
    factor: Factor = None,
    ref: Ref = None,
    df: Annotated[DfMethod, typer.Option("--df", help="df and p-values of the fixed effects (as lmm fit)")
                  ] = DfMethod.satterthwaite,
    ci: Annotated[Optional[CiMethod], typer.Option("--ci", show_default=False,
                                                   help="confidence intervals: wald, profile or boot")] = None,
    level: Level = 0.95,
    nsim: Annotated[int, typer.Option("--nsim", help="--ci boot: number of bootstrap simulations")] = 1000,
    seed: Seed = None,
    x: Annotated[Optional[str], typer.Option("--x", metavar="COL", show_default=False,
                                             help="the predictor on the trajectories' x axis")] = None,
    strict: Strict = False,
    delimiter: Delimiter = None,    # both read by common.load_data (their callbacks)
    decimal: Decimal = ".",
):
    """A self-contained HTML report of one fit: summary, p-values, variance components with ICC and R², the
    caterpillar, group trajectories and residual diagnostics (inline SVG), the command and versions."""
    from lmmcli.errors import UsageError
    from lmmcli.fit import analyze
    from lmmcli.io.write import write_text
    from lmmcli.render.report import report_html

    if output.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"the report is HTML: name the file .html, not '{output.name}'")
    if ci is not None:
        from lmmcli.inference.confint import check_options

        check_options(ci.value, level, nsim)
    fm, frame = read_and_fit(data, formula, ml, factor, ref)
    analysis = analyze(fm, df.value, ci.value if ci else None, level, nsim, seed)
    for message in analysis.notes:
        note(message)
    figs = report_figures(fm, frame, fm.result(), level, x, None, seed or 0)
    command_line = "lmm report " + shlex.join(ctx.meta.get("lmm.args", []))
    page = report_html(analysis.report, analysis.mixed, figs, command_line, versions(), source_name(data))
    write_text(str(output), page, inputs=(data,))
    echo_warnings(analysis.report.warnings, strict)
