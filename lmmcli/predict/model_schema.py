"""The schema of a saved model (schema_version 1 and 2), checked as a whole before anything is built from it.

A schema is made of small checkers (a checker is a function of (value, where) that raises Malformed);
`validate(doc)` names the first place where the document differs from the schema: a wrong type, a missing
or unexpected name, a non-finite number, a negative variance. The fit summary is an open record: its known
fields are checked, fields added by newer fits are allowed (it is only echoed back, never computed with).
"""

from __future__ import annotations

import math


class Malformed(Exception):
    """The document does not have the schema's shape."""


def _fail(where: str, what: str, value) -> None:
    shown = repr(value)
    raise Malformed(f"{where} {what} (got {shown[:40] + '...' if len(shown) > 40 else shown})")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# -- checkers -----------------------------------------------------------------------------------
def text(v, where):
    if not isinstance(v, str):
        _fail(where, "must be text", v)


def boolean(v, where):
    if not isinstance(v, bool):
        _fail(where, "must be true or false", v)


def integer(v, where):
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        _fail(where, "must be a whole number >= 0", v)


def number(v, where):
    if not _is_number(v) or not math.isfinite(v):
        _fail(where, "must be a finite number", v)


def nonnegative(v, where):
    number(v, where)
    if v < 0:
        _fail(where, "must not be negative (a variance or standard deviation)", v)


def positive(v, where):
    number(v, where)
    if v <= 0:
        _fail(where, "must be positive", v)


def one_of(*values):
    def check(v, where):
        if v not in values:
            _fail(where, f"must be one of {', '.join(map(repr, values))}", v)
    return check


def nullable(inner):
    def check(v, where):
        if v is not None:
            inner(v, where)
    return check


def list_of(inner, length: int | None = None):
    def check(v, where):
        if not isinstance(v, list):
            _fail(where, "must be a list", v)
        if length is not None and len(v) != length:
            _fail(where, f"must have {length} entries", v)
        for i, item in enumerate(v):
            inner(item, f"{where}[{i}]")
    return check


def dict_of(inner):
    def check(v, where):
        if not isinstance(v, dict):
            _fail(where, "must be an object", v)
        for k, item in v.items():
            inner(item, f"{where}.{k}")
    return check


def record(fields: dict, optional=(), open_: bool = False):
    """An object with these fields (all required but the optional ones); no others unless open_."""
    def check(v, where):
        if not isinstance(v, dict):
            _fail(where, "must be an object", v)
        for k in fields:
            if k not in v and k not in optional:
                raise Malformed(f"{where}: missing key '{k}'")
        if not open_:
            extra = [k for k in v if k not in fields]
            if extra:
                raise Malformed(f"{where} has an unexpected name '{extra[0]}'")
        for k, inner in fields.items():
            if k in v:
                inner(v[k], f"{where}.{k}")
    return check


NUMBERS = list_of(number)
MATRIX = list_of(NUMBERS)
NULLNUM = nullable(number)

SPEC = record({
    "variables": list_of(record({"label": text, "kind": one_of("numeric", "matrix", "factor"),
                                 "levels": list_of(text)})),
    "scale_state": dict_of(lambda v, w: (list_of(number, 2)(v, w), positive(v[1], f"{w}[1] (the scale)"))),
    "factor_columns": list_of(text),
    "refs": dict_of(text),
    "fixed_names": list_of(text),
    "aliased": list_of(text),
    "contrasts": dict_of(text),
    "transforms": dict_of(record({}, open_=True)),     # poly/ns/bs coefficients; checked by saved_model
    "weights": nullable(text),
}, optional=("aliased", "contrasts", "transforms", "weights"))

TERM = record({
    "index": integer, "group": text, "terms": list_of(text), "levels": list_of(text), "correlated": boolean,
    "b": MATRIX, "cond_var": list_of(MATRIX), "cov": MATRIX,
})

SUMMARY = record({
    "schema_version": integer, "formula": text, "method": one_of("REML", "ML"),
    "nobs": integer, "n_dropped": integer, "ngroups": dict_of(integer),
    "reml_criterion": NULLNUM, "deviance": NULLNUM, "loglik": NULLNUM, "aic": NULLNUM, "bic": NULLNUM,
    "npar": integer, "df_resid": nullable(number), "sigma": nullable(nonnegative), "theta": NUMBERS,
    "converged": boolean, "singular": boolean, "warnings": list_of(text),
    "optimizer": record({}, open_=True),
    "fixed_effects": list_of(record({"term": text, "estimate": NULLNUM, "std_error": nullable(nonnegative)},
                                    open_=True)),
    "variance_components": list_of(record({"variance": nullable(nonnegative), "sd": nullable(nonnegative)},
                                          optional=("variance", "sd"), open_=True)),
    "correlations": list_of(record({"correlation": NULLNUM}, optional=("correlation",), open_=True)),
    "scaled_residuals": dict_of(NULLNUM),
}, optional=("schema_version", "formula", "method", "nobs", "n_dropped", "ngroups", "reml_criterion",
             "deviance", "loglik", "aic", "bic", "npar", "df_resid", "sigma", "theta", "converged", "singular",
             "warnings", "optimizer", "fixed_effects", "variance_components", "correlations",
             "scaled_residuals"), open_=True)

DOCUMENT = record({
    "format": text, "schema_version": integer, "lmm_version": text, "formula": text,
    "method": one_of("REML", "ML"), "spec": SPEC, "theta": NUMBERS, "beta": NUMBERS, "vcov": MATRIX,
    "sigma": nonnegative, "random_terms": list_of(TERM), "summary": SUMMARY,
    "analysis": record({}, open_=True),     # lmm anova/emmeans --model: saved_analysis.py checks its contents
}, optional=("analysis",))


def validate(doc) -> None:
    """Raise Malformed at the first place where doc is not a schema-1 saved model."""
    DOCUMENT(doc, "the model")
