"""Result types: plain data that renderers format. `to_dict()` is the one serialiser (JSON-ready)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass

import numpy as np

SCHEMA_VERSION = 1


def clean(value):
    """JSON-ready copy: numpy to Python, NaN/inf to None, dataclasses to dicts (snake_case keys)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: clean(getattr(value, f.name)) for f in fields(value) if not f.name.startswith("_")}
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def report_dict(result) -> dict:
    """A report's JSON document: schema_version first, then every field, then its `extra` sections
    merged at the top level (the one layout of FitResult and lm.LmResult)."""
    d = clean(result)
    extra = d.pop("extra", {}) or {}
    out = {"schema_version": d.pop("schema_version")}
    out.update(d)
    out.update(extra)
    return out


@dataclass
class FixedEffect:
    """One row of the fixed-effects table."""

    term: str
    estimate: float
    std_error: float
    statistic: float
    df: float | None = None
    p_value: float | None = None
    conf_low: float | None = None
    conf_high: float | None = None


@dataclass
class VarianceComponent:
    """One random term's variance (or the residual's), with its sd."""

    group: str
    term: str | None
    variance: float
    sd: float
    conf_low: float | None = None
    conf_high: float | None = None
    share: float | None = None


@dataclass
class Correlation:
    """The correlation between two random terms of one grouping factor."""

    group: str
    term1: str
    term2: str
    correlation: float
    conf_low: float | None = None
    conf_high: float | None = None


@dataclass
class RandomEffect:
    """A conditional mode and its conditional sd (lme4's ranef(condVar = TRUE))."""

    group: str
    level: str
    term: str
    estimate: float
    std_error: float


@dataclass
class FitResult:
    """Everything `lmm fit` reports about one fitted model."""

    formula: str
    method: str                           # "REML" or "ML"
    nobs: int
    n_dropped: int
    ngroups: dict[str, int]
    reml_criterion: float | None
    deviance: float | None
    loglik: float
    aic: float
    bic: float
    npar: int
    df_resid: int
    sigma: float
    theta: list[float]
    converged: bool
    singular: bool
    optimizer: dict
    warnings: list[str]
    fixed_effects: list[FixedEffect]
    vcov: np.ndarray            # p x p (an array: at p = 5,000 a list of lists would take 1 GB)
    variance_components: list[VarianceComponent]
    correlations: list[Correlation]
    random_effects: list[RandomEffect]
    scaled_residuals: dict[str, float]
    extra: dict = field(default_factory=dict)   # optional sections (inference, ICC, ...) by name
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        """The JSON document: every field, optional sections merged at the top level."""
        return report_dict(self)

    @property
    def fixed_names(self) -> list[str]:
        return [fe.term for fe in self.fixed_effects]
