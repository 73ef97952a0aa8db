"""Predictions from a fitted model for its own rows or new rows (lme4's predict.merMod), with intervals.

A ModelState holds only what predictions need (the ModelSpec, beta, vcov, sigma and, per random
term, its levels, conditional modes b, conditional covariances Var(b|y) and covariance Sigma), so
the same code predicts from a fresh fit and from a saved model (model_io).

Rows. Predictions come back one per input row, in the input's order. A row with a missing value
in a column the prediction needs gets a null prediction (lme4 would drop it under na.omit); the
response is never needed. A group level not seen in fitting contributes nothing for that term
(lme4's allow.new.levels = TRUE: the population value) and the row is flagged `new_level`.

Intervals (normal quantiles, as merTools' predictInterval):
    confidence, population   Var = x' V(beta) x
    confidence, conditional  Var = x' V(beta) x + z' Var(b|y) z     (new level: + 0)
    prediction               the above + sigma^2, where a new level (or --population) adds
                             z' Sigma z for that term: a new group's effect is unknown.
The covariance between beta-hat and b is ignored, as merTools does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmmcli.design.design import Evaluator, ModelSpec, complete_rows, fixed_matrix, model_columns, offset_values
from lmmcli.distributions import interval_z
from lmmcli.errors import DataError, ModelSpecError, UsageError
from lmmcli.formula import names_in
from lmmcli.io.frame import as_frame, missing
from lmmcli.design.levels import value_labels

INTERVALS = ("confidence", "prediction")
METHOD = {
    ("confidence", True): "analytic: Var = x'V(beta)x; normal quantiles",
    ("prediction", True): "analytic: Var = x'V(beta)x + sum over terms z'Sigma z + sigma^2; normal quantiles",
    ("confidence", False): "analytic: Var = x'V(beta)x + z'Var(b|y)z (new levels: + 0); normal quantiles; "
                           "covariance of beta-hat and b ignored (as merTools' predictInterval)",
    ("prediction", False): "analytic: Var = x'V(beta)x + z'Var(b|y)z + sigma^2 (new levels: z'Sigma z "
                           "instead of z'Var(b|y)z); normal quantiles; covariance of beta-hat and b "
                           "ignored (as merTools' predictInterval)",
}


@dataclass
class TermState:
    """One random-effects term as fitted: which formula term, its levels, b, Var(b|y) and Sigma."""

    index: int                     # position of the term in spec.formula.random
    group: str
    terms: tuple[str, ...]
    levels: tuple[str, ...]
    correlated: bool
    b: np.ndarray                  # (levels, p) conditional modes
    cond_var: np.ndarray           # (levels, p, p) conditional covariances
    cov: np.ndarray                # (p, p) sigma^2 T T'


@dataclass
class ModelState:
    """Everything needed to predict, without the training data."""

    spec: ModelSpec
    reml: bool
    beta: np.ndarray
    vcov: np.ndarray
    sigma: float
    theta: np.ndarray
    terms: list[TermState]
    summary: dict = field(default_factory=dict)

    @property
    def formula(self):
        return self.spec.formula


@dataclass
class Predictions:
    """One prediction per input row (None where the row could not be predicted)."""

    prediction: list
    population: bool
    new_level: list | None = None
    interval: str | None = None
    level: float | None = None
    lower: list | None = None
    upper: list | None = None
    interval_method: str | None = None
    kept: dict = field(default_factory=dict)

    @property
    def n_missing(self) -> int:
        """Rows not predicted (a needed value is missing)."""
        return sum(v is None for v in self.prediction)

    @property
    def n_new_level(self) -> int:
        """Rows with a group level not seen in fitting."""
        return sum(v is True for v in self.new_level or ())

    def header(self) -> dict:
        """What the predictions are: type, and the interval with its level and method."""
        d = {"type": "population" if self.population else "conditional"}
        if self.interval:
            d.update(interval=self.interval, level=self.level, interval_method=self.interval_method)
        return d

    def rows(self) -> list[dict]:
        """Flat rows: row (1-based input row), kept columns, prediction, interval, new_level."""
        low, high = ("conf_low", "conf_high") if self.interval == "confidence" else ("pred_low", "pred_high")
        out = []
        for i, pred in enumerate(self.prediction):
            row = {"row": i + 1, **{k: v[i] for k, v in self.kept.items()}, "prediction": pred}
            if self.interval:
                row[low], row[high] = self.lower[i], self.upper[i]
            if self.new_level is not None:
                row["new_level"] = self.new_level[i]
            out.append(row)
        return out

    def to_dict(self) -> dict:
        """The JSON document: the header plus {"predictions": [...]}."""
        return {**self.header(), "predictions": self.rows()}


def state_from_fit(fm) -> ModelState:
    """The ModelState of a FittedModel."""
    spec = fm.design.spec
    covs = fm.covariances()
    idx = match_terms(spec.formula.random, [blk.group for blk in fm.blocks])
    terms = [TermState(i, blk.group, tuple(blk.terms), tuple(blk.levels), blk.correlated, b, V, C)
             for i, blk, b, V, C in zip(idx, fm.blocks, fm.sol.b, fm.sol.cond_var, covs)]
    result = fm.result().to_dict()
    summary = {k: v for k, v in result.items() if k not in ("random_effects", "vcov")}
    return ModelState(spec, fm.reml, fm.sol.beta.copy(), fm.vcov(), float(fm.sol.sigma),
                      np.asarray(fm.sol.theta, dtype=float), terms, summary)


def match_terms(random_terms, block_groups) -> list[int]:
    """Formula term index of each block. Blocks are the terms stably sorted by level count, and terms
    with the same grouping factor have the same count, so the first unused term of that group matches."""
    used, out = set(), []
    for g in block_groups:
        i = next(k for k, rt in enumerate(random_terms) if rt.group_label == g and k not in used)
        used.add(i)
        out.append(i)
    return out


# -- columns and rows ------------------------------------------------------------------------
def needed_columns(spec: ModelSpec, population: bool, random_terms: bool | None = None) -> list[str]:
    """Columns the prediction reads: the fixed terms; the random terms' columns when conditional (or
    random_terms is set: population prediction intervals need z); the grouping factors when conditional."""
    f = spec.formula
    terms = list(f.fixed)
    if random_terms or (random_terms is None and not population):
        terms += [t for rt in f.random for t in rt.terms]
    cols = set().union(set(), *(names_in(e) for t in terms for e in t.factors), *(names_in(e) for e in f.offsets))
    if not population:
        cols |= {g for rt in f.random for g in rt.group}
    return sorted(cols)


def check_new_columns(df, cols, source: str) -> None:
    """Every needed column is in the new data; otherwise one clear error naming all that are missing."""
    import difflib

    missing = [c for c in cols if c not in df.columns]
    if missing:
        close = difflib.get_close_matches(missing[0], [str(c) for c in df.columns], n=1)
        raise DataError(f"{source} lacks column{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(repr(c) for c in missing)} needed for the prediction",
                        hint=f"did you mean '{close[0]}'?" if close else None)


def group_labels(df, group: tuple[str, ...]) -> np.ndarray:
    """Labels of the grouping factor for each row, spelled as design.group_codes spells levels."""
    labels = None
    for col in group:
        lab = value_labels(df[col])
        labels = lab if labels is None else np.array([f"{a}:{b}" for a, b in zip(labels, lab)], dtype=object)
    return labels


def level_codes(labels, levels) -> np.ndarray:
    """Index of each label among the fitted levels; -1 for a level not seen in fitting."""
    index = {lv: k for k, lv in enumerate(levels)}
    return np.fromiter((index.get(v, -1) for v in labels), dtype=np.int64, count=len(labels))


# -- the computation -------------------------------------------------------------------------
@dataclass
class _TermRows:
    """A random term evaluated on the rows: its model columns and each row's level code."""

    term: TermState
    Z: np.ndarray
    codes: np.ndarray


def term_rows(state: ModelState, df, groups: bool = True) -> list[_TermRows]:
    """Z columns (design.model_columns with the term's own terms) and level codes for every term
    (all -1, no level known, when groups is False: population predictions)."""
    ev = Evaluator.for_spec(state.spec, df)
    out = []
    for t in state.terms:
        rt = state.formula.random[t.index]
        names, Z = model_columns(rt.terms, rt.intercept, state.spec, ev)
        if tuple(names) != t.terms:
            raise ModelSpecError(f"random term '({rt.group_label})' gives columns {names} for the new data, "
                                 f"the fit had {list(t.terms)}")
        codes = level_codes(group_labels(df, rt.group), t.levels) if groups else np.full(len(df), -1)
        out.append(_TermRows(t, Z, codes))
    return out


def _random_part(parts: list[_TermRows], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Z b for known levels (0 for new levels), and whether each row has any new level."""
    zb, new = np.zeros(n), np.zeros(n, dtype=bool)
    for pr in parts:
        known = pr.codes >= 0
        b = pr.term.b[np.where(known, pr.codes, 0)]
        zb += np.where(known, np.einsum("ij,ij->i", pr.Z, b), 0.0)
        new |= ~known
    return zb, new


def _quad(Z: np.ndarray, V: np.ndarray) -> np.ndarray:
    """z' V z per row, V one matrix or one per row."""
    if V.ndim == 2:
        return np.einsum("ij,jk,ik->i", Z, V, Z)
    return np.einsum("ij,ijk,ik->i", Z, V, Z)


def _variance(state, X, parts, interval: str, population: bool, weights=None) -> np.ndarray:
    """The variance behind each row's interval (see the module docstring); a new observation's residual
    variance is sigma^2 / w under prior weights."""
    var = _quad(X, state.vcov)
    predictive = interval == "prediction"
    for pr in parts:
        known = pr.codes >= 0
        if not population:
            cv = pr.term.cond_var[np.where(known, pr.codes, 0)]
            var += np.where(known, _quad(pr.Z, cv), 0.0)
        if predictive:
            unknown = np.ones_like(known) if population else ~known
            var += np.where(unknown, _quad(pr.Z, pr.term.cov), 0.0)
    if predictive:
        var += state.sigma ** 2 / (1.0 if weights is None else weights)
    return var


def new_weights(spec: ModelSpec, df) -> np.ndarray | None:
    """Prior weights of new rows for prediction intervals: the weights column when the new data has it
    (a missing or non-positive value gives no interval), else None (weight 1)."""
    if spec.weights is None or spec.weights not in df.columns:
        return None
    w = np.asarray(df[spec.weights], dtype=float)
    return np.where(w > 0, w, np.nan)


def predict(state: ModelState, df, population: bool = False, interval: str | None = None,
            level: float = 0.95, keep=(), source: str = "the data") -> Predictions:
    """Predict every row of df (None where a needed value is missing)."""
    if interval is not None and interval not in INTERVALS:
        raise UsageError(f"--interval must be 'confidence' or 'prediction', not '{interval}'")
    interval_z(level)   # a bad --level is refused even without --interval, never silently ignored
    df = as_frame(df)
    need_z = not population or interval == "prediction"
    cols = needed_columns(state.spec, population, need_z)
    check_new_columns(df, cols + [k for k in keep if k not in cols], source)
    rows = complete_rows(df, cols) if cols else np.arange(len(df))
    sub = df.take(rows)
    X = fixed_matrix(state.spec, sub)
    parts = term_rows(state, sub, groups=not population) if need_z else []
    eta = X @ state.beta + offset_values(state.spec, sub)
    zb, new = _random_part(parts, len(sub))
    pred = eta if population else eta + zb
    out = Predictions(_spread(pred, rows, len(df)), population, kept={k: _column_values(df[k]) for k in keep})
    if not population:
        out.new_level = _spread(new, rows, len(df))
    if interval:
        _add_interval(out, state, X, parts, pred, interval, level, rows, len(df), new_weights(state.spec, sub))
    return out


def _add_interval(out, state, X, parts, pred, interval, level, rows, n, weights=None):
    """Lower and upper limits at `level` with normal quantiles."""
    se = np.sqrt(np.maximum(_variance(state, X, parts, interval, out.population, weights), 0.0))
    q = interval_z(level)
    out.interval, out.level = interval, level
    out.lower, out.upper = _spread(pred - q * se, rows, n), _spread(pred + q * se, rows, n)
    out.interval_method = METHOD[(interval, out.population or not state.terms)]
    if interval == "prediction" and state.spec.weights is not None:
        out.interval_method += (f"; residual variance sigma^2/w with w from column '{state.spec.weights}'"
                                if weights is not None else
                                f"; residual variance sigma^2 (weight 1: the new data has no column "
                                f"'{state.spec.weights}')")


def _spread(values: np.ndarray, rows: np.ndarray, n: int) -> list:
    """Values for the predicted rows placed at their input positions; None elsewhere."""
    full = [None] * n
    for r, v in zip(rows.tolist(), values.tolist()):
        full[r] = v
    return full


def _column_values(col) -> list:
    """A kept column's values as plain Python (NaN as None)."""
    return [None if gone else (v.item() if hasattr(v, "item") else v) for v, gone in zip(col.tolist(), missing(col))]


def predictions_arrow(p: Predictions):
    """A pyarrow Table of the rows, with the interval method in the schema metadata."""
    import pyarrow as pa

    rows = p.rows()
    names = list(rows[0].keys()) if rows else ["row", "prediction"]
    table = pa.table({k: [r[k] for r in rows] for k in names})
    return table.replace_schema_metadata({k: str(v) for k, v in p.header().items()})


__all__ = ["ModelState", "TermState", "Predictions", "state_from_fit", "predict", "predictions_arrow",
           "match_terms", "needed_columns"]
