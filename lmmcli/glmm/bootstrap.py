"""Parametric bootstrap intervals for a GLMM (lme4's confint(method = "boot") on a glmer fit).

Each replicate draws a new response from the fitted model (new random effects, glmm.simulate),
refits it with glmer's method (without the Hessian: only the estimates are kept), and the
intervals are percentiles of the replicates' fixed effects, random-effect sds and correlations.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lmmcli.errors import LmmError, UsageError
from lmmcli.glmm.fit import GlmmFit, fit_glmm
from lmmcli.glmm.result import variance_components
from lmmcli.glmm.simulate import simulate_glmm


def parameters(fm: GlmmFit) -> np.ndarray:
    """The fit's beta, then each random-effect sd, then each correlation (FitResult's order)."""
    vcs, cors = variance_components(fm)
    return np.concatenate([fm.beta, [v.sd for v in vcs], [c.correlation for c in cors]])


def bootstrap(fm: GlmmFit, nsim: int, seed: int | None = None, progress=None) -> tuple[np.ndarray, int]:
    """(replicates x parameters, number of failed refits)."""
    if nsim < 2:
        raise UsageError(f"--nsim must be at least 2 for bootstrap intervals, got {nsim}")
    sims = simulate_glmm(fm, nsim, seed)
    trials = np.round(fm.model.wt)
    out, failed = [], 0
    for j in range(nsim):
        y = sims[:, j]
        if fm.gd.response_kind == "cbind":
            y = np.where(trials > 0, y / np.where(trials > 0, trials, 1.0), 0.0)
        try:
            out.append(parameters(fit_glmm(fm.formula, replace(fm.gd, y=y), fm.nagq, hessian=False)))
        except (LmmError, np.linalg.LinAlgError, FloatingPointError, ValueError):
            failed += 1
        if progress is not None:
            progress(j + 1, nsim)
    if not out:
        raise LmmError("every bootstrap refit failed; no intervals")
    return np.array(out), failed


def attach_boot(result, fm: GlmmFit, level: float = 0.95, nsim: int = 1000, seed: int | None = None,
                progress=None):
    """Percentile intervals on the result's fixed effects, sds and correlations."""
    sample, failed = bootstrap(fm, nsim, seed, progress)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(sample, [a, 1.0 - a], axis=0)
    targets = list(result.fixed_effects) + [v for v in result.variance_components] + list(result.correlations)
    for t, low, high in zip(targets, lo, hi):
        t.conf_low, t.conf_high = float(low), float(high)
    result.extra.update(ci_method="boot", ci_level=level,
                        ci_bootstrap={"nsim": nsim, "seed": seed, "failed": failed})
    if failed:
        result.warnings.append(f"{failed} of {nsim} bootstrap refits failed; intervals use the others")
    return result
