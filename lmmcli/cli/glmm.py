"""`lmm fit --family binomial|poisson`: the GLMM branch of the fit command (glmer's summary)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lmmcli.cli.common import echo_warnings, load_data, parse_refs
from lmmcli.cli.output import OutFormat, Shown, write

Family = Annotated[Optional[str], typer.Option(
    "--family", metavar="NAME", show_default=False,
    help="fit a generalized linear mixed model, as glmer: binomial or poisson")]
Link = Annotated[Optional[str], typer.Option(
    "--link", metavar="LINK", show_default=False,
    help="with --family: binomial logit (default), probit, cloglog; poisson log (default), sqrt, identity")]
Nagq = Annotated[int, typer.Option(
    "--nagq", help="with --family: 1 = Laplace approximation; > 1 = adaptive Gauss-Hermite quadrature with "
                   "this many points (a single scalar random term only, as glmer)")]
Weights = Annotated[Optional[str], typer.Option(
    "--weights", metavar="COL", show_default=False,
    help="with --family: prior weights (binomial: the number of trials of a proportion response)")]


def glmm_shown(report) -> Shown:
    """A GLMM's report in every format: summary(glmer), its JSON document, tidy() rows."""
    from lmmcli.render import formats
    from lmmcli.render.glmm import glmm_table

    return Shown(f"lmm fit: {report.formula}", report.to_dict, lambda: formats.tidy_rows(report),
                 lambda width, color: glmm_table(report, width=width, color=color),
                 lines=lambda: [report.to_dict()], columns=formats.TIDY_COLUMNS)


def fit_glmm(data: str, formula: str, family: str, link: Optional[str], nagq: int, weights: Optional[str],
             factor, ref, ci: Optional[str], level: float, fmt: OutFormat, output: Optional[Path],
             strict: bool) -> None:
    """Fit the GLMM and write its summary; --ci wald only (so far)."""
    from lmmcli import glmm
    from lmmcli.errors import UsageError
    from lmmcli.formula import parse_formula
    from lmmcli.glmm.result import assemble, attach_wald

    if ci is not None and ci != "wald":
        raise UsageError(f"--ci {ci} is not available with --family yet; use --ci wald")
    parse_formula(formula)
    refs = parse_refs(ref)
    df, source = load_data(data)
    fm = glmm.glmer(formula, df, family, link, nagq, weights, tuple(factor or ()), refs, source)
    report = assemble(fm)
    if ci is not None:
        attach_wald(report, level)
    write(glmm_shown(report), fmt, output, inputs=(data,))
    echo_warnings(report.warnings, strict)
