"""`lmm fit --family binomial|poisson`: the GLMM branch of the fit command (glmer's summary)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lmmcli.cli.common import echo_warnings, load_data, parse_contrasts, parse_refs
from lmmcli.cli.output import OutFormat, Shown, write

Family = Annotated[Optional[str], typer.Option(
    "--family", metavar="NAME", show_default=False,
    help="fit a generalized linear mixed model, as glmer: binomial or poisson")]
Link = Annotated[Optional[str], typer.Option(
    "--link", metavar="LINK", show_default=False,
    help="with --family: binomial logit (default), probit, cloglog; poisson log (default), sqrt, identity")]
Nagq = Annotated[int, typer.Option(
    "--nagq", help="with --family: 1 = Laplace approximation; > 1 = adaptive Gauss-Hermite quadrature with "
                   "this many points (a single scalar random term only, as glmer)")]
from lmmcli.cli.app import Weights  # noqa: E402,F401  (one --weights for lmer and glmer)


Type = Annotated[Optional[str], typer.Option(
    "--type", metavar="TYPE", show_default=False,
    help="with --family: link (the linear predictor, default) or response (the mean, through the inverse link)")]


def glmm_options(family, link, nagq, weights) -> dict | None:
    """The GLMM options as model_state's `glmm` argument; None without --family (a usage error if others are set)."""
    from lmmcli.errors import UsageError

    if family is None:
        if link is not None or nagq != 1:     # --weights alone: lmer's prior weights
            raise UsageError("--link and --nagq are for generalized models: add --family")
        return None
    return {"family": family, "link": link, "nagq": nagq, "weights": weights}


def refuse_aggregation(engine) -> None:
    """--engine duckdb|spark aggregate a linear model's sums; a GLMM's weights change every PIRLS step."""
    from lmmcli.errors import UsageError

    if str(getattr(engine, "value", engine)) not in ("auto", "memory"):
        raise UsageError("--engine duckdb and spark fit linear mixed models; a GLMM is fitted in memory")


def read_and_fit_glmm(data: str, formula: str, factor, ref, glmm: dict, contrasts=None):
    """(GlmmFit, data frame, its name): the GLMM twin of common.read_and_fit. The formula and --ref are
    checked before the data is read; glmm: the options of glmm_options."""
    from lmmcli import glmm as glmm_lib
    from lmmcli.formula import parse_formula

    parse_formula(formula)
    refs = parse_refs(ref)
    df, source = load_data(data)
    fm = glmm_lib.glmer(formula, df, glmm["family"], glmm["link"], glmm["nagq"], glmm["weights"],
                        tuple(factor or ()), refs, source, parse_contrasts(contrasts))
    return fm, df, source


def glmm_state(data, formula, factor, ref, glmm: dict, contrasts=None):
    """(ModelState, warnings, (frame, name, path)) of a GLMM fitted to DATA FORMULA, as model_state."""
    from lmmcli.cli.common import source_name
    from lmmcli.errors import UsageError
    from lmmcli.glmm.state import state_from_glmm

    if data is None or formula is None:
        raise UsageError("give DATA and FORMULA to fit, or --model FILE for a saved model")
    fm, df, _ = read_and_fit_glmm(data, formula, factor, ref, glmm, contrasts)
    state = state_from_glmm(fm)
    return state, state.summary.get("warnings", []), (df, source_name(data), data)


def glmm_shown(report) -> Shown:
    """A GLMM's report in every format: summary(glmer), its JSON document, tidy() rows."""
    from lmmcli.render import formats
    from lmmcli.render.glmm import glmm_table

    return Shown(f"lmm fit: {report.formula}", report.to_dict, lambda: formats.tidy_rows(report),
                 lambda width, color: glmm_table(report, width=width, color=color),
                 lines=lambda: [report.to_dict()], columns=formats.TIDY_COLUMNS)


def fit_glmm(data: str, formula: str, family: str, link: Optional[str], nagq: int, weights: Optional[str],
             factor, ref, ci: Optional[str], level: float, fmt: OutFormat, output: Optional[Path],
             strict: bool, save: Optional[Path] = None, nsim: int = 1000, seed: Optional[int] = None, contrasts=None) -> None:
    """Fit the GLMM and write its summary (and the model with --save); --ci wald, profile or boot."""
    from lmmcli.errors import UsageError
    from lmmcli.glmm.result import assemble, attach_wald

    if ci is not None and ci not in ("wald", "profile", "boot"):
        raise UsageError(f"--ci must be wald, profile or boot, got '{ci}'")
    options = {"family": family, "link": link, "nagq": nagq, "weights": weights}
    fm, _, _ = read_and_fit_glmm(data, formula, factor, ref, options, contrasts)
    report = assemble(fm)
    if save is not None:
        from lmmcli.cli.common import save_state
        from lmmcli.glmm.state import state_from_glmm

        save_state(state_from_glmm(fm), save, data)
    if ci == "wald":
        attach_wald(report, level)
    elif ci == "profile":
        from lmmcli.glmm.profile import attach_profile

        attach_profile(report, fm, level)
    elif ci == "boot":
        from lmmcli.cli.common import progress_bar
        from lmmcli.glmm.bootstrap import attach_boot

        with progress_bar("bootstrap", nsim) as progress:
            attach_boot(report, fm, level, nsim, seed, progress)
    write(glmm_shown(report), fmt, output, inputs=(data,))
    echo_warnings(report.warnings, strict)


def on_scale(p, state, type: str) -> None:
    """--type link|response: response puts a GLMM's predictions and intervals through the inverse link."""
    from lmmcli.errors import UsageError

    if type not in ("link", "response"):
        raise UsageError(f"--type must be link or response, got '{type}'")
    if "family" not in state.summary:
        raise UsageError("--type is for generalized models (fitted with --family)")
    if type == "response":
        from lmmcli.glmm.state import to_response_scale

        p.prediction = to_response_scale(state, p.prediction)
        if p.lower is not None:
            p.lower, p.upper = to_response_scale(state, p.lower), to_response_scale(state, p.upper)
