"""`lmm fit --family binomial|poisson`: the GLMM branch of the fit command (glmer's summary)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lmmcli.cli.app import Format, emit_report, load_data, parse_refs

FamilyOpt = typer.Option(None, "--family", help="fit a generalized linear mixed model (as glmer): binomial or poisson")
LinkOpt = typer.Option(None, "--link", help="--family link: binomial logit (default), probit, cloglog; "
                                            "poisson log (default), sqrt, identity")
NagqOpt = typer.Option(1, "--nagq", help="--family: 1 = Laplace approximation (default); > 1 = adaptive "
                                         "Gauss-Hermite quadrature with this many points (one scalar random term only)")
WeightsOpt = typer.Option(None, "--weights", help="--family: column of prior weights (binomial: the number of "
                                                  "trials of a proportion response)")


def fit_glmm(data: str, formula: str, family: str, link: Optional[str], nagq: int, weights: Optional[str],
             factor, ref, ci: Optional[str], level: float, format: Format, output: Optional[Path],
             strict: bool) -> None:
    """Fit the GLMM and emit its summary (table or JSON); --ci wald only."""
    from lmmcli import glmm
    from lmmcli.errors import UsageError
    from lmmcli.formula import parse_formula
    from lmmcli.glmm.result import assemble, attach_wald
    from lmmcli.render.glmm import glmm_table

    if ci is not None and ci != "wald":
        raise UsageError(f"--ci {ci} is not available with --family yet; use --ci wald")
    parse_formula(formula)
    refs = parse_refs(ref)
    df, source = load_data(data)
    fm = glmm.glmer(formula, df, family, link, nagq, weights, tuple(factor or ()), refs, source)
    result = assemble(fm)
    if ci is not None:
        attach_wald(result, level)
    emit_report(result, format, glmm_table, output, data, strict)
