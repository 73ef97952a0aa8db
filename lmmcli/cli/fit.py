"""`lmm fit` and `lmm compare`: a summary of one model, likelihood-ratio tests between several."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from lmmcli.cli.app import (CiMethod, DataArg, DfMethod, EngineOpt, FactorOpt, Format, FormulaArg, MemoryLimitOpt, MlOpt, OutputOpt, RefOpt, SparkMasterOpt, StrictOpt, ThreadsOpt, app, emit_report, engine_options, load_data, parse_refs, progress_bar, read_and_fit, run_guarded, save_model)


@app.command()
def fit(
    data: str = DataArg,
    formula: str = FormulaArg,
    ml: bool = MlOpt,
    factor: Optional[List[str]] = FactorOpt,
    ref: Optional[List[str]] = RefOpt,
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
    df: DfMethod = typer.Option(DfMethod.satterthwaite, "--df",
                                help="df and p-values of the fixed effects: satterthwaite (lmerTest's default), "
                                     "kenward-roger (REML fits; adjusted standard errors), residual (n - p), none"),
    ci: Optional[CiMethod] = typer.Option(None, "--ci", help="confidence intervals for the fixed effects and variance "
                                          "parameters: wald, profile (lme4's confint default) or boot (parametric "
                                          "bootstrap)"),
    level: float = typer.Option(0.95, "--level", help="level of the --ci intervals"),
    nsim: int = typer.Option(1000, "--nsim", help="--ci boot: number of bootstrap simulations"),
    seed: Optional[int] = typer.Option(None, "--seed", help="--ci boot: random seed (same seed, same intervals)"),
    output: Optional[Path] = OutputOpt,
    strict: bool = StrictOpt,
    save: Optional[Path] = typer.Option(None, "--save", help="also save the fitted model as JSON, for "
                                        "`lmm predict --model FILE` (written atomically)"),
    engine: str = EngineOpt,
    threads: Optional[int] = ThreadsOpt,
    memory_limit: Optional[str] = MemoryLimitOpt,
    spark_master: Optional[str] = SparkMasterOpt,
):
    """Fit a linear mixed model and print lme4's summary (REML by default)."""

    def body():
        from lmmcli.render import tables as render

        if ci is not None:
            from lmmcli.inference.confint import check_options

            check_options(ci.value, level, nsim)
        fm, _ = read_and_fit(data, formula, ml, factor, ref, engine_options(engine, threads, memory_limit,
                                                                            spark_master))
        if save is not None:
            save_model(fm, save, data)
        if not fm.blocks:
            if ci is not None:
                sys.stderr.write("note: --ci is for mixed models; this formula has no random terms, "
                                 "so no intervals are computed\n")
            from lmmcli.lm import fit_lm

            return emit_report(fit_lm(fm.formula, fm.design), format, render.lm_table, output, data, strict)
        from lmmcli.inference.summary import summarize

        with progress_bar("bootstrap", nsim) as progress:
            result = summarize(fm, df.value, ci.value if ci else None, level, nsim, seed, progress)
        result.extra["engine"] = fm.engine
        emit_report(result, format, render.fit_table, output, data, strict)

    run_guarded(body)


@app.command()
def compare(
    data: str = DataArg,
    formulas: List[str] = typer.Argument(..., help="two or more lme4 formulas with the same response"),
    ml: bool = MlOpt,
    no_refit: bool = typer.Option(False, "--no-refit",
                                  help="compare REML fits (lme4's refit = FALSE); only for models with the "
                                       "same fixed effects, otherwise exit code 2"),
    factor: Optional[List[str]] = FactorOpt,
    ref: Optional[List[str]] = RefOpt,
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
    output: Optional[Path] = OutputOpt,
    strict: bool = StrictOpt,
):
    """Likelihood-ratio tests between models, as lme4's anova(m1, m2, ...) (refits REML fits by ML)."""

    def body():
        from lmmcli.render import tables as render
        from lmmcli.compare import compare as run_compare

        refs = parse_refs(ref)
        df, source = load_data(data)
        result = run_compare(formulas, df, ml=ml, refit=not no_refit, factors=tuple(factor or ()), refs=refs,
                             source=source)
        emit_report(result, format, render.compare_table, output, data, strict)

    run_guarded(body)
