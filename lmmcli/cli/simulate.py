"""`lmm simulate`: data from a specification or from a fitted model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lmmcli.cli.app import Contrasts, Decimal, Delimiter, CsvFormatOpt, Factor, Ml, Output, Ref, Seed, Strict, command
from lmmcli.cli.common import echo_warnings, read_and_fit
from lmmcli.cli.glmm import Family, Link, Nagq, Weights, glmm_options
from lmmcli.cli.output import OutFormat, Shown, choose_format, write


def _write_columns(columns, fmt: OutFormat, output: Optional[Path], inputs=()) -> None:
    """A data frame (or a dict of columns) in the chosen format on stdout or atomically to the file."""
    import pandas as pd

    from lmmcli.render.tables import rows_table

    frame = pd.DataFrame(columns)
    rows = lambda: frame.to_dict("records")  # noqa: E731
    shown = Shown("lmm simulate", lambda: {"rows": rows()}, rows,
                  lambda width, color: rows_table(rows(), "Simulated data", width, color))
    write(shown, fmt, output, inputs)


def _simulate_from_spec(groups, per_group, fixed, sd_group, sd_resid, sd_slope, cor, seed, fmt, output):
    """`lmm simulate --groups ...`: the simulated columns as CSV."""
    from lmmcli.errors import UsageError
    from lmmcli.predict.simulate import SimSpec, parse_fixed, simulate_spec

    if groups is None or per_group is None or sd_group is None or sd_resid is None:
        raise UsageError("give DATA FORMULA to simulate from a fitted model, or a specification: "
                         "--groups, --per-group, --sd-group and --sd-resid (and --fixed)")
    spec = SimSpec(groups, per_group, parse_fixed(fixed), sd_group, sd_resid, sd_slope, cor)
    _write_columns(simulate_spec(spec, seed), fmt, output)


def _simulate_from_model(data, formula, nsim, seed, use_u, ml, factor, ref, fmt, output, strict, glmm=None,
                         weights=None, contrasts=None):
    """`lmm simulate DATA FORMULA`: the data with columns sim_1..sim_N as CSV (a GLMM's with glmm options)."""
    from lmmcli.errors import UsageError
    from lmmcli.predict.simulate import sim_columns, simulate_model

    if formula is None:
        raise UsageError("give DATA and FORMULA to simulate from a fitted model")
    if glmm is not None:
        from lmmcli.cli.glmm import read_and_fit_glmm
        from lmmcli.glmm.result import assemble
        from lmmcli.glmm.simulate import simulate_glmm

        fm, df, _ = read_and_fit_glmm(data, formula, factor, ref, glmm, contrasts)
        sims, warnings = simulate_glmm(fm, nsim, seed, use_u), assemble(fm).warnings
    else:
        fm, df = read_and_fit(data, formula, ml, factor, ref, weights=weights, contrasts=contrasts)
        sims, warnings = simulate_model(fm, nsim, seed, use_u), fm.result().warnings
    cols = sim_columns(sims, fm.design.rows, len(df), taken=set(map(str, df.columns)))
    import pandas as pd

    frame = df.to_pandas()
    # One concat, not assign: assign inserts column by column, and with hundreds of sim_ columns pandas
    # warns that the frame is fragmented (and copies it each time).
    _write_columns(pd.concat([frame, pd.DataFrame(cols, index=frame.index)], axis=1), fmt, output, inputs=(data,))
    echo_warnings(warnings, strict)


@command(examples=(
    'lmm simulate --groups 100 --per-group 3 --fixed "2 + 0.5*x" --sd-group 0.5 --sd-resid 0.25 --seed 1',
    'lmm simulate sleepstudy.csv "Reaction ~ Days + (Days|Subject)" --nsim 100 --seed 1 -o sims.parquet',
))
def simulate(
    data: Annotated[Optional[str], typer.Argument(
        metavar="DATA", show_default=False, help="with FORMULA: simulate new responses from this fitted model")] = None,
    formula: Annotated[Optional[str], typer.Argument(
        metavar="FORMULA", show_default=False, help="lme4 formula of the model to simulate from")] = None,
    nsim: Annotated[int, typer.Option(
        "--nsim", help="from a model: number of simulated responses (sim_1..sim_N)")] = 1,
    use_u: Annotated[bool, typer.Option(
        "--use-u", help="from a model: keep the fitted random effects (lme4's use.u = TRUE) instead of drawing "
                        "new ones")] = False,
    groups: Annotated[Optional[int], typer.Option(
        "--groups", show_default=False, help="from a specification: number of groups")] = None,
    per_group: Annotated[Optional[int], typer.Option("--per-group", show_default=False, help="rows per group")] = None,
    fixed: Annotated[str, typer.Option(
        "--fixed", help="fixed part: intercept + coefficient*name terms; each name is a standard normal "
                        "predictor")] = "2 + 0.5*x",
    sd_group: Annotated[Optional[float], typer.Option(
        "--sd-group", show_default=False, help="sd of the random intercepts")] = None,
    sd_resid: Annotated[Optional[float], typer.Option(
        "--sd-resid", show_default=False, help="sd of the residuals")] = None,
    sd_slope: Annotated[float, typer.Option("--sd-slope", help="sd of random slopes on the first predictor")] = 0.0,
    cor: Annotated[float, typer.Option("--cor", help="correlation of random intercepts and slopes")] = 0.0,
    seed: Seed = None,
    ml: Ml = False,
    factor: Factor = None,
    ref: Ref = None,
    format: CsvFormatOpt = None,
    output: Output = None,
    strict: Strict = False,
    family: Family = None,
    link: Link = None,
    nagq: Nagq = 1,
    weights: Weights = None,
    contrasts: Contrasts = None,
    delimiter: Delimiter = None,    # both read by common.load_data (their callbacks)
    decimal: Decimal = ".",
):
    """Simulate data (CSV by default): from a specification (--groups ... --sd-resid) or from a fitted model (DATA FORMULA)."""
    from lmmcli.errors import UsageError

    fmt = choose_format(format, output, OutFormat.csv)
    spec_given = any(v is not None for v in (groups, per_group, sd_group, sd_resid)) or sd_slope or cor
    if data is not None and spec_given:
        raise UsageError("simulate either from DATA FORMULA or from --groups/--per-group/--sd-* options, not both")
    if spec_given and (ml or factor or ref or use_u or nsim != 1):
        # these only mean something for a fitted model; silently ignoring them would mislead
        raise UsageError("--nsim, --use-u, --ml, --factor and --ref are for simulating from DATA FORMULA, "
                         "not from a specification")
    options = glmm_options(family, link, nagq, weights)
    if data is None:
        if options is not None:
            raise UsageError("--family simulates from a fitted GLMM: give DATA FORMULA")
        return _simulate_from_spec(groups, per_group, fixed, sd_group, sd_resid, sd_slope, cor, seed, fmt, output)
    _simulate_from_model(data, formula, nsim, seed, use_u, ml, factor, ref, fmt, output, strict, options,
                         weights, contrasts)
