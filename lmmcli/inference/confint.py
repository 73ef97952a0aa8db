"""Confidence intervals for fixed effects and variance parameters: Wald, profile likelihood, bootstrap.

    wald     beta_hat -/+ z * se from vcov (as lme4's confint(method = "Wald")); like lme4, no Wald
             intervals for the variance parameters (their sampling distributions are far from normal).
    profile  lme4's default confint(): profile likelihood of the ML deviance (see profile.py).
    boot     parametric bootstrap percentile intervals (see bootstrap.py).

Intervals are keyed by lme4's parameter names (`sd_(Intercept)|Subject`, `cor_Days.(Intercept)|Subject`,
`sigma`, then the fixed-effect terms) and attached to the FitResult's rows as conf_low / conf_high.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from lmmcli.distributions import norm_ppf
from lmmcli.errors import UsageError
from lmmcli.inference.profile import cor_name, sd_name, var_params

METHODS = ("wald", "profile", "boot")


@dataclass
class Intervals:
    """Intervals by lme4 parameter name, with how they were computed."""

    method: str
    level: float
    bounds: dict[str, tuple[float | None, float | None]]
    warnings: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)     # e.g. the bootstrap's nsim, seed, failures


def check_options(method: str, level: float, nsim: int) -> None:
    """Usage errors for --ci, --level and --nsim."""
    if method not in METHODS:
        raise UsageError(f"--ci must be one of {', '.join(METHODS)}, got '{method}'")
    if not 0 < level < 1:
        raise UsageError(f"--level must be between 0 and 1 (e.g. 0.95), got {level}")
    if method == "boot" and nsim < 2:
        raise UsageError(f"--nsim must be at least 2, got {nsim}")


def wald_intervals(fm, level: float = 0.95) -> Intervals:
    """beta_hat -/+ qnorm((1+level)/2) * se; variance parameters get none (as lme4)."""
    z = norm_ppf(0.5 + level / 2)
    se = np.sqrt(np.diag(fm.vcov()))
    bounds = {prm.name: (None, None) for prm in var_params(fm.blocks)}
    for term, b, s in zip(fm.design.fixed_names, fm.sol.beta, se):
        bounds[term] = (float(b - z * s), float(b + z * s))
    return Intervals("wald", level, bounds)


def profile_intervals(fm, level: float = 0.95) -> Intervals:
    """lme4's confint(method = "profile")."""
    from lmmcli.inference.profile import profile_bounds

    bounds, warnings = profile_bounds(fm, level)
    return Intervals("profile", level, bounds, warnings)


def boot_intervals(fm, level: float = 0.95, nsim: int = 1000, seed: int | None = None,
                   workers: int = 2, progress=None) -> Intervals:
    """Parametric bootstrap percentile intervals; progress(done, total) reports the replicates."""
    from lmmcli.inference.bootstrap import bootstrap, percentile_intervals

    sample = bootstrap(fm, nsim, seed, workers, progress)
    failed = sample.failed
    warnings = [f"{failed} of {nsim} bootstrap refits failed; intervals use the others"] if failed else []
    details = {"nsim": nsim, "seed": seed, "failed": failed}
    return Intervals("boot", level, percentile_intervals(sample, level), warnings, details)


def confidence_intervals(fm, method: str = "profile", level: float = 0.95, nsim: int = 1000,
                         seed: int | None = None, workers: int = 2, progress=None) -> Intervals:
    """Intervals by the named method (wald, profile or boot)."""
    check_options(method, level, nsim)
    if method == "wald":
        return wald_intervals(fm, level)
    if method == "profile":
        return profile_intervals(fm, level)
    return boot_intervals(fm, level, nsim, seed, workers, progress)


# -- onto the result rows ----------------------------------------------------------------------------
def _clean(v):
    """A bound as JSON wants it: a float, or None where there is none (None, NaN or infinite)."""
    return None if v is None or not np.isfinite(v) else float(v)


def attach(result, ci: Intervals, groups: dict | None = None) -> None:
    """Set conf_low / conf_high on the fixed-effect, variance-component and correlation rows of a
    FitResult, and ci_method / ci_level (+ ci_bootstrap) among its top-level sections.

    groups: the grouping factor of each row's group name where they differ (lme4's VarCorr calls the
    second term of (Days || Subject) "Subject.1"; its interval is still named sd_Days|Subject)."""
    b = ci.bounds
    groups = groups or {}
    # fresh rows: the result may share them with FittedModel.result(), which stays as assembled
    result.fixed_effects = [dataclasses.replace(r) for r in result.fixed_effects]
    result.variance_components = [dataclasses.replace(r) for r in result.variance_components]
    result.correlations = [dataclasses.replace(r) for r in result.correlations]
    for fe in result.fixed_effects:
        fe.conf_low, fe.conf_high = (_clean(v) for v in b.get(fe.term, (None, None)))
    for vc in result.variance_components:
        name = "sigma" if vc.group == "Residual" and vc.term is None else \
            sd_name(vc.term, groups.get(vc.group, vc.group))
        vc.conf_low, vc.conf_high = (_clean(v) for v in b.get(name, (None, None)))
    for c in result.correlations:
        name = cor_name(c.term2, c.term1, groups.get(c.group, c.group))
        c.conf_low, c.conf_high = (_clean(v) for v in b.get(name, (None, None)))
    result.extra["ci_method"] = ci.method
    result.extra["ci_level"] = ci.level
    if ci.details:
        result.extra["ci_bootstrap"] = dict(ci.details)
    result.warnings.extend(ci.warnings)
