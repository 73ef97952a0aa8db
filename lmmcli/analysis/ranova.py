"""Likelihood-ratio tests of the random terms, as lmerTest's ranova(model) (reduce.terms = TRUE).

The random terms are taken as lme4's findbars() lists them: (x || g) is (1 | g) + (0 + x | g), and
(1 | a/b) is (1 | b:a) then (1 | a). Each term is tested on its own against the full model:
    a term with no covariates, (1 | g), is removed;                      row "(1 | g)"
    a term with covariates is reduced, once per covariate term that no other term of it contains
    (R's drop.scope): that term is dropped, and a term left with none becomes (1 | g).
                                                                          row "x in (1 + x | g)"
Every reduced model is fitted by the full model's criterion (REML or ML) to the full model's rows (a
model with no random term left is the linear model, its REML or ML likelihood as R's logLik(lm)).
    LRT = 2 (logLik_full - logLik_reduced) (not clamped, as lmerTest), Df = npar_full - npar_reduced,
    p = P(chi^2_Df > LRT).  Row `<none>` is the full model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from lmmcli.compare import refs_for
from lmmcli.design.design import build_design
from lmmcli.distributions import chi2_sf
from lmmcli.errors import ModelSpecError
from lmmcli.fit import fit_design
from lmmcli.formula import FixedTerm, RandomTerm, deparse
from lmmcli.io.frame import as_frame
from lmmcli.results import SCHEMA_VERSION, clean


@dataclass
class RanovaRow:
    """One model of the table: the full one (<none>) or one with a random term removed or reduced."""

    term: str
    npar: int
    loglik: float
    aic: float
    lrt: float | None = None
    df: int | None = None
    p_value: float | None = None


@dataclass
class RanovaResult:
    """lmerTest's ranova() table."""

    ranova: list[RanovaRow]
    formula: str
    method: str
    nobs: int
    formulas: dict[str, str] = field(default_factory=dict)     # row name -> the reduced model's formula
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        """The JSON document."""
        return clean(self)


@dataclass(frozen=True)
class Bar:
    """One random term as findbars() lists it, with the text lmerTest names it by (lhs | group)."""

    term: RandomTerm
    lhs: str

    @property
    def form(self) -> str:
        return f"{self.lhs} | {self.term.group_label}"


# -- the terms and their reductions ---------------------------------------------------------------
def lhs_text(formula_text: str, term: RandomTerm) -> str:
    """The left side of a written (lhs | group) term as R deparses it: '1 + x', 'Days', '0 + Days'."""
    from lmmcli.formula.parser import Parser   # the parser, for R's spacing of the written lhs
    from lmmcli.formula.tokens import tokenize

    inner = formula_text[term.span[0] + 1:term.span[1] - 1]
    depth, cut = 0, None
    for i, ch in enumerate(inner):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "|" and depth == 0:
            cut = i
            break
    lhs = inner[:cut].strip() if cut is not None else inner
    try:
        return deparse(Parser(lhs, tokenize(lhs)).model())
    except Exception:      # the term parsed once already; spacing only is at stake here
        return " ".join(lhs.split())


def bars(formula) -> list[Bar]:
    """findbars(): the random terms in lme4's order and naming. One written term can stand for several:
    (x || g) for (1 | g) + (0 + x | g) (same group: kept in order), (1 | a/b) for (1 | b:a) + (1 | a)
    (different groups: innermost first, as lme4 lists them)."""
    out, k, terms = [], 0, list(formula.random)
    while k < len(terms):
        same = [t for t in terms[k:] if t.span == terms[k].span]
        k += len(same)
        if len(same) > 1 and len({t.group for t in same}) == 1:      # (x || g), split by the parser
            out += [Bar(t, _split_lhs(t)) for t in same]
            continue
        out += [Bar(t, lhs_text(formula.text, t)) for t in (reversed(same) if len(same) > 1 else same)]
    return out


def _split_lhs(t: RandomTerm) -> str:
    """The lhs lme4 gives the parts of (x || g): '1' for the intercept, '0 + x' for each covariate term."""
    if not t.terms:
        return "1"
    return " + ".join((["0"] if not t.intercept else []) + [ft.label for ft in t.terms])


def drop_scope(terms) -> list[FixedTerm]:
    """R's drop.scope: the terms no other term contains."""
    keys = [frozenset(deparse(f) for f in t.factors) for t in terms]
    return [t for t, a in zip(terms, keys) if not any(a < b for b in keys)]


def reductions(bar: Bar) -> list[tuple[str, RandomTerm | None]]:
    """(row name, the replacing term or None to remove) for one bar, as lmerTest's get_newforms."""
    t = bar.term
    scope = drop_scope(t.terms)
    if not t.terms or not scope:
        return [(f"({bar.form})", None)]
    out = []
    for s in scope:
        rest = tuple(u for u in t.terms if u != s)
        new = dataclasses.replace(t, terms=rest, intercept=t.intercept or not rest)
        out.append((f"{s.label} in ({bar.form})", new))
    return out


def reduced_formula(formula, all_bars: list[Bar], k: int, replacement):
    """The full formula with bar k removed or replaced (identical random terms kept once, as R's terms())."""
    random = []
    for j, b in enumerate(all_bars):
        term = b.term if j != k else replacement
        if term is not None and term not in random:
            random.append(term)
    new = dataclasses.replace(formula, random=tuple(random))
    return dataclasses.replace(new, text=str(new))


# -- the tests ----------------------------------------------------------------------------------
def _row(term: str, fm) -> RanovaRow:
    ll = fm.loglik()
    return RanovaRow(term, fm.npar(), ll, -2 * ll + 2 * fm.npar())


def _contrasts_used(formula, contrasts: dict) -> dict:
    """The contrasts for factors this (reduced) formula still has in its fixed part."""
    labels = {deparse(e) for t in formula.fixed for e in t.factors}
    return {k: v for k, v in contrasts.items() if k in labels}


def ranova(fm, data, factors=(), refs=None) -> RanovaResult:
    """ranova(model): refit the model without (or with a reduced form of) each random term."""
    formula = fm.formula
    if not formula.random:
        raise ModelSpecError("ranova tests random terms; this formula has none",
                             hint="add a random term such as (1 | group)")
    rows_data = as_frame(data).take(fm.design.rows)
    all_bars = bars(formula)
    table, formulas, warnings = [_row("<none>", fm)], {}, list(fm.result().warnings)
    for k, bar in enumerate(all_bars):
        for name, replacement in reductions(bar):
            reduced = reduced_formula(formula, all_bars, k, replacement)
            spec = fm.design.spec     # the full model's weights and contrasts, as update() keeps them
            design = build_design(reduced, rows_data, factors, refs_for(reduced, dict(refs or {}), [formula]),
                                  weights=spec.weights, contrasts=_contrasts_used(reduced, spec.contrasts))
            sub = fit_design(reduced, design, fm.reml)
            formulas[name] = str(reduced)
            warnings += [f"{name}: {w}" for w in sub.result().warnings] if sub.blocks else []
            table.append(_row(name, sub))
    full = table[0]
    for r in table[1:]:
        r.lrt = 2.0 * (full.loglik - r.loglik)
        r.df = full.npar - r.npar
        r.p_value = float(chi2_sf(r.lrt, r.df)) if r.df > 0 else None     # a negative LRT gives 1, as R
    return RanovaResult(table, formula.text, "REML" if fm.reml else "ML", fm.design.n, formulas,
                        [], warnings)
