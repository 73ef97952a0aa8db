"""What the commands share after parsing: reading DATA, fitting DATA FORMULA, a saved model, writing to stdout
or -o, warnings and notes on stderr, the terminal's width and colour, the progress bar."""

from __future__ import annotations

import sys
from contextlib import closing, contextmanager, nullcontext
from pathlib import Path
from typing import List, Optional

import typer

from lmmcli.cli.app import EXIT_STRICT


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


def note(message: str) -> None:
    """A note for the user on stderr (never mixed into the output)."""
    sys.stderr.write(f"note: {message}\n")


def echo_warnings(warnings, strict: bool) -> None:
    """Warnings go to stderr too; under --strict any warning (the data's included) ends the run with code 3."""
    from lmmcli.cli.app import DATA_WARNINGS

    for w in warnings:
        sys.stderr.write(f"warning: {w}\n")
    if strict and (warnings or DATA_WARNINGS):
        raise typer.Exit(EXIT_STRICT)


def source_name(data: str) -> str:
    """How messages name the data: the file's name, or 'standard input' for '-'."""
    return "standard input" if data == "-" else Path(data).name


def load_data(data: str):
    """Read the data file; (data frame, its name for messages). An encoding fallback is noted on stderr."""
    from lmmcli.cli.app import DIALECT
    from lmmcli.io.read import read_table
    from lmmcli.io.text import Dialect

    df = read_table(data, dialect=Dialect(DIALECT["delimiter"], DIALECT["decimal"]))
    encoding_note = df.attrs.get("encoding_note")
    if encoding_note:
        note(encoding_note)
    from lmmcli.cli.app import DATA_WARNINGS

    for line in read_warnings(df, source_name(data)):
        sys.stderr.write(line)
        if line.startswith("warning:"):
            DATA_WARNINGS.append(line)
    return df, source_name(data)


def read_warnings(df, name: str) -> list[str]:
    """Lines for stderr about columns that did not read as they look: numbers made text by a few odd
    values, columns of a type lmm cannot read (left out)."""
    from lmmcli.io.text import decimal_commas

    out = []
    for col, odd in df.attrs.get("numeric_text", {}).items():
        shown = ", ".join(f"'{v}'" for v in odd)
        fix = "give --decimal , to read decimal commas" if decimal_commas(odd) else \
            "write missing values as NA or leave them empty"
        out.append(f"warning: column '{col}' of {name} looks numeric, but values such as {shown} are not "
                   f"numbers, so it is read as text (a factor); {fix}\n")
    for col, why in df.attrs.get("unreadable", {}).items():
        out.append(f"note: column '{col}' of {name} has a type lmm cannot read ({why}); it is left out\n")
    return out


def parse_contrasts(items: Optional[List[str]]) -> dict:
    """--contrasts KIND or COL=KIND (R's contr.KIND spelling too) as {COL or "": KIND}."""
    from lmmcli.design.transforms import CONTRASTS
    from lmmcli.errors import UsageError

    out = {}
    for item in items or []:
        col, sep, kind = item.rpartition("=")
        kind = kind.removeprefix("contr.")
        if kind not in CONTRASTS or (sep and not col):
            raise UsageError(f"--contrasts expects KIND or COL=KIND with KIND one of {', '.join(CONTRASTS)}, "
                             f"got '{item}'")
        out[col] = kind
    return out


def read_and_fit(data: str, formula: str, ml: bool, factor, ref, engine=None, weights: Optional[str] = None,
                 contrasts=None):
    """(FittedModel, data frame): the one path of every command that fits DATA FORMULA. The formula
    and --ref are checked before the data is read, so their mistakes are reported first. With an
    aggregation engine (engine: aggregate.choose.EngineOptions) the rows are never loaded: the frame is None."""
    import lmmcli.fit
    from lmmcli.formula import parse_formula

    parsed = parse_formula(formula)
    refs = parse_refs(ref)
    runner = aggregation_runner(data, engine, weights, contrasts)
    if runner is not None:
        from lmmcli.fit_scale import fit_source

        with closing(runner):
            return fit_source(parsed.text, runner, reml=not ml, factors=tuple(factor or ()), refs=refs,
                              source=source_name(data)), None
    coding = parse_contrasts(contrasts)
    df, source = load_data(data)
    fm = lmmcli.fit.fit(parsed.text, df, reml=not ml, factors=tuple(factor or ()), refs=refs, source=source,
                        weights=weights, contrasts=coding)
    return fm, df


def aggregation_runner(data: str, engine, weights=None, contrasts=None):
    """The runner of the aggregation engine that reads DATA (engine: aggregate.choose.EngineOptions), or
    None when the rows are read into memory (--engine memory, or auto's choice, or no engine options)."""
    if engine is None:
        return None
    from lmmcli.aggregate.choose import choose_engine, make_runner

    name = choose_engine(data, engine.engine)
    if name == "memory":
        return None
    if weights or contrasts:
        from lmmcli.errors import UsageError

        raise UsageError(f"--weights and --contrasts are not available with --engine {name}",
                         hint="use --engine memory")
    return make_runner(name, data, engine)


def engine_options(engine: str, threads, memory_limit, spark_master):
    """The shared engine options as one value for read_and_fit (with the --delimiter/--decimal dialect)."""
    from lmmcli.aggregate.choose import EngineOptions
    from lmmcli.cli.app import DIALECT
    from lmmcli.io.text import Dialect

    return EngineOptions(engine, threads, memory_limit, spark_master, Dialect(DIALECT["delimiter"], DIALECT["decimal"]))


def use_color(output: Optional[Path]) -> bool:
    """Colour only for a terminal on stdout, never in files or pipes."""
    return output is None and sys.stdout.isatty()


def terminal_width() -> int:
    """The terminal's width when printing to one, else a fixed 100 columns for files and pipes."""
    import shutil

    return shutil.get_terminal_size((100, 24)).columns if sys.stdout.isatty() else 100


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def _bar(label: str, total: int):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done, _total: bar.update(task, completed=done)


def progress_bar(label: str, total: int, show: bool = True):
    """A context giving a progress callback(done, total) drawn on stderr (rich), or None: only when show is
    true and stderr is a terminal."""
    if show and stderr_is_terminal():
        return _bar(label, total)
    return nullcontext(None)


# -- saved models ----------------------------------------------------------------------------------
def save_model(fm, path: Path, data: str, frame=None) -> None:
    """Write the fitted model as versioned JSON (atomically); with the fitting data frame, also the section
    `lmm anova|emmeans --model` read. '-' is standard output (the report then goes to -o FILE:
    check_outputs refuses both on stdout)."""
    from lmmcli.predict.predict import state_from_fit

    extra = {}
    if frame is not None:
        from lmmcli.predict.saved_analysis import analysis_section

        extra = analysis_section(fm, frame)
    save_state(state_from_fit(fm), path, data, extra)


def save_state(state, path: Path, data: str, extra: dict | None = None) -> None:
    """Write a ModelState (lmer's or glmer's) as versioned JSON to PATH, atomically; '-' is standard output."""
    from lmmcli.io.write import write_text
    from lmmcli.predict.saved_model import dumps

    text = dumps(state, extra or {})
    if str(path) == "-":
        sys.stdout.write(text)
        return
    write_text(str(path), text, inputs=(data,))


def model_state(data, formula, model, ml, factor, ref, glmm: dict | None = None, engine=None, weights=None,
                contrasts=None):
    """(ModelState, fit warnings, (data frame, name, path) of the fitting data or None): from a saved
    model, or by fitting DATA FORMULA (the data is read once, so '-' works). A saved model keeps its
    fit's warnings, so --strict means the same with --model as without. glmm: the --family, --link,
    --nagq and --weights options (lmmcli.cli.glmm.glmm_options), for a GLMM."""
    from lmmcli.errors import UsageError

    if glmm and model is None:
        from lmmcli.cli.glmm import glmm_state, refuse_aggregation

        if engine is not None:
            refuse_aggregation(engine.engine)
        return glmm_state(data, formula, factor, ref, glmm, contrasts)

    if model is not None:
        if formula is not None or ml or factor or ref or weights or contrasts:
            raise UsageError("with --model, give no FORMULA, --ml, --factor, --ref, --weights or --contrasts: "
                             "the saved model fixes them")
        from lmmcli.predict.saved_model import load

        state, frame = load(str(model)), None
    else:
        if data is None or formula is None:
            raise UsageError("give DATA and FORMULA to fit, or --model FILE for a saved model")
        from lmmcli.predict.predict import state_from_fit

        fm, df = read_and_fit(data, formula, ml, factor, ref, engine, weights, contrasts)
        state, frame = state_from_fit(fm), (None if df is None else (df, source_name(data), data))
    return state, state.summary.get("warnings", []), frame
