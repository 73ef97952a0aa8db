"""The parsed model: fixed terms, random terms and the formula that holds them."""

from __future__ import annotations

from dataclasses import dataclass, field

from lmmcli.formula.expressions import Expr, Span, deparse, deparse_name, names_in


@dataclass(frozen=True)
class FixedTerm:
    """One model term: a main effect (one factor) or an interaction (several)."""
    factors: tuple

    @property
    def label(self) -> str:
        return ":".join(deparse(f) for f in self.factors)


@dataclass(frozen=True)
class RandomTerm:
    """One (lhs | group) term; a/b groupings are already split into one term per level."""
    terms: tuple
    intercept: bool
    group: tuple
    correlated: bool = True
    span: Span = field(default=(0, 0), compare=False)
    label: str = field(default="", compare=False)   # lme4's name of the group, e.g. "c:(b:a)" for (1|a/b/c)

    @property
    def group_label(self) -> str:
        return self.label or ":".join(self.group)

    def __str__(self) -> str:
        lhs = _sum_text(self.terms, self.intercept) or "1"
        bar = "|" if self.correlated else "||"
        group = self.label if self.label and not any(deparse_name(g) != g for g in self.group) \
            else ":".join(deparse_name(g) for g in self.group)
        return f"({lhs} {bar} {group})"


def _sum_text(terms, intercept: bool) -> str:
    return " + ".join((["0"] if not intercept else []) + [t.label for t in terms])


@dataclass(frozen=True)
class Formula:
    """A parsed formula; equality ignores the original text and spans."""
    text: str = field(compare=False)
    response: Expr | None
    fixed: tuple
    intercept: bool
    random: tuple
    offsets: tuple = ()        # the expressions inside offset(...) terms, summed

    def columns(self) -> set[str]:
        """Every column the formula references: response, fixed terms, offsets, random lhs and groups."""
        cols = names_in(self.response) if self.response is not None else set()
        for term in self.fixed + tuple(t for r in self.random for t in r.terms):
            cols |= set().union(*(names_in(f) for f in term.factors))
        for e in self.offsets:
            cols |= names_in(e)
        return cols | {g for r in self.random for g in r.group}

    def __str__(self) -> str:
        offsets = [f"offset({deparse(e)})" for e in self.offsets]
        rhs = " + ".join(filter(None, [_sum_text(self.fixed, self.intercept)] + offsets
                                + [str(r) for r in self.random])) or "1"
        lhs = deparse(self.response) + " " if self.response is not None else ""
        return f"{lhs}~ {rhs}"
