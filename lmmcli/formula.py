"""Parse lme4-style model formulas (``y ~ x + (x | g)``) into plain data, with R's semantics.

The text is tokenized (each token keeps its character span), parsed by precedence climbing into
an expression tree, and the tree is then expanded into R-style terms (``a*b`` -> a, b, a:b).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple, Union

from lmmcli.errors import FormulaSyntaxError

# name -> (fewest, most positional arguments, keyword arguments it takes); R's names and argument order
FUNCTIONS = {
    "I": (1, 1, ()), "exp": (1, 1, ()), "log": (1, 2, ("base",)), "log10": (1, 1, ()), "log2": (1, 1, ()),
    "log1p": (1, 1, ()), "sqrt": (1, 1, ()), "abs": (1, 1, ()), "sin": (1, 1, ()), "cos": (1, 1, ()),
    "tan": (1, 1, ()), "scale": (1, 1, ()), "factor": (1, 1, ()), "as.numeric": (1, 1, ()),
    "poly": (1, 2, ("degree", "raw")), "ns": (1, 2, ("df",)), "bs": (1, 3, ("df", "degree")),
    "offset": (1, 1, ()), "c": (1, 10_000, ()), "cbind": (2, 2, ()),
}
KNOWN_FUNCTIONS = tuple(FUNCTIONS)
_FUNCTION_HINT = "known functions: " + ", ".join(f + "()" for f in KNOWN_FUNCTIONS if f != "c")
CONSTANTS = {"pi"}      # names that are R's constants, not columns
_MAX_DEPTH = 100  # parenthesis nesting limit, so deep input cannot exhaust Python's stack
_MAX_CHAIN = 200  # nesting limit of the parser's recursion (x^x^..., ----x, f(f(...))): the same reason
_MAX_GROUP_PARTS = 50  # columns in one grouping factor's a:b:... or a/b/... (each a/b part is a random term)
MAX_TERMS = 10_000  # an interaction expansion ((a+b+...)^n, a*b*...) may cross at most this many term pairs

Span = tuple[int, int]


# ---------------------------------------------------------------- expressions

@dataclass(frozen=True)
class Name:
    """A column reference; backquoted names keep their inner text."""
    name: str
    span: Span = field(default=(0, 0), compare=False)


@dataclass(frozen=True)
class Number:
    """A numeric literal."""
    value: float
    text: str = field(default="", compare=False)
    span: Span = field(default=(0, 0), compare=False)


@dataclass(frozen=True)
class Const:
    """A logical or text literal: TRUE, FALSE, "a"."""
    value: object
    span: Span = field(default=(0, 0), compare=False)


@dataclass(frozen=True)
class Keyword:
    """A named argument of a call, e.g. raw = TRUE in poly(x, 2, raw = TRUE)."""
    name: str
    value: "Expr"
    span: Span = field(default=(0, 0), compare=False)


@dataclass(frozen=True)
class Call:
    """A call of one of FUNCTIONS, e.g. log(x), I(x^2), poly(x, 2)."""
    func: str
    args: tuple
    span: Span = field(default=(0, 0), compare=False)


@dataclass(frozen=True)
class BinOp:
    """Binary operator (arithmetic inside calls; formula operators before expansion)."""
    op: str
    left: "Expr"
    right: "Expr"
    span: Span = field(default=(0, 0), compare=False)


@dataclass(frozen=True)
class UnaryOp:
    """Unary minus or plus."""
    op: str
    operand: "Expr"
    span: Span = field(default=(0, 0), compare=False)


Expr = Union[Name, Number, Const, Keyword, Call, BinOp, UnaryOp]

# Precedence and right-associativity, low to high, as R's: | & (!) comparisons + - * / %in% : (unary -) ^
_COMPARISONS = ("==", "!=", "<", ">", "<=", ">=")
_ARITH_OPS = {"|": (1, False), "&": (2, False), **{op: (4, False) for op in _COMPARISONS},
              "+": (5, False), "-": (5, False), "*": (6, False), "/": (6, False), "%in%": (7, False),
              "^": (9, True)}
_FORMULA_OPS = {"+": (5, False), "-": (5, False), "*": (6, False), "/": (6, False), "%in%": (7, False),
                ":": (8, False), "^": (9, True)}
_ALL_OPS = {**_ARITH_OPS, **_FORMULA_OPS}
_UNARY_PREC = 8         # unary minus: binds tighter than : and looser than ^
_NOT_PREC = 3           # ! binds looser than comparisons: !x > 3 is !(x > 3)
_SPACED = {"+", "-", "*", "|", "&", "%in%", *_COMPARISONS}   # R's deparse spaces these, not / ^ :
_RESERVED = {"if", "else", "repeat", "while", "function", "for", "next", "break", "in", "TRUE",
             "FALSE", "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_"}
_SYNTACTIC = re.compile(r"(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9._]*", re.ASCII)


def _deparse_name(name: str) -> str:
    """R's rendering of a symbol: backquoted unless it is a syntactic name."""
    plain = _SYNTACTIC.fullmatch(name) and name != "." and name not in _RESERVED
    return name if plain else f"`{name}`"


def _deparse_number(value: float) -> str:
    """Shortest text that reads back as the same value; whole numbers without '.0', like R."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _prec(e: Expr) -> int:
    if isinstance(e, BinOp):
        return _ALL_OPS[e.op][0]
    if isinstance(e, UnaryOp):
        return _NOT_PREC if e.op == "!" else _UNARY_PREC
    return 99


def _deparse_const(value) -> str:
    """TRUE/FALSE, or a double-quoted string with R's escapes."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wrap(e: Expr, needs_parens: bool) -> str:
    return f"({deparse(e)})" if needs_parens else deparse(e)


def deparse(e: Expr) -> str:
    """Render an expression as R's deparse() would, e.g. 'I(x * 2)', 'exp(x/2)', '`my col`'."""
    if isinstance(e, Name):
        return _deparse_name(e.name)
    if isinstance(e, Number):
        return _deparse_number(e.value)
    if isinstance(e, Const):
        return _deparse_const(e.value)
    if isinstance(e, Keyword):
        return f"{e.name} = {deparse(e.value)}"
    if isinstance(e, Call):
        return f"{e.func}({', '.join(deparse(a) for a in e.args)})"
    if isinstance(e, UnaryOp):
        return e.op + _wrap(e.operand, _prec(e.operand) < _prec(e))
    prec, right_assoc = _ALL_OPS[e.op]
    left = _wrap(e.left, _prec(e.left) < prec or (right_assoc and _prec(e.left) <= prec))
    right_ok = right_assoc and isinstance(e.right, UnaryOp)  # 2^-1 reads back unambiguously
    right = _wrap(e.right, not right_ok and (_prec(e.right) < prec
                                             or (not right_assoc and _prec(e.right) == prec)))
    sep = " " if e.op in _SPACED else ""
    return f"{left}{sep}{e.op}{sep}{right}"


def names_in(e: Expr) -> set[str]:
    """Column names referenced by an expression (function names excluded)."""
    if isinstance(e, Name):
        return set() if e.name in CONSTANTS else {e.name}
    if isinstance(e, Call):
        return set().union(*(names_in(a) for a in e.args))
    if isinstance(e, Keyword):
        return names_in(e.value)
    if isinstance(e, BinOp):
        return names_in(e.left) | names_in(e.right)
    if isinstance(e, UnaryOp):
        return names_in(e.operand)
    return set()


# ---------------------------------------------------------------- model structure

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
        group = self.label if self.label and not any(_deparse_name(g) != g for g in self.group) \
            else ":".join(_deparse_name(g) for g in self.group)
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


# ---------------------------------------------------------------- tokenizer

class Token(NamedTuple):
    kind: str        # "name", "number", "string", "op" or "end"
    text: str        # the operator, or the name without backquotes
    start: int
    end: int


_TOKEN_RE = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>(?:[A-Za-z_]|\.(?![0-9]))[A-Za-z0-9._]*)
  | (?P<quoted>`[^`]*`?)
  | (?P<string>"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?)
  | (?P<op>\|\||%[^%\s]*%|==|!=|<=|>=|[~+\-*/^:|(),<>&!=])
""", re.VERBOSE | re.ASCII)


def _token_from(m: re.Match, text: str) -> Token | None:
    """Build one token from a regex match (None for whitespace), validating literals."""
    kind, s, e = m.lastgroup, m.start(), m.end()
    if kind == "space":
        return None
    if kind == "quoted":
        if len(m.group()) < 2 or not m.group().endswith("`"):
            raise FormulaSyntaxError("unterminated backquote", text, (s, e),
                                     "close the name with another `")
        if m.group() == "``":
            raise FormulaSyntaxError("empty backquoted name", text, (s, e))
        return Token("name", m.group()[1:-1], s, e)
    if kind == "string":
        text_ = m.group()
        if len(text_) < 2 or text_[-1] != text_[0]:
            raise FormulaSyntaxError("unterminated string", text, (s, e), f"close it with another {text_[0]}")
        return Token("string", re.sub(r"\\(.)", r"\1", text_[1:-1]), s, e)
    if kind == "op" and m.group().startswith("%") and m.group() != "%in%":
        raise FormulaSyntaxError(f"unknown operator '{m.group()}'", text, (s, e), "the one %...% operator is %in%")
    if kind == "number" and float(m.group()) == float("inf"):
        raise FormulaSyntaxError("number is too large", text, (s, e))
    if kind == "name" and m.group() == ".":
        raise FormulaSyntaxError("'.' (all other columns) is not supported", text, (s, e),
                                 "list the columns explicitly")
    return Token(kind, m.group(), s, e)


def tokenize(text: str) -> list[Token]:
    """Split formula text into tokens, ending with an 'end' token."""
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise FormulaSyntaxError(f"unexpected character {text[pos]!r}", text, (pos, pos + 1),
                                     "formulas use names, numbers, ~ + - * / ^ : | and parentheses")
        tok = _token_from(m, text)
        tokens += [tok] if tok else []
        pos = m.end()
    return tokens + [Token("end", "", len(text), len(text))]


def _check_parens(tokens: list[Token], text: str) -> None:
    """Fail on the first unmatched parenthesis (or absurd nesting) before parsing."""
    stack = []
    for tok in tokens:
        if tok.kind == "op" and tok.text == "(":
            stack.append(tok)
            if len(stack) > _MAX_DEPTH:
                raise FormulaSyntaxError("parentheses are nested too deeply", text,
                                         (tok.start, tok.end))
        elif tok.kind == "op" and tok.text == ")":
            if not stack:
                raise FormulaSyntaxError("unmatched ')'", text, (tok.start, tok.end),
                                         "remove it or add a matching '('")
            stack.pop()
    if stack:
        raise FormulaSyntaxError("unmatched '('", text, (stack[-1].start, stack[-1].end),
                                 "add a matching ')'")


# ---------------------------------------------------------------- parser

class _Parser:
    """Recursive descent with precedence climbing over a token list."""

    def __init__(self, text: str, tokens: list[Token]):
        self.text, self.tokens, self.i = text, tokens, 0
        self.depth = 0

    def nested(self, parse, *args):
        """parse(*args) one level deeper; too deep is a clear error, not a RecursionError."""
        self.depth += 1
        try:
            if self.depth > _MAX_CHAIN:
                self.fail(f"the formula nests too deeply here (more than {_MAX_CHAIN} levels of "
                          "operators, signs or calls)", self.tok, "write a simpler formula")
            return parse(*args)
        finally:
            self.depth -= 1

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def at(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.text in ops

    def advance(self) -> Token:
        self.i += 1
        return self.tokens[self.i - 1]

    def fail(self, message: str, tok: Token, hint: str | None = None):
        raise FormulaSyntaxError(message, self.text, (tok.start, tok.end), hint)

    def expect(self, op: str) -> Token:
        if not self.at(op):
            self.unexpected()
        return self.advance()

    def unexpected(self):
        """Explain why the current token cannot continue what came before."""
        tok = self.tok
        if self.at("~"):
            self.fail("formula has more than one '~'", tok)
        if self.at("|", "||"):
            self.fail(f"'{tok.text}' is only allowed inside parentheses", tok,
                      "write random effects as (x | group)")
        if tok.kind in ("name", "number") or self.at("("):
            self.fail(f"missing operator before '{tok.text}'", tok,
                      "join terms with '+', e.g. y ~ a + b")
        if self.at(","):
            self.fail("',' is only allowed between function arguments", tok)
        self.fail(f"unexpected '{tok.text}'", tok)

    def climb(self, table: dict, min_prec: int, primary) -> object:
        """Precedence climbing: parse operators of `table` binding at least `min_prec`."""
        left = primary()
        while self.tok.kind == "op" and table.get(self.tok.text, (0,))[0] >= min_prec:
            op = self.advance().text
            prec, right_assoc = table[op]
            right = self.nested(self.climb, table, prec if right_assoc else prec + 1, primary)
            left = BinOp(op, left, right, (left.span[0], right.span[1]))
        return left

    def missing_term(self):
        """Report a missing operand, pointing at the operator that needs it at end of input."""
        if self.tok.kind == "end":
            prev = self.tokens[self.i - 1]
            self.fail(f"a term is missing after '{prev.text}'", prev)
        if self.at(")"):
            self.fail("a term is missing before ')'", self.tok)
        self.fail(f"expected a term, found '{self.tok.text}'", self.tok)

    def atom(self):
        """Name, number or function call; None if the current token starts none of these."""
        tok = self.tok
        if tok.kind == "number":
            self.advance()
            return Number(float(tok.text), tok.text, (tok.start, tok.end))
        if tok.kind == "string":
            self.advance()
            return Const(tok.text, (tok.start, tok.end))
        if tok.kind != "name":
            return None
        self.advance()
        quoted = self.text[tok.start] == "`"
        if tok.text in ("TRUE", "FALSE") and not quoted:
            return Const(tok.text == "TRUE", (tok.start, tok.end))
        is_call = self.at("(") and not quoted
        return self.call(tok) if is_call else Name(tok.text, (tok.start, tok.end))

    def call(self, name: Token) -> Call:
        if name.text not in FUNCTIONS:
            self.fail(f"unknown function '{name.text}'", name,
                      _FUNCTION_HINT + f"; if '{name.text}' is a column, add an operator after it")
        self.advance()
        first = self.i
        args = [self.nested(self.argument)]
        while self.at(","):
            self.advance()
            args.append(self.nested(self.argument))
        end = self.expect(")").end
        if sum(t.kind == "op" for t in self.tokens[first:self.i]) > _MAX_CHAIN:
            # the expression stays a tree that evaluation and deparse walk recursively: bound its size
            raise FormulaSyntaxError(f"{name.text}(...) holds more than {_MAX_CHAIN} operators", self.text,
                                     (name.start, end), "write a shorter expression")
        self.check_arguments(name.text, args, (name.start, end))
        return Call(name.text, tuple(args), (name.start, end))

    def argument(self):
        """One argument of a call: an expression, or name = expression."""
        tok = self.tok
        if tok.kind == "name" and self.tokens[self.i + 1].kind == "op" and self.tokens[self.i + 1].text == "=":
            self.i += 2
            value = self.arith()
            return Keyword(tok.text, value, (tok.start, value.span[1]))
        return self.arith()

    def check_arguments(self, func: str, args: list, span: Span) -> None:
        """The count of positional arguments and the names of keyword ones, as FUNCTIONS lists them."""
        fewest, most, keywords = FUNCTIONS[func]
        positional = [a for a in args if not isinstance(a, Keyword)]
        for a in args:
            if isinstance(a, Keyword) and a.name not in keywords:
                what = f"takes {', '.join(k + ' =' for k in keywords)}" if keywords else "takes no named arguments"
                raise FormulaSyntaxError(f"{func}() has no argument '{a.name}' (it {what})", self.text, a.span)
        if not fewest <= len(positional) <= most:
            count = "exactly one argument" if most == 1 else f"{fewest} to {most} arguments"
            raise FormulaSyntaxError(f"{func}() takes {count}", self.text, span)

    def arith(self):
        """An R expression inside a call: arithmetic, comparisons, & | ! and %in%."""
        return self.climb(_ARITH_OPS, 1, self.arith_primary)

    def unary(self, table: dict, min_prec: int, primary) -> UnaryOp:
        op = self.advance()
        operand = self.nested(self.climb, table, min_prec, primary)
        return UnaryOp(op.text, operand, (op.start, operand.span[1]))

    def arith_primary(self):
        if self.at("-", "+"):  # binds looser than ^ only: -x^2 is -(x^2)
            return self.unary(_ARITH_OPS, _ARITH_OPS["^"][0], self.arith_primary)
        if self.at("!"):       # binds looser than comparisons: !x > 3 is !(x > 3)
            return self.unary(_ARITH_OPS, _NOT_PREC + 1, self.arith_primary)
        if self.at("("):
            self.advance()
            inner = self.arith()
            self.expect(")")
            return inner
        return self.atom() or self.missing_term()

    def model(self):
        """Formula-level expression: + - * / : ^ over terms and random-effect bars."""
        return self.climb(_FORMULA_OPS, 1, self.model_primary)

    def model_primary(self):
        if self.at("-", "+"):  # like binary '-': "-a*b" removes a, b and a:b
            return self.unary(_FORMULA_OPS, _FORMULA_OPS["*"][0], self.model_primary)
        if self.at("("):
            return self.paren()
        return self.atom() or self.missing_term()

    def paren(self):
        """'(' model ')' or a random-effect term '(' lhs '|' group ')'."""
        open_ = self.advance()
        if self.at("|", "||"):
            self.fail(f"nothing before '{self.tok.text}'", self.tok,
                      "use (1 | g) for a random intercept")
        inner = self.model()
        if not self.at("|", "||"):
            self.expect(")")
            return inner
        bar = self.advance()
        if self.at(")"):
            self.fail(f"no grouping factor after '{bar.text}'", bar,
                      "name the grouping column, e.g. (1 | Subject)")
        group = self.model()
        if self.at("|", "||"):
            self.fail("a random-effect term has only one '|'", self.tok,
                      "nested bars are not allowed")
        close = self.expect(")")
        # an (lhs | group) term is a BinOp "|" or "||" whose span includes the parentheses
        return BinOp(bar.text, inner, group, (open_.start, close.end))


# ---------------------------------------------------------------- term expansion

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


class _Expander:
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
        order = _variable_order(node.left)
        terms = tuple(FixedTerm(t) for t in _ordered(lhs.terms, order))
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


def _variable_order(node) -> dict:
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


def _ordered(terms: list, order: dict) -> list:
    """R's terms() order: by interaction order, stable by first appearance; the variables of each term
    in the formula's variable order."""
    terms = [tuple(sorted(t, key=lambda f: order.get(deparse(f), len(order)))) for t in terms]
    return sorted(terms, key=len)


# ---------------------------------------------------------------- entry point

def _response(parser: _Parser):
    """The left side of '~', or None when the formula starts with '~'."""
    if parser.at("~"):
        return None
    node = parser.model()
    # arithmetic of columns (incidence/size) is a response too; a top-level '+' reads as a list of terms
    arithmetic = isinstance(node, BinOp) and node.op != "+" and _is_arithmetic(node)
    if not isinstance(node, (Name, Call)) and not arithmetic:
        raise FormulaSyntaxError("the response must be one column or a function of one",
                                 parser.text, node.span, "e.g. y ~ x or log(y) ~ x")
    return node


def _is_arithmetic(node) -> bool:
    """Whether an expression uses only names, numbers, calls and arithmetic operators."""
    if isinstance(node, BinOp):
        return node.op in ("+", "-", "*", "/", "^") and _is_arithmetic(node.left) and _is_arithmetic(node.right)
    if isinstance(node, UnaryOp):
        return _is_arithmetic(node.operand)
    return isinstance(node, (Name, Number, Call))


def parse_formula(text: str) -> Formula:
    """Parse lme4 formula text, e.g. 'Reaction ~ Days + (Days | Subject)'."""
    if not text.strip():
        raise FormulaSyntaxError("the formula is empty", text, (0, len(text)),
                                 "write it as: response ~ terms, e.g. y ~ x + (1|g)")
    tokens = tokenize(text)
    if not any(t.kind == "op" and t.text == "~" for t in tokens):
        raise FormulaSyntaxError("formula has no '~'", text, (0, len(text)),
                                 "write it as: response ~ terms, e.g. y ~ x + (1|g)")
    _check_parens(tokens, text)
    parser = _Parser(text, tokens)
    response = _response(parser)
    parser.expect("~")
    rhs = parser.model()
    if parser.tok.kind != "end":
        parser.unexpected()
    result = _Expander(text).expand(rhs)
    fixed = tuple(FixedTerm(t) for t in _ordered(result.terms, _variable_order(rhs)))
    return Formula(text, response, fixed, result.intercept is not False, tuple(result.random),
                   tuple(result.offsets))
