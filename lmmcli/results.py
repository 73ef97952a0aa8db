"""Result types: plain data that renderers format. `to_dict()` is the one serialiser (JSON-ready)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass

import numpy as np

SCHEMA_VERSION = 1
SINGULAR_WARNING = ("boundary (singular) fit: see help('isSingular') in lme4; a variance is estimated as 0 "
                    "or a correlation as +/-1")


def clean(value):
    """JSON-ready copy: numpy to Python, NaN/inf to None, dataclasses to dicts (snake_case keys).

    Iterative where the documents are big: a list of dataclasses of one type (10,000 groups' random
    effects) is converted row by row with its field names looked up once, numeric arrays by numpy."""
    t = type(value)
    if t is float:
        return value if math.isfinite(value) else None
    if t is str or t is int or t is bool or value is None:
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {name: clean(getattr(value, name)) for name in _field_names(t)}
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return _clean_rows(value) if value and is_dataclass(value[0]) else [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean_array(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def _field_names(cls) -> tuple[str, ...]:
    """A dataclass's public field names (cached per class)."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in fields(cls) if not f.name.startswith("_"))
    return names


_FIELDS: dict = {}
_PLAIN = (str, int, bool, type(None))


def _clean_rows(rows) -> list:
    """clean() of each item of a list that starts with a dataclass (fast when all share its type)."""
    cls = type(rows[0])
    if any(type(r) is not cls for r in rows):
        return [clean(r) for r in rows]
    names = _field_names(cls)
    out = []
    for r in rows:
        d = {}
        for name in names:
            v = getattr(r, name)
            t = type(v)
            d[name] = v if t in _PLAIN else (v if t is float and math.isfinite(v) else clean(v))
        out.append(d)
    return out


def _clean_array(a: np.ndarray):
    """A numpy array as nested lists: numbers through tolist (non-finite ones to None), others by clean."""
    if a.dtype.kind in "fc" and a.size and not np.all(np.isfinite(a)):
        return np.where(np.isfinite(a), a, None).tolist()
    if a.dtype.kind in "biuf":
        return a.tolist()
    return clean(a.tolist())


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
