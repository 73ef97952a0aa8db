"""Random effects (lme4's ranef(condVar = TRUE)) and group-specific coefficients (lme4's coef()) as rows.

Rows follow mixedup's extract_random_effects / extract_coef: group, level, term, estimate,
std_error, conf_low, conf_high. Groups come in the fit's order (largest grouping factor first);
terms of one grouping factor split over several random terms, e.g. (Days || Subject), are merged
as lme4's ranef() merges them. Intervals are estimate +/- z * std_error with normal quantiles.

coef: estimate = beta_j + b_j (b_j = 0 for a term without a random part); its std_error is
sqrt(Var(beta_j) + Var(b_j | y)), mixedup's approximation, which ignores the covariance of
beta-hat and b.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lmmcli.distributions import interval_z
from lmmcli.errors import ModelSpecError
from lmmcli.predict.predict import ModelState
from lmmcli.results import RandomEffect


@dataclass
class EffectRow(RandomEffect):
    """One (group, level, term) value with its standard error and interval (mixedup's columns)."""

    conf_low: float
    conf_high: float


@dataclass
class _Group:
    """A grouping factor's levels with every random term's b and conditional variance on it."""

    name: str
    levels: tuple[str, ...]
    terms: list[str]
    b: np.ndarray          # (levels, terms)
    var: np.ndarray        # (levels, terms): Var(b | y) diagonals


def merged_groups(state: ModelState) -> list[_Group]:
    """Random terms of the same grouping factor merged, in the fit's order."""
    groups: dict[str, _Group] = {}
    for t in state.terms:
        var = np.diagonal(t.cond_var, axis1=1, axis2=2)
        g = groups.get(t.group)
        if g is None:
            groups[t.group] = _Group(t.group, t.levels, list(t.terms), t.b.copy(), var.copy())
        else:
            g.terms += list(t.terms)
            g.b = np.hstack([g.b, t.b])
            g.var = np.hstack([g.var, var])
    return list(groups.values())


def _row(group, level, term, est, var, q) -> EffectRow:
    se = float(np.sqrt(max(var, 0.0)))
    return EffectRow(group, level, term, float(est), se, float(est - q * se), float(est + q * se))


def ranef_rows(state: ModelState, level: float = 0.95) -> list[EffectRow]:
    """Conditional modes and sds of every random effect, by group, level, then term."""
    q = interval_z(level)
    return [_row(g.name, lv, term, g.b[i, j], g.var[i, j], q)
            for g in merged_groups(state) for i, lv in enumerate(g.levels) for j, term in enumerate(g.terms)]


def coef_rows(state: ModelState, level: float = 0.95) -> list[EffectRow]:
    """beta + b per group and level, for every fixed effect (then any random-only term)."""
    q = interval_z(level)
    fixed = list(state.spec.fixed_names)
    vbeta = np.diag(state.vcov)
    rows = []
    for g in merged_groups(state):
        names = fixed + [t for t in g.terms if t not in fixed]
        for i, lv in enumerate(g.levels):
            for name in names:
                est = state.beta[fixed.index(name)] if name in fixed else 0.0
                var = vbeta[fixed.index(name)] if name in fixed else 0.0
                if name in g.terms:
                    j = g.terms.index(name)
                    est, var = est + g.b[i, j], var + g.var[i, j]
                rows.append(_row(g.name, lv, name, est, var, q))
    return rows


@dataclass
class Effects:
    """What `lmm ranef` or `lmm coef` reports: the rows at one interval level."""

    key: str                  # "random_effects" or "coefficients": the JSON key of the rows
    title: str
    level: float
    rows: list[EffectRow]

    def records(self) -> list[dict]:
        """The rows as flat dicts (mixedup's columns), for CSV and JSON."""
        return [asdict(r) for r in self.rows]

    def to_dict(self) -> dict:
        """The JSON document: {"level": ..., key: [rows]}."""
        return {"level": self.level, self.key: self.records()}


KINDS = {
    "ranef": ("random_effects", "Random effects (conditional modes)", ranef_rows),
    "coef": ("coefficients", "Group-specific coefficients (fixed + random)", coef_rows),
}


def effects(state: ModelState, kind: str, level: float = 0.95) -> Effects:
    """ranef (kind 'ranef') or coef (kind 'coef') of a model as an Effects report."""
    if not state.terms:
        what = "random effects" if kind == "ranef" else "group-specific coefficients"
        raise ModelSpecError(f"the model has no random terms, so there are no {what}",
                             hint='add a random term such as (1 | group) to the formula, or use lmm fit')
    key, title, rows = KINDS[kind]
    return Effects(key, title, level, rows(state, level))
