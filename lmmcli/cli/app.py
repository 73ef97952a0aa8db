"""The typer app, the options every command shares (declared once, as `Annotated` aliases) and the error
guard. The only place (with the command modules) that knows stdout, stderr and exit codes.

Exit codes: 0 ok, 1 a problem with the data, formula or fit, 2 a usage error, 3 a warning under --strict.
Heavy modules (numpy, pandas, scipy) are imported inside the commands so `lmm --help` starts fast.
"""

from __future__ import annotations

import sys

try:
    import functools
    from enum import Enum
    from pathlib import Path
    from typing import Annotated, List, Optional

    import typer

    from lmmcli.cli.help import LmmCommand, examples_epilog
    from lmmcli.cli.output import OutFormat, format_help
except KeyboardInterrupt:  # Ctrl-C while starting up (importing typer is most of the start): no traceback
    sys.stderr.write("error: interrupted\n")
    raise SystemExit(130)

app = typer.Typer(
    name="lmm",
    help="Fit and report linear mixed models with lme4's formulas: lmm fit data.csv \"y ~ x + (x|g)\"",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_STRICT = 3


class CiMethod(str, Enum):
    wald = "wald"
    profile = "profile"
    boot = "boot"


class DfMethod(str, Enum):
    satterthwaite = "satterthwaite"
    kenward_roger = "kenward-roger"
    residual = "residual"
    none = "none"


class IntervalKind(str, Enum):
    confidence = "confidence"
    prediction = "prediction"


# -- the shared arguments and options, declared once -----------------------------------------------
DataArg = Annotated[str, typer.Argument(metavar="DATA", show_default=False,
                                        help="CSV, TSV or Parquet file ('-' reads CSV from standard input)")]
FormulaArg = Annotated[str, typer.Argument(metavar="FORMULA", show_default=False,
                                           help='lme4 formula, e.g. "Reaction ~ Days + (Days | Subject)"')]
OptDataArg = Annotated[Optional[str], typer.Argument(metavar="DATA", show_default=False,
                                                     help="CSV, TSV or Parquet file the model is fitted to "
                                                          "(not with --model)")]
OptFormulaArg = Annotated[Optional[str], typer.Argument(metavar="FORMULA", show_default=False,
                                                        help="lme4 formula (not with --model)")]
Ml = Annotated[bool, typer.Option("--ml", help="fit by maximum likelihood instead of REML")]
Factor = Annotated[Optional[List[str]], typer.Option("--factor", metavar="COL", show_default=False,
                                                     help="treat this numeric column as a factor (repeatable)")]
Ref = Annotated[Optional[List[str]], typer.Option("--ref", metavar="COL=LEVEL", show_default=False,
                                                  help="reference level of a factor (repeatable)")]
Output = Annotated[Optional[Path], typer.Option("--output", "-o", metavar="FILE", show_default=False,
                                                help="write the output to this file (atomically)")]
Strict = Annotated[bool, typer.Option("--strict", help="exit with code 3 if the fit has any warning")]
Level = Annotated[float, typer.Option("--level", help="level of the intervals")]
Model = Annotated[Optional[Path], typer.Option("--model", metavar="FILE", show_default=False,
                                               help="a saved model (lmm fit ... --save FILE): no data, no refit")]
FormatOpt = Annotated[Optional[OutFormat], typer.Option("--format", "-f", show_default=False,
                                                       help=format_help(OutFormat.table))]
CsvFormatOpt = Annotated[Optional[OutFormat], typer.Option("--format", "-f", show_default=False,
                                                          help=format_help(OutFormat.csv))]
Seed = Annotated[Optional[int], typer.Option("--seed", show_default=False,
                                             help="random seed (same seed, same result)")]


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


def guarded(fn):
    """A command body whose user errors become one clean message and an exit code, never a traceback."""

    @functools.wraps(fn)
    def command(*args, **kwargs):
        from lmmcli.errors import LmmError

        try:
            return fn(*args, **kwargs)
        except LmmError as exc:
            raise typer.Exit(report_error(exc))
        except KeyboardInterrupt:
            sys.stderr.write("error: interrupted\n")
            raise typer.Exit(130)
        except MemoryError:
            sys.stderr.write("error: out of memory; try a smaller model or fewer rows\n")
            raise typer.Exit(1)

    return command


def command(name: str | None = None, examples: tuple[str, ...] = (), **kwargs):
    """Register a guarded command on the app: `@command(examples=...)` over a plain function of its options."""
    return lambda fn: app.command(name, **command_settings(examples), **kwargs)(guarded(fn))


def command_settings(examples) -> dict:
    """What every command is registered with: lmm's help layout and its Examples section."""
    return {"cls": LmmCommand, "epilog": examples_epilog(list(examples)) if examples else None}


def _print_version(value: bool) -> None:
    if value:
        import platform

        from lmmcli import __version__

        sys.stdout.write(f"lmm {__version__} (Python {platform.python_version()})\n")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="print lmm's version and exit")] = False,
):
    """lmm: linear mixed models from the command line (lme4's formulas, REML/ML, lmerTest-style inference)."""
