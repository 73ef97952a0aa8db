"""`lmm predict`, `lmm ranef`, `lmm coef`: using a fitted or saved model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from lmmcli.cli.app import (Engine, Factor, IntervalKind, Level, MemoryLimit, Ml, Model, OptDataArg, OptFormulaArg,
                            Output, PredictFormat, Ref, RowsFormat, SparkMaster, Strict, Threads, app, command, guarded)
from lmmcli.cli.common import (echo_warnings, emit, engine_options, load_data, model_state, source_name,
                               terminal_width, use_color)


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
    format: Annotated[PredictFormat, typer.Option(
        "--format", "-f", help="csv or json; -o FILE.parquet writes Parquet")] = PredictFormat.csv,
    output: Output = None,
    strict: Strict = False,
    engine: Engine = "auto",
    threads: Threads = None,
    memory_limit: MemoryLimit = None,
    spark_master: SparkMaster = None,
):
    """Predictions (lme4's predict) for the fitting rows or --newdata, one per input row in input order.
    With --engine duckdb the rows are streamed: read, predicted and written batch by batch."""
    from lmmcli.aggregate.choose import choose_engine
    from lmmcli.predict.predict import predict as run_predict

    eng = engine_options(engine, threads, memory_limit, spark_master)
    state, warnings, frame = model_state(data, formula, model, ml, factor, ref, eng)
    rows_path = newdata or data
    if frame is None and rows_path is not None and choose_engine(rows_path, engine) != "memory":
        stream_predictions(state, rows_path, eng, population, interval.value if interval else None, level,
                           tuple(keep or ()), format, output)
        return echo_warnings(warnings, strict)
    df, source, path = rows_to_predict(data, model, newdata, frame)
    p = run_predict(state, df, population=population, interval=interval.value if interval else None,
                    level=level, keep=tuple(keep or ()), source=source)
    emit_predictions(p, format, output, inputs=(path,))
    prediction_notes(p, format == PredictFormat.json and output is None)
    echo_warnings(warnings, strict)


def stream_predictions(state, path: str, eng, population, interval, level, keep, format, output) -> None:
    """Predict the rows of PATH batch by batch through DuckDB, writing CSV (stdout or -o) or -o FILE.parquet."""
    from lmmcli.aggregate.choose import make_runner
    from lmmcli.errors import UsageError
    from lmmcli.io.read import PARQUET_EXT
    from lmmcli.io.write import atomic_write
    from lmmcli.predict.predict import needed_columns
    from lmmcli import predict_stream
    from lmmcli.predict_stream import prediction_batches, write_tables

    if format == PredictFormat.json:
        raise UsageError("streamed predictions are written as CSV or Parquet, not JSON",
                         hint="use -f csv, or -o FILE.parquet")
    runner = make_runner("duckdb", path, eng)
    try:
        need_z = not population or interval == "prediction"
        cols = needed_columns(state.spec, population, need_z)
        cols += [k for k in keep if k not in cols]
        counts: dict = {}
        tables = prediction_batches(state, runner.batches(cols, predict_stream.BATCH_ROWS), population, interval, level, keep,
                                    source_name(path), counts)
        parquet = output is not None and output.suffix.lower() in PARQUET_EXT
        if output is None:
            write_tables(tables, sys.stdout.buffer, parquet=False)
        else:
            atomic_write(str(output), lambda fh: write_tables(tables, fh, parquet), (path,))
    finally:
        runner.close()
    if counts.get("n_missing"):
        sys.stderr.write(f"note: {counts['n_missing']} row(s) have missing values in columns the prediction "
                         "needs; their prediction is empty (null)\n")
    if counts.get("n_new_level"):
        sys.stderr.write(f"note: {counts['n_new_level']} row(s) have group levels not seen in fitting; they get "
                         "the population value for those terms (new_level = true)\n")


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
        format: Annotated[RowsFormat, typer.Option("--format", "-f", help="table, json or csv; -o FILE.parquet "
                                                   "writes Parquet (ranef)")] = RowsFormat.table,
        output: Output = None,
        strict: Strict = False,
        engine: Engine = "auto",
        threads: Threads = None,
        memory_limit: MemoryLimit = None,
        spark_master: SparkMaster = None,
    ):
        from lmmcli.io.read import PARQUET_EXT
        from lmmcli.predict.ranef import effects

        eng = engine_options(engine, threads, memory_limit, spark_master)
        state, warnings, _ = model_state(data, formula, model, ml, factor, ref, eng)
        if kind == "ranef" and output is not None and output.suffix.lower() in PARQUET_EXT:
            import pyarrow.parquet as pq

            from lmmcli.io.write import atomic_write
            from lmmcli.predict_stream import ranef_table

            table = ranef_table(state, level)
            atomic_write(str(output), lambda fh: pq.write_table(table, fh), (data,) if data else ())
        else:
            emit_effects(effects(state, kind, level), format, output, inputs=(data,))
        echo_warnings(warnings, strict)

    return guarded(command)


app.command("ranef", help="Random effects: conditional modes, conditional sds and intervals "
                          "(lme4's ranef(condVar = TRUE)).")(effects_command("ranef"))
app.command("coef", help="Group-specific coefficients, fixed + random effects (lme4's coef()), "
                         "with approximate intervals.")(effects_command("coef"))
