"""Generalized linear mixed models (binomial, Poisson) as lme4's glmer: families, PIRLS, Laplace and AGQ."""

from __future__ import annotations

from lmmcli.errors import ModelSpecError

MAX_NAGQ = 100


def check_nagq(nagq: int, blocks) -> None:
    """glmer's rule: nAGQ > 1 only for a single scalar random-effects term."""
    if nagq < 0 or nagq > MAX_NAGQ:
        raise ModelSpecError(f"--nagq must be between 0 and {MAX_NAGQ}, got {nagq}")
    if nagq > 1 and (len(blocks) != 1 or blocks[0].p != 1):
        raise ModelSpecError("nAGQ > 1 is only for models with a single scalar random-effects term, such as (1 | g)",
                             hint="use --nagq 1 (the Laplace approximation) for this model, as glmer requires")


def glmer(text: str, df, family: str, link: str | None = None, nagq: int = 1, weights: str | None = None,
        factors=(), refs=None, source: str = "the data", contrasts: dict | None = None):
    """glmer(): parse the formula, build the design for the family, fit; a GlmmFit."""
    from lmmcli.formula import parse_formula
    from lmmcli.glmm.design import build_glmm_design
    from lmmcli.glmm.family import make_family
    from lmmcli.glmm.fit import fit_glmm

    fam = make_family(family, link)
    formula = parse_formula(text)
    if nagq < 0 or nagq > MAX_NAGQ:
        check_nagq(nagq, [])
    gd = build_glmm_design(formula, df, fam, weights, factors, refs, source, contrasts)
    check_nagq(nagq, gd.design.blocks)
    return fit_glmm(formula, gd, nagq)
