"""Expression tree -> R's terms (terms.formula semantics): a*b -> a, b, a:b; (x | g) -> RandomTerm."""

from __future__ import annotations

from dataclasses import dataclass, field

from lmmcli.errors import FormulaSyntaxError
from lmmcli.formula.expressions import BinOp, Call, Const, Name, Number, UnaryOp, deparse
from lmmcli.formula.terms import FixedTerm, RandomTerm

_MAX_GROUP_PARTS = 50  # columns in one grouping factor's a:b:... or a/b/... (each a/b part is a random term)
MAX_TERMS = 10_000  # an interaction expansion ((a+b+...)^n, a*b*...) may cross at most this many term pairs


@dataclass
class _Terms:
    """What a formula sub-expression expands to."""
    terms: list
    intercept: bool | None = None     # None: not mentioned
    random: list = field(default_factory=list)
    offsets: list = field(default_factory=list)


def _key(factors) -> frozenset:
    return frozenset(deparse(f) for f in factors)


def _unique(terms) -> list:
    """Drop repeated factors (a:a == a) and duplicate terms (a:b == b:a); first spelling wins."""
    seen, out = set(), []
    for factors in terms:
        factors = tuple({deparse(f): f for f in reversed(factors)}.values())[::-1]
        if _key(factors) not in seen:
            seen.add(_key(factors))
            out.append(factors)
    return out


class Expander:
    """Turns the parse tree into R-style terms (terms.formula semantics)."""

    def __init__(self, text: str):
        self.text = text

    def fail(self, message: str, node, hint: str | None = None):
        raise FormulaSyntaxError(message, self.text, node.span, hint)

    def expand(self, node) -> _Terms:
        if isinstance(node, Call) and node.func == "offset":
            return _Terms([], offsets=[node.args[0]])
        if isinstance(node, (Name, Call)):
            return _Terms([(node,)])
        if isinstance(node, Const):
            self.fail("a text or logical value has no meaning in a formula", node,
                      "compare inside I(), e.g. I(x > 3)")
        if isinstance(node, Number):
            return self.number(node)
        if isinstance(node, BinOp) and node.op in ("|", "||"):
            return _Terms([], None, self.bar(node))
        if isinstance(node, UnaryOp):
            operand = self.expand(node.operand)
            return self.subtract(_Terms([]), operand) if node.op == "-" else operand
        if node.op in ("+", "-"):
            return self.add(node)
        return self.product(node)

    def number(self, node: Number) -> _Terms:
        if node.value not in (0, 1):
            self.fail(f"a bare number ({node.text}) has no meaning in a formula", node,
                      "use 0 or 1 for the intercept, or I(...) for arithmetic")
        return _Terms([], node.value == 1)

    def add(self, node: BinOp) -> _Terms:
        """a + b - c ...: the left spine walked in a loop (1,000 terms are a 1,000-deep tree), keeping
        the keys of the terms so far (linear, not quadratic, in the number of terms)."""
        spine = []
        while isinstance(node, BinOp) and node.op in ("+", "-"):
            spine.append(node)
            node = node.left
        result = self.expand(node)
        terms, keys = list(result.terms), {_key(t) for t in result.terms}
        intercept, random, offsets = result.intercept, list(result.random), list(result.offsets)
        for n in reversed(spine):
            if n.op == "-" or isinstance(n.right, UnaryOp) and n.right.op == "-":
                right = n.right.operand if n.op == "+" else n.right
                left = self.subtract(_Terms(terms, intercept, random, offsets), self.expand(right))
                terms, keys, intercept = left.terms, {_key(t) for t in left.terms}, left.intercept
                offsets = list(left.offsets)
                continue
            right = self.expand(n.right)
            fresh = [t for t in _unique(right.terms) if _key(t) not in keys]
            terms += fresh
            keys.update(_key(t) for t in fresh)
            intercept = intercept if right.intercept is None else right.intercept
            random += right.random
            offsets += right.offsets
        return _Terms(terms, intercept, random, offsets)

    def subtract(self, left: _Terms, right: _Terms) -> _Terms:
        if right.random:
            self.fail("random-effect terms cannot be removed with '-'", right.random[0])
        drop = {_key(t) for t in right.terms}
        # "- 1" removes the intercept; "- 0" restores it
        intercept = left.intercept if right.intercept is None else not right.intercept
        return _Terms([t for t in left.terms if _key(t) not in drop], intercept, left.random, left.offsets)

    def operand(self, node) -> _Terms:
        """Expand one side of : * / ^, which must be ordinary terms."""
        result = self.expand(node)
        if isinstance(node, UnaryOp):
            self.fail(f"'{node.op}' cannot be used inside an interaction", node)
        if result.random:
            self.fail("a random-effect term cannot be part of an interaction", result.random[0],
                      "add it with '+' instead")
        if result.intercept is not None:
            self.fail("0 or 1 cannot be part of an interaction", node)
        if result.offsets:
            self.fail("offset() cannot be part of an interaction", node, "add it with '+' instead")
        return result

    def product(self, node: BinOp) -> _Terms:
        """a:b, a*b, a/b, (...)^n; a chain a*b*c... walked in a loop along its left spine."""
        spine = []
        while isinstance(node, BinOp) and node.op in (":", "%in%", "*", "/", "^"):
            spine.append(node)
            node = node.left
        terms = self.operand(node).terms
        for n in reversed(spine):
            terms = self.product_one(terms, n)
        return _Terms(terms)

    def product_one(self, left: list, node: BinOp) -> list:
        if node.op == "^":
            return self.power(left, node.right)
        right = self.operand(node.right).terms
        self.check_size(len(left) * len(right), node)
        crossed = [a + b for a in left for b in right]
        if node.op in (":", "%in%"):    # a %in% b is a:b in a formula (terms.formula)
            return _unique(crossed)
        if node.op == "*":
            return _unique(left + right + crossed)
        outer = tuple(f for t in left for f in t)  # a/b: b nested in all of a's factors
        return _unique(left + [outer + b for b in right])

    def check_size(self, pairs: int, node) -> None:
        """Refuse an expansion before building it when it would cross more than MAX_TERMS term pairs."""
        if pairs > MAX_TERMS:
            self.fail(f"this interaction expands to more than {MAX_TERMS:,} terms", node,
                      "use fewer factors in the interaction, or a lower power")

    def power(self, terms: list, exponent) -> list:
        """(a+b+c)^n: all interactions up to order n."""
        ok = isinstance(exponent, Number) and exponent.value.is_integer() and exponent.value >= 1
        if not ok:
            self.fail("the power in (...)^n must be a whole number of at least 1", exponent)
        result = terms
        for _ in range(min(int(exponent.value), 50) - 1):  # beyond the term count nothing changes
            self.check_size(len(result) * len(terms), exponent)
            result = _unique(result + [a + b for a in result for b in terms])
        return result

    def bar(self, node: BinOp) -> list:
        lhs = self.expand(node.left)
        if lhs.random:
            self.fail("random-effect terms cannot be nested", lhs.random[0])
        if lhs.offsets:
            self.fail("offset() belongs in the fixed part, not in a random-effect term", node)
        intercept = lhs.intercept is not False
        if not lhs.terms and not intercept:
            self.fail("random-effect term has no terms left of '|'", node, "use (1 | g) or (x | g)")
        order = variable_order(node.left)
        terms = tuple(FixedTerm(t) for t in ordered(lhs.terms, order))
        out = []
        for cols, label in self.groups(node.right):
            if node.op == "|":
                out.append(RandomTerm(terms, intercept, cols, True, node.span, label))
                continue
            # lme4 1.1-31's expandDoubleVerts: (a + b || g) is (1|g) + (0 + a|g) + (0 + b|g)
            out += [RandomTerm((), True, cols, True, node.span, label)] if intercept else []
            out += [RandomTerm((t,), False, cols, True, node.span, label) for t in terms]
        return out

    def groups(self, node) -> list:
        """Grouping factors as (columns, lme4's label): g -> [((g,), "g")]; a:b -> [((a, b), "a:b")];
        a/b -> [((a,), "a"), ((b, a), "b:a")]; a/b/c adds ((c, b, a), "c:(b:a)") as lme4 deparses it."""
        if isinstance(node, Name):
            return [((node.name,), node.name)]
        if isinstance(node, BinOp) and node.op in ("|", "||"):
            self.fail("random-effect terms cannot be nested", node)
        if not isinstance(node, BinOp) or node.op not in (":", "/"):
            self.fail("a grouping factor must be a column name, or a:b or a/b of names", node,
                      "e.g. (1 | Subject), (1 | batch/cask)")
        if _chain_length(node, (":", "/")) > _MAX_GROUP_PARTS:
            self.fail(f"a grouping factor of more than {_MAX_GROUP_PARTS} parts (a:b:... or a/b/...)", node)
        left, right = self.groups(node.left), self.groups(node.right)
        if node.op == ":":
            return [(a + b, f"{la}:{_nested(lb)}") for a, la in left for b, lb in right]
        last, last_label = left[-1]
        return left + [(b + last, f"{lb}:{_nested(last_label)}") for b, lb in right]


def _chain_length(node, ops) -> int:
    """How many operators of ops a left-deep chain (a:b:c...) has along its left spine."""
    n = 0
    while isinstance(node, BinOp) and node.op in ops:
        n, node = n + 1, node.left
    return n


def _nested(label: str) -> str:
    """The right operand of ':' as R deparses it: parenthesised when it is itself an interaction."""
    return f"({label})" if ":" in label else label


def variable_order(node) -> dict:
    """Each variable's position in order of first appearance, skipping random-effect terms and offsets
    (R's terms.formula orders the variables of an interaction so: a:b and b:a are both labelled by it)."""
    order: dict = {}
    stack = [node]      # depth-first, left before right, with a stack: a 1,000-term sum is 1,000 deep
    while stack:
        e = stack.pop()
        if isinstance(e, BinOp) and e.op in ("|", "||") or isinstance(e, Call) and e.func == "offset":
            continue
        if isinstance(e, (Name, Call)):
            order.setdefault(deparse(e), len(order))
        elif isinstance(e, BinOp):
            stack += [e.right, e.left]
        elif isinstance(e, UnaryOp):
            stack.append(e.operand)
    return order


def ordered(terms: list, order: dict) -> list:
    """R's terms() order: by interaction order, stable by first appearance; the variables of each term
    in the formula's variable order."""
    terms = [tuple(sorted(t, key=lambda f: order.get(deparse(f), len(order)))) for t in terms]
    return sorted(terms, key=len)
