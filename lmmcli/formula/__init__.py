"""Parse lme4-style model formulas (``y ~ x + (x | g)``) into plain data, with R's semantics.

The pipeline, one module each: tokens.py (text -> tokens, each with its character span) ->
parser.py (tokens -> an expression tree of expressions.py's nodes, by precedence climbing; and
parse_formula, the entry point) -> expand.py (the tree -> R-style terms: ``a*b`` -> a, b, a:b;
``(x | g)`` -> a RandomTerm) -> terms.py (FixedTerm, RandomTerm, Formula). deparse (expressions.py)
writes an expression back as R's deparse() does.
"""

from lmmcli.formula.expand import MAX_TERMS
from lmmcli.formula.expressions import (CONSTANTS, FUNCTIONS, KNOWN_FUNCTIONS, BinOp, Call, Const, Expr, Keyword,
                                        Name, Number, UnaryOp, deparse, names_in)
from lmmcli.formula.parser import parse_formula
from lmmcli.formula.terms import FixedTerm, Formula, RandomTerm
from lmmcli.formula.tokens import Token, tokenize

__all__ = ["BinOp", "CONSTANTS", "Call", "Const", "Expr", "FUNCTIONS", "FixedTerm", "Formula", "KNOWN_FUNCTIONS",
           "Keyword", "MAX_TERMS", "Name", "Number", "RandomTerm", "Token", "UnaryOp", "deparse", "names_in",
           "parse_formula", "tokenize"]
