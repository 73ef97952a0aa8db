"""The expression tree of a formula (names, numbers, calls, operators) and R's deparse of it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

# name -> (fewest, most positional arguments, keyword arguments it takes); R's names and argument order
FUNCTIONS = {
    "I": (1, 1, ()), "exp": (1, 1, ()), "log": (1, 2, ("base",)), "log10": (1, 1, ()), "log2": (1, 1, ()),
    "log1p": (1, 1, ()), "sqrt": (1, 1, ()), "abs": (1, 1, ()), "sin": (1, 1, ()), "cos": (1, 1, ()),
    "tan": (1, 1, ()), "scale": (1, 1, ()), "factor": (1, 1, ()), "as.numeric": (1, 1, ()),
    "poly": (1, 2, ("degree", "raw")), "ns": (1, 2, ("df",)), "bs": (1, 3, ("df", "degree")),
    "offset": (1, 1, ()), "c": (1, 10_000, ()), "cbind": (2, 2, ()),
}
KNOWN_FUNCTIONS = tuple(FUNCTIONS)
CONSTANTS = {"pi"}      # names that are R's constants, not columns

Span = tuple[int, int]


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
ARITH_OPS = {"|": (1, False), "&": (2, False), **{op: (4, False) for op in _COMPARISONS},
              "+": (5, False), "-": (5, False), "*": (6, False), "/": (6, False), "%in%": (7, False),
              "^": (9, True)}
FORMULA_OPS = {"+": (5, False), "-": (5, False), "*": (6, False), "/": (6, False), "%in%": (7, False),
                ":": (8, False), "^": (9, True)}
_ALL_OPS = {**ARITH_OPS, **FORMULA_OPS}
_UNARY_PREC = 8         # unary minus: binds tighter than : and looser than ^
NOT_PREC = 3           # ! binds looser than comparisons: !x > 3 is !(x > 3)
_SPACED = {"+", "-", "*", "|", "&", "%in%", *_COMPARISONS}   # R's deparse spaces these, not / ^ :
_RESERVED = {"if", "else", "repeat", "while", "function", "for", "next", "break", "in", "TRUE",
             "FALSE", "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_"}
_SYNTACTIC = re.compile(r"(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9._]*", re.ASCII)


def deparse_name(name: str) -> str:
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
        return NOT_PREC if e.op == "!" else _UNARY_PREC
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
        return deparse_name(e.name)
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
