"""`lmm predict`, `lmm ranef`, `lmm coef`: using a fitted or saved model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from lmmcli.cli.app import (CsvFormatOpt, Factor, FormatOpt, IntervalKind, Level, Ml, Model, OptDataArg, OptFormulaArg,
                            Output, Ref, Strict, app, command, command_settings, guarded)
from lmmcli.cli.common import echo_warnings, load_data, model_state
from lmmcli.cli.output import OutFormat, Shown, choose_format, is_stdout, write


def rows_to_predict(data, model, newdata, fitted_frame):
    """(data frame, its name, its path) of the rows to predict: --newdata, else the fitting data
    (with --model: DATA is the rows to predict)."""
    from lmmcli.errors import UsageError

    if model is not None and data is not None and newdata is not None:
        raise UsageError("with --model, give the rows to predict once: DATA or --newdata")
    if newdata is None and fitted_frame is not None:
        return fitted_frame
    path = newdata or data
    if path is None:
        raise UsageError("with --model, give the rows to predict: --newdata FILE")
    df, source = load_data(path)
    return df, source, path


def prediction_notes(p, to_json: bool) -> None:
    """Say on stderr which rows were not predicted, which had new levels, and how intervals were made."""
    if p.n_missing:
        sys.stderr.write(f"note: {p.n_missing} row(s) have missing values in columns the prediction needs; "
                         "their prediction is empty (null)\n")
    if p.n_new_level:
        sys.stderr.write(f"note: {p.n_new_level} row(s) have group levels not seen in fitting; they get the "
                         "population value for those terms (new_level = true)\n")
    if p.interval and not to_json:
        sys.stderr.write(f"note: {p.interval} intervals at level {p.level:g}: {p.interval_method}\n")


def predictions_shown(p) -> Shown:
    """Predictions in every format: one row per input row; the interval method in the Parquet metadata."""
    from lmmcli.render.tables import rows_table

    return Shown("lmm predict", p.to_dict, p.rows, lambda width, color: rows_table(p.rows(), "Predictions",
                                                                                  width, color),
                 metadata=p.header())


@command(examples=(
    'lmm predict sleepstudy.csv "Reaction ~ Days + (Days|Subject)" --keep Subject',
    'lmm predict sleepstudy.csv "Reaction ~ Days + (Days|Subject)" --newdata new.csv --interval prediction',
    "lmm predict --model model.json --newdata new.csv -o predictions.parquet",
))
def predict(
    data: OptDataArg = None,
    formula: OptFormulaArg = None,
    model: Model = None,
    newdata: Annotated[Optional[str], typer.Option(
        "--newdata", metavar="FILE", show_default=False, help="rows to predict (default: the fitting data)")] = None,
    population: Annotated[bool, typer.Option(
        "--population", help="population-level predictions, random effects at 0 (lme4's re.form = NA)")] = False,
    interval: Annotated[Optional[IntervalKind], typer.Option(
        "--interval", show_default=False, help="confidence (for the mean) or prediction (a new observation)")] = None,
    level: Level = 0.95,
    keep: Annotated[Optional[List[str]], typer.Option(
        "--keep", metavar="COL", show_default=False, help="carry this input column into the output (repeatable)")] = None,
    ml: Ml = False,
    factor: Factor = None,
    ref: Ref = None,
    format: CsvFormatOpt = None,
    output: Output = None,
    strict: Strict = False,
):
    """Predictions (lme4's predict) for the fitting rows or --newdata, one per input row in input order."""
    from lmmcli.predict.predict import predict as run_predict

    fmt = choose_format(format, output, OutFormat.csv)
    state, warnings, frame = model_state(data, formula, model, ml, factor, ref)
    df, source, path = rows_to_predict(data, model, newdata, frame)
    p = run_predict(state, df, population=population, interval=interval.value if interval else None,
                    level=level, keep=tuple(keep or ()), source=source)
    write(predictions_shown(p), fmt, output, inputs=(path,))
    prediction_notes(p, fmt == OutFormat.json and is_stdout(output))
    echo_warnings(warnings, strict)


RANEF_EXAMPLES = (
    'lmm ranef sleepstudy.csv "Reaction ~ Days + (Days|Subject)"',
    'lmm ranef sleepstudy.csv "Reaction ~ Days + (Days|Subject)" -o ranef.parquet',
    "lmm ranef --model model.json --format csv --level 0.9",
)
COEF_EXAMPLES = (
    'lmm coef sleepstudy.csv "Reaction ~ Days + (Days|Subject)"',
    'lmm coef sleepstudy.csv "Reaction ~ Days + (Days|Subject)" --format markdown',
)


def effects_shown(effects) -> Shown:
    """ranef/coef rows in every format."""
    from lmmcli.render.tables import effects_table

    return Shown(effects.title, effects.to_dict, effects.records,
                 lambda width, color: effects_table(effects.rows, effects.title, effects.level, width, color))


def effects_command(kind: str):
    """The `lmm ranef` or `lmm coef` command: the same arguments and options, ranef.effects(kind)."""

    def run(
        data: OptDataArg = None,
        formula: OptFormulaArg = None,
        model: Model = None,
        level: Level = 0.95,
        ml: Ml = False,
        factor: Factor = None,
        ref: Ref = None,
        format: FormatOpt = None,
        output: Output = None,
        strict: Strict = False,
    ):
        from lmmcli.predict.ranef import effects

        fmt = choose_format(format, output, OutFormat.table)
        state, warnings, _ = model_state(data, formula, model, ml, factor, ref)
        write(effects_shown(effects(state, kind, level)), fmt, output, inputs=(data,))
        echo_warnings(warnings, strict)

    return guarded(run)


app.command("ranef", help="Random effects: conditional modes, conditional sds and intervals "
                          "(lme4's ranef(condVar = TRUE)).",
            **command_settings(RANEF_EXAMPLES))(effects_command("ranef"))
app.command("coef", help="Group-specific coefficients, fixed + random effects (lme4's coef()), "
                         "with approximate intervals.",
            **command_settings(COEF_EXAMPLES))(effects_command("coef"))
