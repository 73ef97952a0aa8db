"""`lmm fit` and `lmm compare`: a summary of one model, likelihood-ratio tests between several."""

from __future__ import annotations

from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from lmmcli.cli.app import (CiMethod, Contrasts, DataArg, Decimal, Delimiter, DfMethod, Engine, Factor, FormatOpt,
                            FormulaArg, MemoryLimit, Ml, Output, Ref, Seed, SparkMaster, Strict, Threads, command)
from lmmcli.cli.by import fit_by_command
from lmmcli.cli.common import (aggregation_runner, echo_warnings, engine_options, load_data, note, parse_contrasts,
                               parse_refs, progress_bar, read_and_fit, save_model, source_name)
from lmmcli.cli.glmm import Family, Link, Nagq, Weights, glmm_options
from lmmcli.cli.output import OutFormat, Shown, choose_format, write


def fit_shown(report, mixed: bool, correlation: bool | None = None) -> Shown:
    """A fit's report in every format: lme4's summary, its JSON document, broom.mixed's tidy() rows.

    correlation: the summary's fixed-effects correlation table (None: for p <= 12, as lme4)."""
    from lmmcli.render import formats, tables

    table = partial(tables.fit_table, correlation=correlation) if mixed else tables.lm_table
    return Shown(f"lmm fit: {report.formula}", report.to_dict, lambda: formats.tidy_rows(report),
                 lambda width, color: table(report, width=width, color=color), lines=lambda: [report.to_dict()],
                 columns=formats.TIDY_COLUMNS)


@command(examples=(
    'lmm fit sleepstudy.csv "Reaction ~ Days + (Days|Subject)"',
    'lmm fit sleepstudy.csv "Reaction ~ Days + (Days|Subject)" --ci profile --df kenward-roger',
    'lmm fit sleepstudy.csv "Reaction ~ Days + (Days|Subject)" -o tidy.csv     # broom.mixed tidy() rows',
    'lmm fit sleepstudy.csv "Reaction ~ Days + (1|Subject)" --save model.json',
    'lmm fit gpa.csv "gpa ~ occasion + (1|student)" --by sex -f ndjson',
))
def fit(
    data: DataArg,
    formula: FormulaArg,
    ml: Ml = False,
    factor: Factor = None,
    ref: Ref = None,
    format: FormatOpt = None,
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
    delimiter: Delimiter = None,    # both read by common.load_data (their callbacks)
    decimal: Decimal = ".",
    save: Annotated[Optional[Path], typer.Option(
        "--save", metavar="FILE", show_default=False,
        help="also save the fitted model as JSON, for `lmm predict --model FILE` (written atomically)")] = None,
    correlation: Annotated[bool, typer.Option(
        "--correlation", help="show the fixed effects' correlation table whatever their number "
                              "(by default only up to 12 fixed effects, as lme4)")] = False,
    by: Annotated[Optional[str], typer.Option(
        "--by", metavar="COL", show_default=False,
        help="fit the model to the rows of each value of COL (in parallel): a report per value, then a summary; "
             "CSV/NDJSON rows carry a `by` field")] = None,
    jobs: Annotated[Optional[int], typer.Option(
        "--jobs", "-j", metavar="N", show_default=False, help="--by: fit in N processes (default: every core)")] = None,
    family: Family = None,
    link: Link = None,
    nagq: Nagq = 1,
    weights: Weights = None,
    engine: Engine = "auto",
    threads: Threads = None,
    memory_limit: MemoryLimit = None,
    spark_master: SparkMaster = None,
    contrasts: Contrasts = None,
):
    """Fit a linear mixed model and print lme4's summary (REML by default); with --family, a GLMM as glmer."""
    from lmmcli.errors import UsageError

    fmt = choose_format(format, output, OutFormat.table)
    if glmm_options(family, link, nagq, weights) is not None:
        from lmmcli.cli.glmm import fit_glmm, refuse_aggregation

        refuse_aggregation(engine)
        if by is not None or jobs is not None:
            raise UsageError("--by and --jobs are not available with --family yet")
        if ml:
            raise UsageError("--ml is for linear mixed models: a GLMM is always fitted by maximum likelihood")
        if df != DfMethod.satterthwaite:
            raise UsageError(f"--df {df.value} is for linear mixed models: a GLMM's fixed effects have z tests")
        return fit_glmm(data, formula, family, link, nagq, weights, factor, ref, ci.value if ci else None,
                        level, fmt, output, strict, save, nsim, seed, contrasts=contrasts)
    from lmmcli.fit import analyze      # (after the GLMM branch: a GLMM needs none of the linear engine)

    if ci is not None:
        from lmmcli.inference.confint import check_options

        check_options(ci.value, level, nsim)
    if by is not None:
        if save is not None:
            raise UsageError("--save keeps one model; with --by there is one per value")
        return fit_by_command(data, formula, by, ml, factor, ref, fmt, output, strict, df.value,
                              ci.value if ci else None, level, nsim, seed, jobs, weights, contrasts)
    if jobs is not None:
        raise UsageError("--jobs is for --by: one fit runs in one process")
    fm, frame = read_and_fit(data, formula, ml, factor, ref, engine_options(engine, threads, memory_limit, spark_master),
                             weights, contrasts)
    engine_name = getattr(fm, "engine_name", "memory")
    if engine_name != "memory":
        from lmmcli.fit_scale import check_supported

        check_supported(ci.value if ci else None, df.value)
    if save is not None:
        save_model(fm, save, data, frame)
    with progress_bar("bootstrap", nsim, show=ci == CiMethod.boot) as progress:
        analysis = analyze(fm, df.value, ci.value if ci else None, level, nsim, seed, progress)
    for message in analysis.notes:
        note(message)
    analysis.report.extra["engine"] = engine_name
    write(fit_shown(analysis.report, analysis.mixed, correlation or None), fmt, output, inputs=(data,))
    echo_warnings(analysis.report.warnings, strict)


@command(examples=(
    'lmm compare sleepstudy.csv "Reaction ~ Days + (1|Subject)" "Reaction ~ Days + (Days|Subject)"',
    'lmm compare sleepstudy.csv "Reaction ~ 1 + (1|Subject)" "Reaction ~ Days + (1|Subject)" -f json',
))
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
    format: FormatOpt = None,
    output: Output = None,
    strict: Strict = False,
    family: Family = None,
    link: Link = None,
    nagq: Nagq = 1,
    weights: Weights = None,
    contrasts: Contrasts = None,
    delimiter: Delimiter = None,    # both read by common.load_data (their callbacks)
    decimal: Decimal = ".",
    engine: Engine = "auto",
    threads: Threads = None,
    memory_limit: MemoryLimit = None,
    spark_master: SparkMaster = None,
):
    """Likelihood-ratio tests between models, as lme4's anova(m1, m2, ...) (refits REML fits by ML)."""
    from lmmcli.compare import compare as run_compare
    from lmmcli.render import formats, tables

    fmt = choose_format(format, output, OutFormat.table)
    refs = parse_refs(ref)
    options = glmm_options(family, link, nagq, weights)
    if options is not None:
        from lmmcli.cli.glmm import refuse_aggregation
        from lmmcli.glmm.compare import compare_glmms

        refuse_aggregation(engine)
        df, source = load_data(data)
        result = compare_glmms(formulas, df, factors=tuple(factor or ()), refs=refs, source=source, **options)
    elif (runner := aggregation_runner(data, engine_options(engine, threads, memory_limit, spark_master),
                                       weights, contrasts)) is not None:
        from lmmcli.fit_scale import compare_source

        with closing(runner):
            result = compare_source(formulas, runner, ml=ml, refit=not no_refit, factors=tuple(factor or ()),
                                    refs=refs, source=source_name(data))
        result.notes.append(f"sums formed by --engine {runner.name} (the rows were not loaded)")
    else:
        df, source = load_data(data)
        result = run_compare(formulas, df, ml=ml, refit=not no_refit, factors=tuple(factor or ()), refs=refs,
                             source=source, weights=weights, contrasts=parse_contrasts(contrasts))
    shown = Shown("lmm compare", result.to_dict, lambda: formats.compare_rows(result),
                  lambda width, color: tables.compare_table(result, width=width, color=color))
    write(shown, fmt, output, inputs=(data,))
    echo_warnings(result.warnings, strict)
