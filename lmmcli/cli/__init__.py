"""The `lmm` command: a thin typer layer over the library. The only place that knows stdout, stderr and exit codes.

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


def read_and_fit(data: str, formula: str, ml: bool, factor, ref):
    """(FittedModel, data frame): the one path of every command that fits DATA FORMULA. The formula
    and --ref are checked before the data is read, so their mistakes are reported first."""
    from lmmcli.fit import fit
    from lmmcli.formula import parse_formula

    parsed = parse_formula(formula)
    refs = parse_refs(ref)
    df, source = load_data(data)
    return fit(parsed.text, df, reml=not ml, factors=tuple(factor or ()), refs=refs, source=source), df


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


@app.command()
def fit(
    data: str = DataArg,
    formula: str = FormulaArg,
    ml: bool = MlOpt,
    factor: Optional[List[str]] = FactorOpt,
    ref: Optional[List[str]] = RefOpt,
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
    df: DfMethod = typer.Option(DfMethod.satterthwaite, "--df",
                                help="df and p-values of the fixed effects: satterthwaite (lmerTest's default), "
                                     "kenward-roger (REML fits; adjusted standard errors), residual (n - p), none"),
    ci: Optional[CiMethod] = typer.Option(None, "--ci", help="confidence intervals for the fixed effects and variance "
                                          "parameters: wald, profile (lme4's confint default) or boot (parametric "
                                          "bootstrap)"),
    level: float = typer.Option(0.95, "--level", help="level of the --ci intervals"),
    nsim: int = typer.Option(1000, "--nsim", help="--ci boot: number of bootstrap simulations"),
    seed: Optional[int] = typer.Option(None, "--seed", help="--ci boot: random seed (same seed, same intervals)"),
    output: Optional[Path] = OutputOpt,
    strict: bool = StrictOpt,
    save: Optional[Path] = typer.Option(None, "--save", help="also save the fitted model as JSON, for "
                                        "`lmm predict --model FILE` (written atomically)"),
):
    """Fit a linear mixed model and print lme4's summary (REML by default)."""

    def body():
        from lmmcli.render import tables as render

        if ci is not None:
            from lmmcli.inference.confint import check_options

            check_options(ci.value, level, nsim)
        fm, _ = read_and_fit(data, formula, ml, factor, ref)
        if save is not None:
            save_model(fm, save, data)
        if not fm.blocks:
            if ci is not None:
                sys.stderr.write("note: --ci is for mixed models; this formula has no random terms, "
                                 "so no intervals are computed\n")
            from lmmcli.lm import fit_lm

            return emit_report(fit_lm(fm.formula, fm.design), format, render.lm_table, output, data, strict)
        from lmmcli.inference.summary import summarize

        with progress_bar("bootstrap", nsim) as progress:
            result = summarize(fm, df.value, ci.value if ci else None, level, nsim, seed, progress)
        emit_report(result, format, render.fit_table, output, data, strict)

    run_guarded(body)


@app.command()
def compare(
    data: str = DataArg,
    formulas: List[str] = typer.Argument(..., help="two or more lme4 formulas with the same response"),
    ml: bool = MlOpt,
    no_refit: bool = typer.Option(False, "--no-refit",
                                  help="compare REML fits (lme4's refit = FALSE); only for models with the "
                                       "same fixed effects, otherwise exit code 2"),
    factor: Optional[List[str]] = FactorOpt,
    ref: Optional[List[str]] = RefOpt,
    format: Format = typer.Option(Format.table, "--format", "-f", help="table or json"),
    output: Optional[Path] = OutputOpt,
    strict: bool = StrictOpt,
):
    """Likelihood-ratio tests between models, as lme4's anova(m1, m2, ...) (refits REML fits by ML)."""

    def body():
        from lmmcli.render import tables as render
        from lmmcli.compare import compare as run_compare

        refs = parse_refs(ref)
        df, source = load_data(data)
        result = run_compare(formulas, df, ml=ml, refit=not no_refit, factors=tuple(factor or ()), refs=refs,
                             source=source)
        emit_report(result, format, render.compare_table, output, data, strict)

    run_guarded(body)


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


@app.command()
def predict(
    data: Optional[str] = OptDataArg,
    formula: Optional[str] = OptFormulaArg,
    model: Optional[Path] = ModelOpt,
    newdata: Optional[str] = typer.Option(None, "--newdata", help="rows to predict (default: the fitting data)"),
    population: bool = typer.Option(False, "--population",
                                    help="population-level predictions, random effects at 0 (lme4's re.form = NA)"),
    interval: Optional[IntervalKind] = typer.Option(None, "--interval",
                                                    help="confidence (for the mean) or prediction (a new observation)"),
    level: float = LevelOpt,
    keep: Optional[List[str]] = typer.Option(None, "--keep", help="carry this input column into the output (repeatable)"),
    ml: bool = MlOpt,
    factor: Optional[List[str]] = FactorOpt,
    ref: Optional[List[str]] = RefOpt,
    format: PredictFormat = typer.Option(PredictFormat.csv, "--format", "-f",
                                         help="csv or json; -o FILE.parquet writes Parquet"),
    output: Optional[Path] = OutputOpt,
    strict: bool = StrictOpt,
):
    """Predictions (lme4's predict) for the fitting rows or --newdata, one per input row in input order."""

    def body():
        from lmmcli.predict.predict import predict as run_predict

        state, warnings, frame = model_state(data, formula, model, ml, factor, ref)
        df, source, path = rows_to_predict(data, model, newdata, frame)
        p = run_predict(state, df, population=population, interval=interval.value if interval else None,
                        level=level, keep=tuple(keep or ()), source=source)
        emit_predictions(p, format, output, inputs=(path,))
        prediction_notes(p, format == PredictFormat.json and output is None)
        echo_warnings(warnings, strict)

    run_guarded(body)


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
        data: Optional[str] = OptDataArg,
        formula: Optional[str] = OptFormulaArg,
        model: Optional[Path] = ModelOpt,
        level: float = LevelOpt,
        ml: bool = MlOpt,
        factor: Optional[List[str]] = FactorOpt,
        ref: Optional[List[str]] = RefOpt,
        format: RowsFormat = typer.Option(RowsFormat.table, "--format", "-f", help="table, json or csv"),
        output: Optional[Path] = OutputOpt,
        strict: bool = StrictOpt,
    ):
        def body():
            from lmmcli.predict.ranef import effects

            state, warnings, _ = model_state(data, formula, model, ml, factor, ref)
            emit_effects(effects(state, kind, level), format, output, inputs=(data,))
            echo_warnings(warnings, strict)

        run_guarded(body)

    return command


app.command("ranef", help="Random effects: conditional modes, conditional sds and intervals "
                          "(lme4's ranef(condVar = TRUE)).")(effects_command("ranef"))
app.command("coef", help="Group-specific coefficients, fixed + random effects (lme4's coef()), "
                         "with approximate intervals.")(effects_command("coef"))


# -- pictures and simulation (lmmcli.predict.plotdata, lmmcli.render.figures, lmmcli.render.terminal_plot, lmmcli.predict.simulate) -------
class PlotKind(str, Enum):
    ranef = "ranef"
    fitted = "fitted"
    resid = "resid"


def _plot_figure(kind: PlotKind, fm, result, df, level: float, x, highlight: int, seed: int):
    """The matplotlib figure of one kind (result is fm.result(), computed once by the caller)."""
    from lmmcli.render import figures as plot
    from lmmcli.predict import plotdata

    if kind == PlotKind.ranef:
        return plot.caterpillar_figure(plotdata.caterpillar(result, level))
    if kind == PlotKind.fitted:
        return plot.trajectories_figure(plotdata.trajectories(fm, df, x, highlight, seed))
    return plot.diagnostics_figure(plotdata.diagnostics(fm))


def _plot_command(kind, data, formula, output, terminal, level, x, highlight, seed, ml, factor, ref, strict):
    """Check the options before fitting, fit, then draw to the file or the terminal."""
    from lmmcli.errors import UsageError

    if terminal and (kind != PlotKind.ranef or output is not None):
        raise UsageError("--terminal draws the ranef caterpillar as text on stdout; use it with KIND ranef, without -o")
    if not terminal and output is None:
        raise UsageError("give the image file with -o FILE.png or -o FILE.svg (or --terminal for a text caterpillar)")
    if output is not None:
        from lmmcli.render.figures import image_format

        image_format(str(output))
    fm, df = read_and_fit(data, formula, ml, factor, ref)
    result = fm.result()
    if terminal:
        from lmmcli.predict.plotdata import caterpillar
        from lmmcli.render.terminal_plot import caterpillar_text

        sys.stdout.write(caterpillar_text(caterpillar(result, level), width=terminal_width(),
                                          color=use_color(output)))
    else:
        from lmmcli.render.figures import save

        save(_plot_figure(kind, fm, result, df, level, x, highlight, seed), str(output), seed, inputs=(data,))
    echo_warnings(result.warnings, strict)


@app.command()
def plot(
    kind: PlotKind = typer.Argument(..., help="ranef (caterpillar of the random effects), fitted (each group's "
                                    "data and predicted line) or resid (residual and QQ diagnostics)"),
    data: str = DataArg,
    formula: str = FormulaArg,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="image file, .png or .svg (written atomically)"),
    terminal: bool = typer.Option(False, "--terminal", help="ranef only: draw the caterpillar as text on stdout"),
    level: float = LevelOpt,
    x: Optional[str] = typer.Option(None, "--x", help="fitted: the predictor on the x axis (default: the first "
                                    "numeric one in the formula)"),
    highlight: int = typer.Option(6, "--highlight", help="fitted: how many groups (a seeded sample) to draw in bold"),
    seed: int = typer.Option(0, "--seed", help="seed of the sample of bold groups; same seed, same file"),
    ml: bool = MlOpt,
    factor: Optional[List[str]] = FactorOpt,
    ref: Optional[List[str]] = RefOpt,
    strict: bool = StrictOpt,
):
    """Draw a fitted model: caterpillar plot, group trajectories or diagnostics (PNG or SVG; needs matplotlib)."""
    run_guarded(lambda: _plot_command(kind, data, formula, output, terminal, level, x, highlight, seed, ml,
                                      factor, ref, strict))


def _write_csv(columns: dict, output: Optional[Path], inputs=()) -> None:
    """A data frame (or a dict of columns) as CSV on stdout or atomically to the file."""
    import pandas as pd

    emit(pd.DataFrame(columns).to_csv(index=False), output, inputs)


def _simulate_from_spec(groups, per_group, fixed, sd_group, sd_resid, sd_slope, cor, seed, output):
    """`lmm simulate --groups ...`: the simulated columns as CSV."""
    from lmmcli.errors import UsageError
    from lmmcli.predict.simulate import SimSpec, parse_fixed, simulate_spec

    if groups is None or per_group is None or sd_group is None or sd_resid is None:
        raise UsageError("give DATA FORMULA to simulate from a fitted model, or a specification: "
                         "--groups, --per-group, --sd-group and --sd-resid (and --fixed)")
    spec = SimSpec(groups, per_group, parse_fixed(fixed), sd_group, sd_resid, sd_slope, cor)
    _write_csv(simulate_spec(spec, seed), output)


def _simulate_from_model(data, formula, nsim, seed, use_u, ml, factor, ref, output, strict):
    """`lmm simulate DATA FORMULA`: the data with columns sim_1..sim_N as CSV."""
    from lmmcli.errors import UsageError
    from lmmcli.predict.simulate import sim_columns, simulate_model

    if formula is None:
        raise UsageError("give DATA and FORMULA to simulate from a fitted model")
    fm, df = read_and_fit(data, formula, ml, factor, ref)
    sims = simulate_model(fm, nsim, seed, use_u)
    cols = sim_columns(sims, fm.design.rows, len(df), taken=set(map(str, df.columns)))
    _write_csv(df.to_pandas().assign(**cols), output, inputs=(data,))
    echo_warnings(fm.result().warnings, strict)


@app.command()
def simulate(
    data: Optional[str] = typer.Argument(None, help="with FORMULA: simulate new responses from this fitted model"),
    formula: Optional[str] = OptFormulaArg,
    nsim: int = typer.Option(1, "--nsim", help="from a model: number of simulated responses (sim_1..sim_N)"),
    use_u: bool = typer.Option(False, "--use-u", help="from a model: keep the fitted random effects "
                               "(lme4's use.u = TRUE) instead of drawing new ones"),
    groups: Optional[int] = typer.Option(None, "--groups", help="from a specification: number of groups"),
    per_group: Optional[int] = typer.Option(None, "--per-group", help="rows per group"),
    fixed: str = typer.Option("2 + 0.5*x", "--fixed", help="fixed part: intercept + coefficient*name terms; "
                              "each name is a standard normal predictor"),
    sd_group: Optional[float] = typer.Option(None, "--sd-group", help="sd of the random intercepts"),
    sd_resid: Optional[float] = typer.Option(None, "--sd-resid", help="sd of the residuals"),
    sd_slope: float = typer.Option(0.0, "--sd-slope", help="sd of random slopes on the first predictor"),
    cor: float = typer.Option(0.0, "--cor", help="correlation of random intercepts and slopes"),
    seed: Optional[int] = typer.Option(None, "--seed", help="random seed (same seed, same data)"),
    ml: bool = MlOpt,
    factor: Optional[List[str]] = FactorOpt,
    ref: Optional[List[str]] = RefOpt,
    output: Optional[Path] = OutputOpt,
    strict: bool = StrictOpt,
):
    """Simulate data as CSV: from a specification (--groups ... --sd-resid) or from a fitted model (DATA FORMULA)."""

    def body():
        from lmmcli.errors import UsageError

        spec_given = any(v is not None for v in (groups, per_group, sd_group, sd_resid)) or sd_slope or cor
        if data is not None and spec_given:
            raise UsageError("simulate either from DATA FORMULA or from --groups/--per-group/--sd-* options, not both")
        if spec_given and (ml or factor or ref or use_u or nsim != 1):
            # these only mean something for a fitted model; silently ignoring them would mislead
            raise UsageError("--nsim, --use-u, --ml, --factor and --ref are for simulating from DATA FORMULA, "
                             "not from a specification")
        if data is None:
            return _simulate_from_spec(groups, per_group, fixed, sd_group, sd_resid, sd_slope, cor, seed, output)
        _simulate_from_model(data, formula, nsim, seed, use_u, ml, factor, ref, output, strict)

    run_guarded(body)


def main() -> None:
    """Console entry point."""
    # One BLAS thread unless the user asks otherwise (set before numpy loads OpenBLAS): on a busy
    # 2-core machine a multithreaded dense Cholesky made the InstEval-sized fit 5x slower (bench/).
    import os

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        app()
    except KeyboardInterrupt:  # Ctrl-C while typer builds the command, outside run_guarded: no traceback
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)
