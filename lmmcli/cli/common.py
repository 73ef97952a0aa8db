"""What the commands share after parsing: reading DATA, fitting DATA FORMULA, a saved model, writing to stdout
or -o, warnings and notes on stderr, the terminal's width and colour, the progress bar."""

from __future__ import annotations

import sys
from contextlib import contextmanager, nullcontext
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
    """Warnings go to stderr too; under --strict any warning ends the run with code 3."""
    for w in warnings:
        sys.stderr.write(f"warning: {w}\n")
    if strict and warnings:
        raise typer.Exit(EXIT_STRICT)


def source_name(data: str) -> str:
    """How messages name the data: the file's name, or 'standard input' for '-'."""
    return "standard input" if data == "-" else Path(data).name


def load_data(data: str):
    """Read the data file; (data frame, its name for messages). An encoding fallback is noted on stderr."""
    from lmmcli.io.read import read_table

    df = read_table(data)
    encoding_note = df.attrs.get("encoding_note")
    if encoding_note:
        note(encoding_note)
    return df, source_name(data)


def read_and_fit(data: str, formula: str, ml: bool, factor, ref):
    """(FittedModel, data frame): the one path of every command that fits DATA FORMULA. The formula
    and --ref are checked before the data is read, so their mistakes are reported first."""
    import lmmcli.fit
    from lmmcli.formula import parse_formula

    parsed = parse_formula(formula)
    refs = parse_refs(ref)
    df, source = load_data(data)
    fm = lmmcli.fit.fit(parsed.text, df, reml=not ml, factors=tuple(factor or ()), refs=refs, source=source)
    return fm, df


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
    `lmm anova|emmeans --model` read."""
    from lmmcli.io.write import write_text
    from lmmcli.predict.predict import state_from_fit
    from lmmcli.predict.saved_model import dumps

    extra = {}
    if frame is not None:
        from lmmcli.predict.saved_analysis import analysis_section

        extra = analysis_section(fm, frame)
    write_text(str(path), dumps(state_from_fit(fm), extra), inputs=(data,))


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


def emit(text: str, output: Optional[Path], inputs=()) -> None:
    """Text already rendered, to stdout (no -o, or -o -) or atomically to the file."""
    if output is None or str(output) == "-":
        sys.stdout.write(text)
        return
    from lmmcli.io.write import write_text

    write_text(str(output), text, inputs)
