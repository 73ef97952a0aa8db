"""`lmm anova`, `lmm ranova`, `lmm emmeans`: the analyst's tables after a fit."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, List, Optional

import typer

from lmmcli.cli.app import (Contrasts, Weights, Decimal, Delimiter, DataArg, Factor, FormatOpt, FormulaArg, Ml, Model, OptDataArg, OptFormulaArg, Output, Ref,
                            Strict, command)
from lmmcli.cli.output import OutFormat, Shown, choose_format, write
from lmmcli.cli.common import echo_warnings, parse_contrasts, parse_refs, read_and_fit


class AnalysisDf(str, Enum):
    satterthwaite = "satterthwaite"
    kenward_roger = "kenward-roger"


class Adjust(str, Enum):
    tukey = "tukey"
    holm = "holm"
    bonferroni = "bonferroni"
    none = "none"


def split_names(values: Optional[List[str]]) -> list[str]:
    """--specs A,B (or repeated) as a list of names."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def emit_analysis(result, format, table, rows, output, data: str, strict: bool) -> None:
    """The result in the chosen format (output.OutFormat; rows(document) for the row formats), to stdout or -o;
    then the warnings on stderr."""
    fmt = choose_format(format, output, OutFormat.table)
    name = type(result).__name__.removesuffix("Result").lower()
    shown = Shown(f"lmm {name}", result.to_dict, lambda: rows(result.to_dict()),
                  lambda width, color: table(result, width=width, color=color))
    write(shown, fmt, output, inputs=(data,))
    echo_warnings(result.warnings, strict)


def analysis_basis(data, formula, model, ml, factor, ref, weights=None, contrasts=None):
    """The AnalysisBasis of DATA FORMULA (fitted now) or of a saved model (--model: no data, no refit)."""
    from lmmcli.errors import UsageError

    if model is not None:
        if data is not None or formula is not None or ml or factor or ref or weights or contrasts:
            raise UsageError("with --model, give no DATA, FORMULA, --ml, --factor, --ref, --weights or --contrasts: "
                             "the saved model fixes them")
        from lmmcli.predict.saved_analysis import load_basis

        return load_basis(str(model))
    if data is None or formula is None:
        raise UsageError("give DATA and FORMULA to fit, or --model FILE for a saved model")
    from lmmcli.inference.basis import basis_from_fit

    fm, frame = read_and_fit(data, formula, ml, factor, ref, weights=weights, contrasts=contrasts)
    return basis_from_fit(fm, frame)


@command(examples=(
    'lmm anova gpa.csv "gpa ~ occasion + job + (1|student)"',
    'lmm anova gpa.csv "gpa ~ occasion * job + (1|student)" --type 2 --df kenward-roger',
    'lmm anova --model m.json',
))
def anova(
    data: OptDataArg = None,
    formula: OptFormulaArg = None,
    model: Model = None,
    type: Annotated[str, typer.Option("--type", help="hypotheses: 1 (sequential), 2 or 3 (lmerTest's default)")] = "3",
    df: Annotated[AnalysisDf, typer.Option(
        "--df", help="denominator df: satterthwaite (lmerTest's default) or kenward-roger (REML fits)")
    ] = AnalysisDf.satterthwaite,
    ml: Ml = False,
    factor: Factor = None,
    ref: Ref = None,
    weights: Weights = None,
    contrasts: Contrasts = None,
    format: FormatOpt = None,
    output: Output = None,
    strict: Strict = False,
    delimiter: Delimiter = None,    # both read by common.load_data (their callbacks)
    decimal: Decimal = ".",
):
    """F tests of the fixed terms, as lmerTest's anova() (type 3, Satterthwaite by default)."""
    from lmmcli.inference.anova import anova_of, check_options
    from lmmcli.render.analysis import anova_table

    check_options(type, df.value, not ml)
    basis = analysis_basis(data, formula, model, ml, factor, ref, weights, contrasts)
    emit_analysis(anova_of(basis, type, df.value), format, anova_table, lambda d: d["anova"], output,
                  data or str(model), strict)


@command(examples=(
    'lmm ranova sleepstudy.csv "Reaction ~ Days + (Days|Subject)"',
))
def ranova(
    data: DataArg,
    formula: FormulaArg,
    ml: Ml = False,
    factor: Factor = None,
    ref: Ref = None,
    weights: Weights = None,
    contrasts: Contrasts = None,
    format: FormatOpt = None,
    output: Output = None,
    strict: Strict = False,
    delimiter: Delimiter = None,    # both read by common.load_data (their callbacks)
    decimal: Decimal = ".",
):
    """Likelihood-ratio tests of each random term, as lmerTest's ranova() (slopes reduced, not removed)."""
    from lmmcli.analysis.ranova import ranova as run
    from lmmcli.render.analysis import ranova_table

    fm, frame = read_and_fit(data, formula, ml, factor, ref, weights=weights, contrasts=contrasts)
    result = run(fm, frame, tuple(factor or ()), parse_refs(ref))
    emit_analysis(result, format, ranova_table, lambda d: d["ranova"], output, data, strict)


def emmeans_rows(doc: dict) -> list[dict]:
    """CSV rows: the means (levels as columns), then the contrasts, each with a `contrast` column."""
    rows = [{"contrast": "", **e.pop("levels"), **e} for e in doc["emmeans"]]
    for c in doc.get("contrasts", []):
        rows.append({"contrast": c.pop("contrast"), **c.pop("by", {}), **c})
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return [{k: r.get(k) for k in keys} for r in rows]


@command(examples=(
    'lmm emmeans gpa.csv "gpa ~ occasion + job + (1|student)" --specs job --pairwise',
    'lmm emmeans --model m.json --specs job --by sex --pairwise --adjust holm',
))
def emmeans(
    data: OptDataArg = None,
    formula: OptFormulaArg = None,
    specs: Annotated[Optional[List[str]], typer.Option("--specs", metavar="F[,G]", show_default=False,
                                                       help="factor(s) whose marginal means to estimate")] = None,
    by: Annotated[Optional[List[str]], typer.Option("--by", metavar="H", show_default=False,
                                                    help="factor(s) to condition on: means and contrasts within "
                                                         "each of their levels")] = None,
    pairwise: Annotated[bool, typer.Option("--pairwise", help="also every pairwise difference of the means")] = False,
    adjust: Annotated[Adjust, typer.Option("--adjust", help="p-value adjustment of the pairwise contrasts")
                      ] = Adjust.tukey,
    df: Annotated[Optional[AnalysisDf], typer.Option(
        "--df", show_default=False, help="df method: kenward-roger (emmeans' default; REML fits) or satterthwaite "
                                         "(the default with --ml)")] = None,
    level: Annotated[float, typer.Option("--level", help="level of the confidence intervals")] = 0.95,
    model: Model = None,
    ml: Ml = False,
    factor: Factor = None,
    ref: Ref = None,
    weights: Weights = None,
    contrasts: Contrasts = None,
    format: FormatOpt = None,
    output: Output = None,
    strict: Strict = False,
    delimiter: Delimiter = None,    # both read by common.load_data (their callbacks)
    decimal: Decimal = ".",
):
    """Estimated marginal means and pairwise contrasts, as emmeans (equal weights, covariates at their means)."""
    from lmmcli.errors import UsageError
    from lmmcli.inference.emmeans import check_df, emmeans_of
    from lmmcli.render.analysis import emmeans_table

    if not split_names(specs):
        raise UsageError("give --specs: the factor(s) whose marginal means to estimate", hint="e.g. --specs job")
    if model is None:
        check_df(df.value if df else None, not ml)
    basis = analysis_basis(data, formula, model, ml, factor, ref, weights, contrasts)
    result = emmeans_of(basis, split_names(specs), split_names(by), pairwise, adjust.value, df.value if df else None,
                        level)
    emit_analysis(result, format, emmeans_table, emmeans_rows, output, data or str(model), strict)


class ModelTableFormat(str, Enum):
    table = "table"
    markdown = "markdown"
    html = "html"
    csv = "csv"
    json = "json"


@command("table", examples=(
    'lmm table gpa.csv "gpa ~ occasion + (1|student)" "gpa ~ occasion + job + (1|student)" -f markdown',
))
def model_table(
    data: DataArg,
    formulas: Annotated[List[str], typer.Argument(metavar="FORMULA...", show_default=False,
                                                  help="one or more lme4 formulas, one column each")],
    ci: Annotated[bool, typer.Option("--ci", help="Wald confidence intervals instead of standard errors")] = False,
    level: Annotated[float, typer.Option("--level", help="level of the --ci intervals")] = 0.95,
    df: Annotated[AnalysisDf, typer.Option("--df", help="df of the p-values in the JSON: satterthwaite or "
                                           "kenward-roger")] = AnalysisDf.satterthwaite,
    ml: Ml = False,
    factor: Factor = None,
    ref: Ref = None,
    weights: Weights = None,
    contrasts: Contrasts = None,
    format: Annotated[Optional[OutFormat], typer.Option(
        "--format", "-f", show_default=False,
        help="table, markdown, html, csv or json (default: from the -o file's extension, else table)")] = None,
    output: Output = None,
    strict: Strict = False,
    delimiter: Delimiter = None,    # both read by common.load_data (their callbacks)
    decimal: Decimal = ".",
):
    """Several models side by side (as modelsummary): estimates and SEs, random-effect sds, ICC, R², AIC, BIC."""
    from lmmcli.analysis.model_table import model_table as run
    from lmmcli.cli.common import load_data
    from lmmcli.render import model_table as render

    fmt = choose_format(format, output, OutFormat.table, allowed=set(ModelTableFormat.__members__))
    refs = parse_refs(ref)
    frame, source = load_data(data)
    result = run(formulas, frame, ml, df.value, level if ci else None, tuple(factor or ()), refs, source,
                 weights, parse_contrasts(contrasts))
    # no flat rows: every format but JSON is render.model_table's grid, laid out for that format
    shown = Shown("lmm table", result.to_dict, lambda: [], lambda width, color: render.as_table(result, width, color),
                  texts={OutFormat.markdown: lambda: render.as_markdown(result),
                         OutFormat.html: lambda: render.as_html(result), OutFormat.csv: lambda: render.as_csv(result)})
    write(shown, fmt, output, inputs=(data,))
    echo_warnings(result.warnings, strict)
