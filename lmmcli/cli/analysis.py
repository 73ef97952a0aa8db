"""`lmm anova`, `lmm ranova`, `lmm emmeans`, `lmm table`: the analyst's tables after a fit."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from lmmcli.cli.app import (DataArg, FactorOpt, FormulaArg, MlOpt, OutputOpt, RefOpt, StrictOpt, app, echo_warnings, emit, read_and_fit, run_guarded, terminal_width, use_color)


class TableFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class AnovaDf(str, Enum):
    satterthwaite = "satterthwaite"
    kenward_roger = "kenward-roger"


class Adjust(str, Enum):
    tukey = "tukey"
    holm = "holm"
    bonferroni = "bonferroni"
    none = "none"


FormatOpt = typer.Option(TableFormat.table, "--format", "-f", help="table, json or csv")


def _split(values: Optional[List[str]]) -> list[str]:
    """--specs A,B (or repeated) as a list of names."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _emit(result, format: TableFormat, table, rows, output: Optional[Path], data: str, strict: bool) -> None:
    """JSON, CSV (the rows) or the table, to stdout or -o; then the warnings on stderr."""
    from lmmcli.render import tables as render

    if format == TableFormat.json:
        text = render.to_json(result.to_dict())
    elif format == TableFormat.csv:
        text = render.rows_to_csv(rows(result.to_dict()))
    else:
        text = table(result, width=terminal_width(), color=use_color(output))
    emit(text, output, inputs=(data,))
    echo_warnings(result.warnings, strict)


@app.command()
def anova(
    data: str = DataArg,
    formula: str = FormulaArg,
    type: str = typer.Option("3", "--type", help="hypotheses: 1 (sequential), 2 or 3 (lmerTest's default)"),
    df: AnovaDf = typer.Option(AnovaDf.satterthwaite, "--df", help="denominator df: satterthwaite (lmerTest's "
                               "default) or kenward-roger (REML fits)"),
    ml: bool = MlOpt,
    factor: Optional[List[str]] = FactorOpt,
    ref: Optional[List[str]] = RefOpt,
    format: TableFormat = FormatOpt,
    output: Optional[Path] = OutputOpt,
    strict: bool = StrictOpt,
):
    """F tests of the fixed terms, as lmerTest's anova() (type 3, Satterthwaite by default)."""

    def body():
        from lmmcli.inference.anova import anova as run, check_options
        from lmmcli.render.analysis import anova_table

        check_options(type, df.value, None if not ml else False)
        fm, frame = read_and_fit(data, formula, ml, factor, ref)
        _emit(run(fm, frame, type, df.value), format, anova_table, lambda d: d["anova"], output, data, strict)

    run_guarded(body)


@app.command()
def ranova(
    data: str = DataArg,
    formula: str = FormulaArg,
    ml: bool = MlOpt,
    factor: Optional[List[str]] = FactorOpt,
    ref: Optional[List[str]] = RefOpt,
    format: TableFormat = FormatOpt,
    output: Optional[Path] = OutputOpt,
    strict: bool = StrictOpt,
):
    """Likelihood-ratio tests of each random term, as lmerTest's ranova() (slopes reduced, not removed)."""

    def body():
        from lmmcli.analysis.ranova import ranova as run
        from lmmcli.cli.app import parse_refs
        from lmmcli.render.analysis import ranova_table

        fm, frame = read_and_fit(data, formula, ml, factor, ref)
        result = run(fm, frame, tuple(factor or ()), parse_refs(ref))
        _emit(result, format, ranova_table, lambda d: d["ranova"], output, data, strict)

    run_guarded(body)


def _emmeans_rows(doc: dict) -> list[dict]:
    """CSV rows: the means (levels as columns), then the contrasts with a `contrast` column."""
    rows = [{"contrast": "", **e.pop("levels"), **e} for e in doc["emmeans"]]
    for c in doc.get("contrasts", []):
        rows.append({"contrast": c.pop("contrast"), **c.pop("by", {}), **c})
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return [{k: r.get(k) for k in keys} for r in rows]


@app.command()
def emmeans(
    data: str = DataArg,
    formula: str = FormulaArg,
    specs: List[str] = typer.Option(..., "--specs", help="factor(s) whose marginal means to estimate: F or F,G"),
    by: Optional[List[str]] = typer.Option(None, "--by", help="factor(s) to condition on: means and contrasts "
                                           "within each of their levels"),
    pairwise: bool = typer.Option(False, "--pairwise", help="also every pairwise difference of the means"),
    adjust: Adjust = typer.Option(Adjust.tukey, "--adjust", help="p-value adjustment of the pairwise contrasts"),
    df: Optional[AnovaDf] = typer.Option(None, "--df", help="df method: kenward-roger (emmeans' default for REML "
                                         "fits) or satterthwaite (the default with --ml)"),
    level: float = typer.Option(0.95, "--level", help="level of the confidence intervals"),
    ml: bool = MlOpt,
    factor: Optional[List[str]] = FactorOpt,
    ref: Optional[List[str]] = RefOpt,
    format: TableFormat = FormatOpt,
    output: Optional[Path] = OutputOpt,
    strict: bool = StrictOpt,
):
    """Estimated marginal means and pairwise contrasts, as emmeans (equal weights, covariates at their means)."""

    def body():
        from lmmcli.inference.emmeans import check_options, emmeans as run
        from lmmcli.render.analysis import emmeans_table

        if ml and df == AnovaDf.kenward_roger:
            check_options(["-"], [], adjust.value, df.value, level, False, {"-": ()})
        fm, frame = read_and_fit(data, formula, ml, factor, ref)
        result = run(fm, frame, _split(specs), _split(by), pairwise, adjust.value, df.value if df else None, level)
        _emit(result, format, emmeans_table, _emmeans_rows, output, data, strict)

    run_guarded(body)
