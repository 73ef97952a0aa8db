"""New responses from a fitted GLMM, as lme4's simulate() on a glmer fit.

b ~ N(0, T T') per level (or the fitted modes with use_u), eta = offset + X beta + Z b, and the
response drawn from the family at mu = g^{-1}(eta): Poisson counts; binomial successes out of the
trials for cbind() responses, 0/1 for 0/1, TRUE/FALSE or factor responses, and proportions for a
proportion with --weights (each on the scale the response was given in).
"""

from __future__ import annotations

import numpy as np

from lmmcli.engine.pls import split_theta
from lmmcli.errors import UsageError
from lmmcli.glmm.fit import GlmmFit


def simulate_glmm(fm: GlmmFit, nsim: int, seed: int | None = None, use_u: bool = False) -> np.ndarray:
    """(n, nsim) simulated responses for the fitting rows."""
    if nsim < 1:
        raise UsageError(f"--nsim must be at least 1, got {nsim}")
    rng = np.random.default_rng(seed)
    m, gd = fm.model, fm.gd
    eta = np.repeat((m.offset + m.X @ fm.beta)[:, None], nsim, axis=1)
    if use_u:
        eta += (fm.state.eta - m.offset - m.X @ fm.beta)[:, None]
    else:
        for blk, T in zip(fm.blocks, split_theta(fm.blocks, fm.theta)):
            b = rng.standard_normal((nsim, blk.nlevels, blk.p)) @ T.T
            eta += np.einsum("ij,sij->is", blk.Z, b[:, blk.codes, :])
    mu = m.family.link.linkinv(eta)
    if m.family.name == "poisson":
        return rng.poisson(mu).astype(float)
    trials = np.round(m.wt)[:, None]
    k = rng.binomial(trials.astype(np.int64), mu).astype(float)
    if gd.response_kind == "cbind":
        return k
    return k / np.where(trials > 0, trials, 1.0)
