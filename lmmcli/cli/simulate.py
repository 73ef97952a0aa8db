"""`lmm simulate`: data from a specification or from a fitted model."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from lmmcli.cli.app import (DecimalOpt, DelimiterOpt, FactorOpt, MlOpt, OptFormulaArg, OutputOpt, RefOpt, StrictOpt, app, echo_warnings, emit, read_and_fit, run_guarded)


def _write_csv(columns: dict, output: Optional[Path], inputs=()) -> None:
    """A data frame (or a dict of columns) as CSV on stdout or atomically to the file."""
    import pandas as pd

    emit(pd.DataFrame(columns).to_csv(index=False), output, inputs)


def _simulate_from_spec(groups, per_group, fixed, sd_group, sd_resid, sd_slope, cor, seed, output):
    """`lmm simulate --groups ...`: the simulated columns as CSV."""
    from lmmcli.errors import UsageError
    from lmmcli.predict.simulate import SimSpec, parse_fixed, simulate_spec

    if groups is None or per_group is None or sd_group is None or sd_resid is None:
        raise UsageError("give DATA FORMULA to simulate from a fitted model, or a specification: "
                         "--groups, --per-group, --sd-group and --sd-resid (and --fixed)")
    spec = SimSpec(groups, per_group, parse_fixed(fixed), sd_group, sd_resid, sd_slope, cor)
    _write_csv(simulate_spec(spec, seed), output)


def _simulate_from_model(data, formula, nsim, seed, use_u, ml, factor, ref, output, strict):
    """`lmm simulate DATA FORMULA`: the data with columns sim_1..sim_N as CSV."""
    from lmmcli.errors import UsageError
    from lmmcli.predict.simulate import sim_columns, simulate_model

    if formula is None:
        raise UsageError("give DATA and FORMULA to simulate from a fitted model")
    fm, df = read_and_fit(data, formula, ml, factor, ref)
    sims = simulate_model(fm, nsim, seed, use_u)
    cols = sim_columns(sims, fm.design.rows, len(df), taken=set(map(str, df.columns)))
    _write_csv(df.to_pandas().assign(**cols), output, inputs=(data,))
    echo_warnings(fm.result().warnings, strict)


@app.command()
def simulate(
    data: Optional[str] = typer.Argument(None, help="with FORMULA: simulate new responses from this fitted model"),
    formula: Optional[str] = OptFormulaArg,
    nsim: int = typer.Option(1, "--nsim", help="from a model: number of simulated responses (sim_1..sim_N)"),
    use_u: bool = typer.Option(False, "--use-u", help="from a model: keep the fitted random effects "
                               "(lme4's use.u = TRUE) instead of drawing new ones"),
    groups: Optional[int] = typer.Option(None, "--groups", help="from a specification: number of groups"),
    per_group: Optional[int] = typer.Option(None, "--per-group", help="rows per group"),
    fixed: str = typer.Option("2 + 0.5*x", "--fixed", help="fixed part: intercept + coefficient*name terms; "
                              "each name is a standard normal predictor"),
    sd_group: Optional[float] = typer.Option(None, "--sd-group", help="sd of the random intercepts"),
    sd_resid: Optional[float] = typer.Option(None, "--sd-resid", help="sd of the residuals"),
    sd_slope: float = typer.Option(0.0, "--sd-slope", help="sd of random slopes on the first predictor"),
    cor: float = typer.Option(0.0, "--cor", help="correlation of random intercepts and slopes"),
    seed: Optional[int] = typer.Option(None, "--seed", help="random seed (same seed, same data)"),
    ml: bool = MlOpt,
    factor: Optional[List[str]] = FactorOpt,
    ref: Optional[List[str]] = RefOpt,
    output: Optional[Path] = OutputOpt,
    strict: bool = StrictOpt,
    delimiter: Optional[str] = DelimiterOpt,   # read by load_data (callback)
    decimal: str = DecimalOpt,
):
    """Simulate data as CSV: from a specification (--groups ... --sd-resid) or from a fitted model (DATA FORMULA)."""

    def body():
        from lmmcli.errors import UsageError

        spec_given = any(v is not None for v in (groups, per_group, sd_group, sd_resid)) or sd_slope or cor
        if data is not None and spec_given:
            raise UsageError("simulate either from DATA FORMULA or from --groups/--per-group/--sd-* options, not both")
        if spec_given and (ml or factor or ref or use_u or nsim != 1):
            # these only mean something for a fitted model; silently ignoring them would mislead
            raise UsageError("--nsim, --use-u, --ml, --factor and --ref are for simulating from DATA FORMULA, "
                             "not from a specification")
        if data is None:
            return _simulate_from_spec(groups, per_group, fixed, sd_group, sd_resid, sd_slope, cor, seed, output)
        _simulate_from_model(data, formula, nsim, seed, use_u, ml, factor, ref, output, strict)

    run_guarded(body)
