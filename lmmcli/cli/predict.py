"""`lmm predict`, `lmm ranef`, `lmm coef`: using a fitted or saved model."""

from __future__ import annotations

import sys
from typing import Annotated, List, Optional

import typer

from lmmcli.cli.app import (Contrasts, CsvFormatOpt, Decimal, Delimiter, Engine, Factor, FormatOpt, IntervalKind,
                            Level, MemoryLimit, Ml, Model, OptDataArg, OptFormulaArg, Output, Ref, SparkMaster,
                            Strict, Threads, app, command, command_settings, guarded)
from lmmcli.cli.common import echo_warnings, engine_options, load_data, model_state, source_name, stderr_is_terminal
from lmmcli.cli.glmm import Family, Link, Nagq, Type, Weights, glmm_options
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
    family: Family = None,
    link: Link = None,
    nagq: Nagq = 1,
    weights: Weights = None,
    contrasts: Contrasts = None,
    type: Type = None,
    delimiter: Delimiter = None,    # both read by common.load_data (their callbacks)
    decimal: Decimal = ".",
    engine: Engine = "auto",
    threads: Threads = None,
    memory_limit: MemoryLimit = None,
    spark_master: SparkMaster = None,
):
    """Predictions (lme4's predict) for the fitting rows or --newdata, one per input row in input order.
    With --engine duckdb or spark the rows are streamed: read, predicted and written batch by batch."""
    from lmmcli.aggregate.choose import choose_engine
    from lmmcli.predict.predict import predict as run_predict

    fmt = choose_format(format, output, OutFormat.csv)
    eng = engine_options(engine, threads, memory_limit, spark_master)
    state, warnings, frame = model_state(data, formula, model, ml, factor, ref,
                                         glmm_options(family, link, nagq, weights), eng,
                                         weights if family is None else None, contrasts)
    rows_path = newdata or data
    if frame is None and rows_path is not None and (reader := choose_engine(rows_path, engine)) != "memory":
        stream_predictions(state, rows_path, reader, eng, population, interval.value if interval else None, level,
                           tuple(keep or ()), fmt, output)
        return echo_warnings(warnings, strict)
    df, source, path = rows_to_predict(data, model, newdata, frame)
    p = run_predict(state, df, population=population, interval=interval.value if interval else None,
                    level=level, keep=tuple(keep or ()), source=source)
    if type is not None:
        from lmmcli.cli.glmm import on_scale

        on_scale(p, state, type)
    write(predictions_shown(p), fmt, output, inputs=(path,))
    prediction_notes(p, fmt == OutFormat.json and is_stdout(output))
    echo_warnings(warnings, strict)


def stream_predictions(state, path: str, reader: str, eng, population, interval, level, keep, fmt, output) -> None:
    """Predict the rows of PATH batch by batch as the engine `reader` (duckdb or spark) reads them,
    writing CSV (stdout or -o) or -o FILE.parquet."""
    from lmmcli.predict import stream as predict_stream
    from lmmcli.aggregate.choose import make_runner
    from lmmcli.errors import UsageError
    from lmmcli.io.write import atomic_write
    from lmmcli.predict.predict import needed_columns
    from lmmcli.predict.stream import prediction_batches, write_tables

    if fmt not in (OutFormat.csv, OutFormat.parquet):
        raise UsageError("streamed predictions are written as CSV or Parquet", hint="use -f csv, or -o FILE.parquet")
    runner = make_runner(reader, path, eng)
    try:
        need_z = not population or interval == "prediction"
        cols = needed_columns(state.spec, population, need_z)
        cols += [k for k in keep if k not in cols]
        counts: dict = {}
        tables = prediction_batches(state, runner.batches(cols, predict_stream.BATCH_ROWS), population, interval,
                                    level, keep, source_name(path), counts)
        if stderr_is_terminal():
            tables = predict_stream.counted(tables, lambda n: sys.stderr.write(f"\rpredicted {n:,} rows"))
        parquet = fmt == OutFormat.parquet
        if is_stdout(output):
            write_tables(tables, sys.stdout.buffer, parquet)
        else:
            atomic_write(str(output), lambda fh: write_tables(tables, fh, parquet), (path,))
    finally:
        runner.close()
        if stderr_is_terminal():
            sys.stderr.write("\r\033[K")
    if counts.get("n_missing"):
        sys.stderr.write(f"note: {counts['n_missing']} row(s) have missing values in columns the prediction "
                         "needs; their prediction is empty (null)\n")
    if counts.get("n_new_level"):
        sys.stderr.write(f"note: {counts['n_new_level']} row(s) have group levels not seen in fitting; they get "
                         "the population value for those terms (new_level = true)\n")


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
        from lmmcli.predict.ranef import effects

        fmt = choose_format(format, output, OutFormat.table)
        eng = engine_options(engine, threads, memory_limit, spark_master)
        state, warnings, _ = model_state(data, formula, model, ml, factor, ref,
                                         glmm_options(family, link, nagq, weights), eng,
                                         weights if family is None else None, contrasts)
        if kind == "ranef" and fmt == OutFormat.parquet and not is_stdout(output):
            import pyarrow.parquet as pq

            from lmmcli.io.write import atomic_write
            from lmmcli.predict.stream import ranef_table

            table = ranef_table(state, level)     # columnar: a million levels without a row object each
            atomic_write(str(output), lambda fh: pq.write_table(table, fh), (data,) if data else ())
        else:
            write(effects_shown(effects(state, kind, level)), fmt, output, inputs=(data,))
        echo_warnings(warnings, strict)

    return guarded(run)


app.command("ranef", help="Random effects: conditional modes, conditional sds and intervals "
                          "(lme4's ranef(condVar = TRUE)).",
            **command_settings(RANEF_EXAMPLES))(effects_command("ranef"))
app.command("coef", help="Group-specific coefficients, fixed + random effects (lme4's coef()), "
                         "with approximate intervals.",
            **command_settings(COEF_EXAMPLES))(effects_command("coef"))
