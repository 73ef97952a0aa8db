"""The typer app and what every command shares: options declared once, the error guard, reading and fitting
DATA FORMULA, writing to stdout or -o, warnings on stderr. The only place (with the command modules) that knows
stdout, stderr and exit codes.

Exit codes: 0 ok, 1 a problem with the data, formula or fit, 2 a usage error, 3 a warning under --strict.
Heavy modules (numpy, pandas, scipy) are imported inside the commands so `lmm --help` starts fast.
"""

from __future__ import annotations

import sys

try:
    from contextlib import contextmanager
    from enum import Enum
    from pathlib import Path
    from typing import List, Optional

    import typer
except KeyboardInterrupt:  # Ctrl-C while starting up (importing typer is most of the start): no traceback
    sys.stderr.write("error: interrupted\n")
    raise SystemExit(130)

app = typer.Typer(
    name="lmm",
    help="Fit and report linear mixed models with lme4's formulas: lmm fit data.csv \"y ~ x + (x|g)\"",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_STRICT = 3


class Format(str, Enum):
    table = "table"
    json = "json"


class CiMethod(str, Enum):
    wald = "wald"
    profile = "profile"
    boot = "boot"


class DfMethod(str, Enum):
    satterthwaite = "satterthwaite"
    kenward_roger = "kenward-roger"
    residual = "residual"
    none = "none"


class RowsFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class PredictFormat(str, Enum):
    csv = "csv"
    json = "json"


class IntervalKind(str, Enum):
    confidence = "confidence"
    prediction = "prediction"


# -- shared argument definitions ------------------------------------------------------------------
DataArg = typer.Argument(..., help="CSV, TSV or Parquet file ('-' reads CSV from standard input)")
FormulaArg = typer.Argument(..., help='lme4 formula, e.g. "Reaction ~ Days + (Days | Subject)"')
MlOpt = typer.Option(False, "--ml", help="fit by maximum likelihood instead of REML")
FactorOpt = typer.Option(None, "--factor", help="treat this numeric column as a factor (repeatable)")
RefOpt = typer.Option(None, "--ref", help="reference level of a factor, COL=LEVEL (repeatable)")
OutputOpt = typer.Option(None, "--output", "-o", help="write the output to this file (atomically)")
StrictOpt = typer.Option(False, "--strict", help="exit with code 3 if the fit has any warning")
EngineOpt = typer.Option("auto", "--engine", help="who reads and aggregates the rows: memory, duckdb (data bigger "
                         "than memory; globs, directories of parts), spark, or auto (memory when the data fits "
                         "comfortably, else duckdb)")
ThreadsOpt = typer.Option(None, "--threads", help="--engine duckdb: number of threads")
MemoryLimitOpt = typer.Option(None, "--memory-limit", help="--engine duckdb: memory limit, e.g. 2GB (spills to disk)")
SparkMasterOpt = typer.Option(None, "--spark-master", help="--engine spark: the Spark master (default local[*])")


# -- errors --------------------------------------------------------------------------------------
def _caret(text: str, span) -> str:
    """The formula with a caret line under span."""
    start, end = span
    end = max(end, start + 1)
    return f"  {text}\n  {' ' * start}{'^' * (end - start)}\n"


def report_error(exc) -> int:
    """Print an LmmError as 'error: ...' (+ caret, + hint) on stderr; return its exit code."""
    msg = f"error: {exc.message}\n"
    text, span = getattr(exc, "text", None), getattr(exc, "span", None)
    if text and span:
        msg += _caret(text, span)
    if exc.hint:
        msg += f"hint: {exc.hint}\n"
    sys.stderr.write(msg)
    return exc.exit_code


def run_guarded(fn):
    """Run a command body; user errors become one clean message and an exit code, never a traceback."""
    from lmmcli.errors import LmmError

    try:
        return fn()
    except LmmError as exc:
        raise typer.Exit(report_error(exc))
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        raise typer.Exit(130)
    except MemoryError:
        sys.stderr.write("error: out of memory; try a smaller model or fewer rows\n")
        raise typer.Exit(1)


def parse_refs(refs: Optional[List[str]]) -> dict:
    """--ref COL=LEVEL options as a dict."""
    from lmmcli.errors import UsageError

    out = {}
    for item in refs or []:
        col, sep, level = item.partition("=")
        if not sep or not col:
            raise UsageError(f"--ref expects COL=LEVEL, got '{item}'")
        out[col] = level
    return out


def emit(text: str, output: Optional[Path], inputs=()) -> None:
    """Write text to stdout, or atomically to the output file."""
    if output is None:
        sys.stdout.write(text)
        return
    from lmmcli.io.write import write_text

    write_text(str(output), text, inputs)


def echo_warnings(warnings, strict: bool) -> None:
    """Warnings go to stderr too; under --strict any warning ends the run with code 3."""
    for w in warnings:
        sys.stderr.write(f"warning: {w}\n")
    if strict and warnings:
        raise typer.Exit(EXIT_STRICT)


def read_and_fit(data: str, formula: str, ml: bool, factor, ref, engine=None):
    """(FittedModel, data frame): the one path of every command that fits DATA FORMULA. The formula
    and --ref are checked before the data is read, so their mistakes are reported first. With an
    aggregation engine (engine: aggregate.choose.EngineOptions) the rows are never loaded: the frame is None."""
    from lmmcli.fit import fit
    from lmmcli.formula import parse_formula

    parsed = parse_formula(formula)
    refs = parse_refs(ref)
    if engine is not None:
        from lmmcli.aggregate.choose import choose_engine, make_runner

        name = choose_engine(data, engine.engine)
        if name != "memory":
            from lmmcli.fit_scale import fit_source

            runner = make_runner(name, data, engine)
            try:
                return fit_source(parsed.text, runner, reml=not ml, factors=tuple(factor or ()), refs=refs,
                                  source=source_name(data)), None
            finally:
                runner.close()
    df, source = load_data(data)
    fm = fit(parsed.text, df, reml=not ml, factors=tuple(factor or ()), refs=refs, source=source)
    fm.engine = "memory"
    return fm, df


def engine_options(engine: str, threads, memory_limit, spark_master):
    """The shared engine options as one value for read_and_fit."""
    from lmmcli.aggregate.choose import EngineOptions

    return EngineOptions(engine, threads, memory_limit, spark_master)


def source_name(data: str) -> str:
    """How messages name the data: the file's name, or 'standard input' for '-'."""
    return "standard input" if data == "-" else Path(data).name


def load_data(data: str):
    """Read the data file; (data frame, its name for messages). An encoding fallback is noted on stderr."""
    from lmmcli.io.read import read_table

    df = read_table(data)
    note = df.attrs.get("encoding_note")
    if note:
        sys.stderr.write(f"note: {note}\n")
    return df, source_name(data)


def emit_report(result, format: Format, table, output: Optional[Path], data: str, strict: bool) -> None:
    """A result (FitResult, LmResult, CompareResult) as JSON or as table(result, width, color); then its
    warnings on stderr."""
    from lmmcli.render import tables as render

    if format == Format.json:
        text = render.to_json(result.to_dict())
    else:
        text = table(result, width=terminal_width(), color=use_color(output))
    emit(text, output, inputs=(data,))
    echo_warnings(result.warnings, strict)


def use_color(output: Optional[Path]) -> bool:
    """Colour only for a terminal on stdout, never in files or pipes."""
    return output is None and sys.stdout.isatty()


def terminal_width() -> int:
    """The terminal's width when printing to one, else a fixed 100 columns for files and pipes."""
    import shutil

    return shutil.get_terminal_size((100, 24)).columns if sys.stdout.isatty() else 100


@contextmanager
def progress_bar(label: str, total: int):
    """A progress callback(done, total) drawn on stderr when it is a terminal (rich), silent otherwise."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done, _total: bar.update(task, completed=done)


# -- commands ------------------------------------------------------------------------------------
@app.callback()
def root():
    """lmm: linear mixed models from the command line (lme4's formulas, REML/ML, lmerTest-style inference)."""


# -- saved models, predictions, random effects (lmmcli.predict.predict, lmmcli.predict.ranef, lmmcli.predict.saved_model) -------
ModelOpt = typer.Option(None, "--model", help="a saved model (lmm fit ... --save FILE): no data, no refit")
LevelOpt = typer.Option(0.95, "--level", help="level of the intervals")
OptDataArg = typer.Argument(None, help="CSV, TSV or Parquet file the model is fitted to (not with --model)")
OptFormulaArg = typer.Argument(None, help="lme4 formula (not with --model)")


def save_model(fm, path: Path, data: str) -> None:
    """Write the fitted model as versioned JSON (atomically)."""
    from lmmcli.predict.saved_model import dumps
    from lmmcli.io.write import write_text
    from lmmcli.predict.predict import state_from_fit

    write_text(str(path), dumps(state_from_fit(fm)), inputs=(data,))


def model_state(data, formula, model, ml, factor, ref):
    """(ModelState, fit warnings, (data frame, name, path) of the fitting data or None): from a saved
    model, or by fitting DATA FORMULA (the data is read once, so '-' works). A saved model keeps its
    fit's warnings, so --strict means the same with --model as without."""
    from lmmcli.errors import UsageError

    if model is not None:
        if formula is not None or ml or factor or ref:
            raise UsageError("with --model, give no FORMULA, --ml, --factor or --ref: the saved model fixes them")
        from lmmcli.predict.saved_model import load

        state, frame = load(str(model)), None
    else:
        if data is None or formula is None:
            raise UsageError("give DATA and FORMULA to fit, or --model FILE for a saved model")
        from lmmcli.predict.predict import state_from_fit

        fm, df = read_and_fit(data, formula, ml, factor, ref)
        state, frame = state_from_fit(fm), (df, source_name(data), data)
    return state, state.summary.get("warnings", []), frame
