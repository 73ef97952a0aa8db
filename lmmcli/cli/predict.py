"""`lmm predict`, `lmm ranef`, `lmm coef`: using a fitted or saved model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from lmmcli.cli.app import (Contrasts, Factor, IntervalKind, Level, Ml, Model, OptDataArg, OptFormulaArg, Output,
                            PredictFormat, Ref, RowsFormat, Strict, Weights, app, command, guarded)
from lmmcli.cli.common import echo_warnings, emit, load_data, model_state, terminal_width, use_color


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


def emit_predictions(p, format, output: Optional[Path], inputs) -> None:
    """CSV (default) or JSON to stdout / -o FILE; -o FILE.parquet writes Parquet (atomically)."""
    from lmmcli.render import tables as render
    from lmmcli.io.read import PARQUET_EXT

    if output is not None and output.suffix.lower() in PARQUET_EXT:
        import pyarrow.parquet as pq

        from lmmcli.io.write import atomic_write
        from lmmcli.predict.predict import predictions_arrow

        table = predictions_arrow(p)
        atomic_write(str(output), lambda fh: pq.write_table(table, fh), inputs)
        return
    text = render.to_json(p.to_dict()) if format == PredictFormat.json else render.rows_to_csv(p.rows())
    emit(text, output, inputs)


@command()
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
    weights: Weights = None,
    contrasts: Contrasts = None,
    format: Annotated[PredictFormat, typer.Option(
        "--format", "-f", help="csv or json; -o FILE.parquet writes Parquet")] = PredictFormat.csv,
    output: Output = None,
    strict: Strict = False,
):
    """Predictions (lme4's predict) for the fitting rows or --newdata, one per input row in input order."""
    from lmmcli.predict.predict import predict as run_predict

    state, warnings, frame = model_state(data, formula, model, ml, factor, ref, weights, contrasts)
    df, source, path = rows_to_predict(data, model, newdata, frame)
    p = run_predict(state, df, population=population, interval=interval.value if interval else None,
                    level=level, keep=tuple(keep or ()), source=source)
    emit_predictions(p, format, output, inputs=(path,))
    prediction_notes(p, format == PredictFormat.json and output is None)
    echo_warnings(warnings, strict)


def emit_effects(effects, format: RowsFormat, output: Optional[Path], inputs) -> None:
    """A ranef.Effects report as a table, JSON or CSV."""
    from lmmcli.render import tables as render

    if format == RowsFormat.json:
        text = render.to_json(effects.to_dict())
    elif format == RowsFormat.csv:
        text = render.rows_to_csv(effects.records())
    else:
        text = render.effects_table(effects.rows, effects.title, effects.level, width=terminal_width(),
                                    color=use_color(output))
    emit(text, output, inputs)


def effects_command(kind: str):
    """The `lmm ranef` or `lmm coef` command: the same arguments and options, ranef.effects(kind)."""

    def command(
        data: OptDataArg = None,
        formula: OptFormulaArg = None,
        model: Model = None,
        level: Level = 0.95,
        ml: Ml = False,
        factor: Factor = None,
        ref: Ref = None,
        weights: Weights = None,
        contrasts: Contrasts = None,
        format: Annotated[RowsFormat, typer.Option("--format", "-f", help="table, json or csv")] = RowsFormat.table,
        output: Output = None,
        strict: Strict = False,
    ):
        from lmmcli.predict.ranef import effects

        state, warnings, _ = model_state(data, formula, model, ml, factor, ref, weights, contrasts)
        emit_effects(effects(state, kind, level), format, output, inputs=(data,))
        echo_warnings(warnings, strict)

    return guarded(command)


app.command("ranef", help="Random effects: conditional modes, conditional sds and intervals "
                          "(lme4's ranef(condVar = TRUE)).")(effects_command("ranef"))
app.command("coef", help="Group-specific coefficients, fixed + random effects (lme4's coef()), "
                         "with approximate intervals.")(effects_command("coef"))
