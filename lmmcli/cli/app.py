"""The typer app, the options every command shares (declared once, as `Annotated` aliases) and `@command`,
which registers a command behind the error guard (guard.py). The only place (with the command modules)
that knows stdout, stderr and exit codes.

Exit codes: 0 ok, 1 a problem with the data, formula or fit, 2 a usage error, 3 a warning under --strict
(signals: guard.py).
Heavy modules (numpy, pandas, scipy) are imported inside the commands so `lmm --help` starts fast.
"""

from __future__ import annotations

import sys

try:
    from enum import Enum
    from pathlib import Path
    from typing import Annotated, List, Optional

    import typer

    from lmmcli.cli.guard import guarded
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
                                        help="CSV/TSV (also .gz .bz2 .xz .zst), Parquet or Feather file; '-' reads standard input")]
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
Weights = Annotated[Optional[str], typer.Option(
    "--weights", metavar="COL", show_default=False,
    help="prior weights from this column, as lmer's weights = (residual variance sigma^2 / w; rows of weight 0 "
         "are dropped); for a GLMM as glmer's (binomial: the number of trials of a proportion response)")]
Contrasts = Annotated[Optional[List[str]], typer.Option(
    "--contrasts", metavar="KIND|COL=KIND", show_default=False,
    help="coding of the fixed part's factors, as lmer's contrasts =: treatment (default), sum, helmert or poly, "
         "for every factor or COL=KIND for one (repeatable)")]
Output = Annotated[Optional[Path], typer.Option("--output", "-o", metavar="FILE", show_default=False,
                                                help="write the output to this file (atomically); its extension "
                                                     "chooses the format; '-' is standard output")]
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
Engine = Annotated[str, typer.Option("--engine", metavar="ENGINE", help="who reads and sums the rows: memory, "
                                     "duckdb (data bigger than memory; globs, directories of parts), spark, or auto "
                                     "(memory when the data fits comfortably, else duckdb)")]
Threads = Annotated[Optional[int], typer.Option("--threads", show_default=False,
                                                help="--engine duckdb: number of threads")]
MemoryLimit = Annotated[Optional[str], typer.Option("--memory-limit", metavar="SIZE", show_default=False,
                                                    help="--engine duckdb: memory limit, e.g. 2GB (spills to disk)")]
SparkMaster = Annotated[Optional[str], typer.Option("--spark-master", metavar="URL", show_default=False,
                                                    help="--engine spark: the Spark master (default local[*])")]


# -- input dialect: --delimiter and --decimal, recorded by their callbacks for common.load_data -------
DIALECT = {"delimiter": None, "decimal": "."}
DATA_WARNINGS: list = []    # warnings about the data as read (a numeric-looking text column): --strict counts them
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "bar": "|", "pipe": "|"}


def _delimiter(value: Optional[str]) -> Optional[str]:
    if value is not None:
        value = DELIMITER_NAMES.get(value.lower(), value)
        if len(value) != 1 or value in "\r\n\"":
            raise typer.BadParameter("give one character (or tab, comma, semicolon, bar)")
    DIALECT["delimiter"] = value
    return value


def _decimal(value: str) -> str:
    if value not in (".", ","):
        raise typer.BadParameter("the decimal mark is '.' or ','")
    DIALECT["decimal"] = value
    return value


Delimiter = Annotated[Optional[str], typer.Option(
    "--delimiter", metavar="CHAR", show_default=False, callback=_delimiter,
    help="field delimiter of text data: , ; tab | or one character (default: sniffed)")]
Decimal = Annotated[str, typer.Option("--decimal", metavar="MARK", callback=_decimal,
                                      help="decimal mark of numbers in text data: . or , (decimal commas)")]


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
    DIALECT.update(delimiter=None, decimal=".")
    DATA_WARNINGS.clear()
