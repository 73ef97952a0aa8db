"""Saved models: a fitted model as versioned, self-describing JSON, and back, for prediction without refitting.

The file holds the formula text (re-parsed on load), the ModelSpec (variables with factor levels,
reference first; scale() centres and scales; --factor columns; --ref levels; the kept fixed-effect
columns), theta, beta, vcov, sigma, every random term's levels, conditional modes and conditional
covariances, and the fit summary. Floats are written with Python's repr, so they load bit for bit.

Layout (schema_version 2; a version 1 file has no transforms, contrasts or weights):
    {"format": "lmm-model", "schema_version": 1, "lmm_version", "formula", "method",
     "spec": {"variables": [{"label", "kind", "levels"}], "scale_state": {expr: [centre, scale]},
              "factor_columns", "refs", "fixed_names", "aliased",
              "transforms": {expr: {poly's alpha, norm2 | ns/bs knots, boundary, degree}},
              "contrasts": {factor: kind}, "weights": column or null},
     "theta", "beta", "vcov", "sigma",
     "random_terms": [{"index", "group", "terms", "levels", "correlated", "b", "cond_var", "cov"}],
     "summary": {... lmm fit --format json without random_effects and vcov ...},
     "analysis": {...}}   optional: what lmm anova / emmeans --model need (saved_analysis.py)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lmmcli import __version__
from lmmcli.design.design import ModelSpec
from lmmcli.design.variables import VarInfo, predictor_terms
from lmmcli.design.transforms import CONTRASTS
from lmmcli.errors import DataError, LmmError
from lmmcli.formula import deparse, parse_formula
from lmmcli.predict.model_schema import Malformed, validate
from lmmcli.predict.predict import ModelState, TermState
from lmmcli.results import clean

FORMAT = "lmm-model"
SCHEMA_VERSION = 2      # 2: transforms (poly/ns/bs), contrasts and weights in the spec; version 1 still reads


# -- saving ----------------------------------------------------------------------------------
def _spec_dict(spec: ModelSpec) -> dict:
    return {
        "variables": [{"label": v.label, "kind": v.kind, "levels": list(v.levels)} for v in spec.variables.values()],
        "scale_state": {k: [float(c), float(s)] for k, (c, s) in spec.scale_state.items()},
        "factor_columns": list(spec.factor_columns),
        "refs": dict(spec.refs),
        "fixed_names": list(spec.fixed_names),
        "aliased": list(spec.aliased),
        "transforms": spec.transforms,
        "contrasts": dict(spec.contrasts),
        "weights": spec.weights,
    }


def _term_dict(t: TermState) -> dict:
    return {"index": t.index, "group": t.group, "terms": list(t.terms), "levels": list(t.levels),
            "correlated": t.correlated, "b": t.b.tolist(), "cond_var": t.cond_var.tolist(), "cov": t.cov.tolist()}


def to_dict(state: ModelState) -> dict:
    """The saved-model document of a ModelState."""
    return {
        "format": FORMAT, "schema_version": SCHEMA_VERSION, "lmm_version": __version__,
        "formula": state.formula.text, "method": "REML" if state.reml else "ML",
        "spec": _spec_dict(state.spec),
        "theta": state.theta.tolist(), "beta": state.beta.tolist(), "vcov": state.vcov.tolist(),
        "sigma": state.sigma,
        "random_terms": [_term_dict(t) for t in state.terms],
        "summary": clean(state.summary),
    }


def dumps(state: ModelState, extra: dict | None = None) -> str:
    """The saved model as JSON text (with `extra` sections, e.g. "analysis"); non-finite numbers are refused
    rather than written as NaN."""
    try:
        return json.dumps({**to_dict(state), **(extra or {})}, indent=1, allow_nan=False) + "\n"
    except ValueError as exc:
        raise DataError("cannot save the model: it has non-finite numbers (the fit failed?)") from exc


# -- loading ---------------------------------------------------------------------------------
_Malformed = Malformed      # the schema's error, raised here too for checks the schema cannot express


MAX_BYTES = 1 << 30        # 1 GiB: far above any real model (InstEval's is ~5 MB); a cap on what is read


def load(path: str) -> ModelState:
    """Read a saved model; a newer, foreign, oversized, too deeply nested or malformed file is a DataError
    naming what is wrong."""
    p = Path(path)
    try:
        if not p.is_file():
            raise DataError(f"model file '{path}' does not exist")
        size = p.stat().st_size
    except OSError as exc:      # a name too long for the file system, a loop of links
        raise DataError(f"cannot read model file '{path[:60]}...': {exc.strerror or exc}") from exc
    if size > MAX_BYTES:
        raise DataError(f"'{p.name}' is {size / 2**20:.0f} MB, larger than any saved lmm model "
                        f"(the limit is {MAX_BYTES >> 20} MB)")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"'{p.name}' is not a saved lmm model: not valid JSON ({exc})") from exc
    except _Malformed as exc:
        raise DataError(f"malformed model file '{p.name}': {exc}") from exc
    except RecursionError as exc:
        raise DataError(f"'{p.name}' is not a saved lmm model: its JSON is nested too deeply") from exc
    return from_dict(doc, p.name)


def _no_constant(name: str):
    """json's hook for NaN and Infinity, which a saved model never holds (dumps refuses them)."""
    raise _Malformed(f"it holds {name}, which a saved model never does")


def from_dict(doc, name: str = "the model file") -> ModelState:
    """The ModelState of a saved-model document, checked against the schema first."""
    _check_header(doc, name)
    try:
        validate(doc)
        return _build(doc)
    except LmmError as exc:
        raise DataError(f"malformed model file '{name}': its formula does not parse ({exc.message})") from exc
    except (_Malformed, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise DataError(f"malformed model file '{name}': {_describe(exc)}",
                        hint="save it again with `lmm fit ... --save FILE`") from exc


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing key {exc}"
    return str(exc) or type(exc).__name__


def _check_header(doc, name: str) -> None:
    """The document is an lmm model of a schema version this lmm reads."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DataError(f"'{name}' is not a saved lmm model (no \"format\": \"{FORMAT}\")",
                        hint="write one with `lmm fit DATA FORMULA --save model.json`")
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DataError(f"malformed model file '{name}': bad schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise DataError(f"'{name}' was saved with model schema version {version} "
                        f"(by lmm {doc.get('lmm_version', '?')}); this lmm {__version__} reads up to "
                        f"version {SCHEMA_VERSION}", hint="upgrade lmm, or refit and save with this version")


def _array(value, shape, what: str) -> np.ndarray:
    """A finite float array of the given shape."""
    a = np.asarray(value, dtype=float)
    if a.shape != tuple(shape):
        raise _Malformed(f"'{what}' has shape {a.shape}, expected {tuple(shape)}")
    if not np.all(np.isfinite(a)):
        raise _Malformed(f"'{what}' has non-finite values")
    return a


def _spec(d: dict, formula) -> ModelSpec:
    variables = {}
    for v in d["variables"]:
        if v["kind"] not in ("numeric", "matrix", "factor"):
            raise _Malformed(f"variable '{v['label']}' has unknown kind '{v['kind']}'")
        variables[str(v["label"])] = VarInfo(str(v["label"]), v["kind"], tuple(str(x) for x in v["levels"]))
    scale = {str(k): (float(c), float(s)) for k, (c, s) in d["scale_state"].items()}
    for term in predictor_terms(formula):
        for e in term.factors:
            if deparse(e) not in variables:
                raise _Malformed(f"no variable entry for '{deparse(e)}'")
    transforms = {str(k): _transform(v) for k, v in d.get("transforms", {}).items()}
    contrasts = {str(k): str(v) for k, v in d.get("contrasts", {}).items()}
    for label, kind in contrasts.items():
        if kind not in CONTRASTS or label not in variables:
            raise _Malformed(f"bad contrasts entry '{label}': '{kind}'")
    weights = d.get("weights")
    return ModelSpec(formula, variables, scale, tuple(d["factor_columns"]), dict(d["refs"]),
                     [str(x) for x in d["fixed_names"]], [str(x) for x in d.get("aliased", [])],
                     transforms, contrasts, None if weights is None else str(weights))


def _transform(v) -> dict:
    """One poly/ns/bs coefficient set: a dict of finite numbers and lists of them."""
    if not isinstance(v, dict):
        raise _Malformed("a transforms entry is not an object")
    for key, value in v.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(x, (int, float)) and np.isfinite(x) for x in values):
            raise _Malformed(f"transforms entry '{key}' has non-numeric values")
    return v


def _term(d: dict, formula) -> TermState:
    index = int(d["index"])
    if not 0 <= index < len(formula.random) or formula.random[index].group_label != d["group"]:
        raise _Malformed(f"random term {index} ('{d['group']}') does not match the formula")
    terms, levels = tuple(map(str, d["terms"])), tuple(map(str, d["levels"]))
    p, n = len(terms), len(levels)
    cond_var = _array(d["cond_var"], (n, p, p), f"cond_var of {d['group']}")
    if n and (np.diagonal(cond_var, axis1=1, axis2=2) < 0).any():
        raise _Malformed(f"cond_var of {d['group']} has negative variances")
    return TermState(index, str(d["group"]), terms, levels, bool(d["correlated"]),
                     _array(d["b"], (n, p), f"b of {d['group']}"), cond_var,
                     _covariance(d["cov"], p, f"cov of {d['group']}"))


def _covariance(value, p: int, what: str) -> np.ndarray:
    """A covariance matrix: symmetric, positive semi-definite (so no negative variances)."""
    a = _array(value, (p, p), what)
    scale = max(1.0, float(np.abs(a).max())) if a.size else 1.0
    if not np.allclose(a, a.T, rtol=1e-10, atol=1e-12 * scale):
        raise _Malformed(f"'{what}' is not symmetric")
    if (np.diag(a) < 0).any():
        raise _Malformed(f"'{what}' has negative variances")
    if a.size and np.linalg.eigvalsh(a).min() < -1e-8 * scale:
        raise _Malformed(f"'{what}' is not a covariance matrix (not positive semi-definite)")
    return a


def _build(doc: dict) -> ModelState:
    formula = parse_formula(doc["formula"])
    spec = _spec(doc["spec"], formula)
    p = len(spec.fixed_names)
    terms = [_term(t, formula) for t in doc["random_terms"]]
    if sorted(t.index for t in terms) != list(range(len(formula.random))):
        raise _Malformed("the random terms do not cover the formula's random terms")
    expected = sum(len(t.terms) * (len(t.terms) + 1) // 2 if t.correlated else len(t.terms) for t in terms)
    if len(doc["theta"]) != expected:
        raise _Malformed(f"'theta' has {len(doc['theta'])} values, but the random terms need {expected}")
    if doc["method"] not in ("REML", "ML"):
        raise _Malformed(f"unknown method '{doc['method']}'")
    sigma = float(doc["sigma"])
    if not (np.isfinite(sigma) and sigma >= 0):
        raise _Malformed(f"bad sigma {doc['sigma']!r}")
    return ModelState(spec, doc["method"] == "REML", _array(doc["beta"], (p,), "beta"),
                      _covariance(doc["vcov"], p, "vcov"), sigma,
                      np.asarray(doc["theta"], dtype=float), terms, dict(doc.get("summary") or {}))
