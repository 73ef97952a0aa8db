"""`lmm fit` and `lmm compare`: a summary of one model, likelihood-ratio tests between several."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from lmmcli.cli.app import (CiMethod, DataArg, DfMethod, Factor, Format, FormulaArg, Level, Ml, Output, Ref, Seed,
                            Strict, command)
from lmmcli.cli.common import emit_report, load_data, note, parse_refs, progress_bar, read_and_fit, save_model

FitFormat = Annotated[Format, typer.Option("--format", "-f", help="table or json")]


@command()
def fit(
    data: DataArg,
    formula: FormulaArg,
    ml: Ml = False,
    factor: Factor = None,
    ref: Ref = None,
    format: FitFormat = Format.table,
    df: Annotated[DfMethod, typer.Option(
        "--df", help="df and p-values of the fixed effects: satterthwaite (lmerTest's default), kenward-roger "
                     "(REML fits; adjusted standard errors), residual (n - p), none")] = DfMethod.satterthwaite,
    ci: Annotated[Optional[CiMethod], typer.Option(
        "--ci", show_default=False, help="confidence intervals for the fixed effects and variance parameters: "
        "wald, profile (lme4's confint default) or boot (parametric bootstrap)")] = None,
    level: Annotated[float, typer.Option("--level", help="level of the --ci intervals")] = 0.95,
    nsim: Annotated[int, typer.Option("--nsim", help="--ci boot: number of bootstrap simulations")] = 1000,
    seed: Seed = None,
    output: Output = None,
    strict: Strict = False,
    save: Annotated[Optional[Path], typer.Option(
        "--save", metavar="FILE", show_default=False,
        help="also save the fitted model as JSON, for `lmm predict --model FILE` (written atomically)")] = None,
    correlation: Annotated[Optional[bool], typer.Option(
        "--correlation/--no-correlation", show_default=False,
        help="show the fixed effects' correlation table (default: only up to 12 fixed effects, as lme4)")] = None,
):
    """Fit a linear mixed model and print lme4's summary (REML by default)."""
    from lmmcli.fit import analyze
    from lmmcli.render import tables as render

    if ci is not None:
        from lmmcli.inference.confint import check_options

        check_options(ci.value, level, nsim)
    fm, _ = read_and_fit(data, formula, ml, factor, ref)
    if save is not None:
        save_model(fm, save, data)
    with progress_bar("bootstrap", nsim, show=ci == CiMethod.boot) as progress:
        analysis = analyze(fm, df.value, ci.value if ci else None, level, nsim, seed, progress)
    for message in analysis.notes:
        note(message)
    table = partial(render.fit_table, correlation=correlation) if analysis.mixed else render.lm_table
    emit_report(analysis.report, format, table, output, data, strict)


@command()
def compare(
    data: DataArg,
    formulas: Annotated[List[str], typer.Argument(metavar="FORMULA...", show_default=False,
                                                  help="two or more lme4 formulas with the same response")],
    ml: Ml = False,
    no_refit: Annotated[bool, typer.Option(
        "--no-refit", help="compare REML fits (lme4's refit = FALSE); only for models with the same fixed "
                           "effects, otherwise exit code 2")] = False,
    factor: Factor = None,
    ref: Ref = None,
    format: FitFormat = Format.table,
    output: Output = None,
    strict: Strict = False,
):
    """Likelihood-ratio tests between models, as lme4's anova(m1, m2, ...) (refits REML fits by ML)."""
    from lmmcli.compare import compare as run_compare
    from lmmcli.render import tables as render

    refs = parse_refs(ref)
    df, source = load_data(data)
    result = run_compare(formulas, df, ml=ml, refit=not no_refit, factors=tuple(factor or ()), refs=refs,
                         source=source)
    emit_report(result, format, render.compare_table, output, data, strict)
