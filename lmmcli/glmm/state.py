"""A fitted GLMM as the predict package's ModelState: ranef, coef, predict and saved models work on it.

The state's sigma is 1 (binomial and Poisson have no residual variance) and its summary carries
`family` and `link`, so that predictions can be put on the response scale (the inverse link).
"""

from __future__ import annotations

import numpy as np

from lmmcli.glmm.fit import GlmmFit
from lmmcli.glmm.result import assemble, covariances
from lmmcli.predict.predict import ModelState, TermState, match_terms


def state_from_glmm(fm: GlmmFit) -> ModelState:
    """The ModelState of a GlmmFit (conditional modes b = Lambda u, their conditional covariances)."""
    spec = fm.design.spec
    idx = match_terms(spec.formula.random, [blk.group for blk in fm.blocks])
    terms = [TermState(i, blk.group, tuple(blk.terms), tuple(blk.levels), blk.correlated, b, V, C)
             for i, blk, b, V, C in zip(idx, fm.blocks, fm.b(), fm.cond_var(), covariances(fm))]
    result = assemble(fm).to_dict()
    summary = {k: v for k, v in result.items() if k not in ("random_effects", "vcov")}
    return ModelState(spec, False, fm.beta.copy(), fm.vcov.copy(), 1.0, np.asarray(fm.theta, dtype=float),
                      terms, summary)


def to_response_scale(state: ModelState, values):
    """The inverse link of the state's family applied to link-scale values (None stays None)."""
    from lmmcli.glmm.family import make_family

    fam = make_family(state.summary["family"], state.summary["link"])
    return [None if v is None else float(fam.link.linkinv(np.array([v]))[0]) for v in values]
