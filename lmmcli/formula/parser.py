"""Tokens -> expression tree, by recursive descent with precedence climbing; parse_formula, the entry point.

parse_formula: tokenize (tokens.py), parse the two sides (Parser), expand the right side into R's
terms (expand.py), and assemble a Formula (terms.py).
"""

from __future__ import annotations

from lmmcli.errors import FormulaSyntaxError
from lmmcli.formula.expand import Expander, ordered, variable_order
from lmmcli.formula.expressions import (ARITH_OPS, FORMULA_OPS, FUNCTIONS, KNOWN_FUNCTIONS, NOT_PREC, BinOp,
                                        Call, Const, Keyword, Name, Number, Span, UnaryOp)
from lmmcli.formula.terms import FixedTerm, Formula
from lmmcli.formula.tokens import Token, check_parens, tokenize

_FUNCTION_HINT = "known functions: " + ", ".join(f + "()" for f in KNOWN_FUNCTIONS if f != "c")
_MAX_CHAIN = 200  # nesting limit of the recursion (x^x^..., ----x, f(f(...))), so deep input cannot exhaust the stack


class Parser:
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
        return self.climb(ARITH_OPS, 1, self.arith_primary)

    def unary(self, table: dict, min_prec: int, primary) -> UnaryOp:
        op = self.advance()
        operand = self.nested(self.climb, table, min_prec, primary)
        return UnaryOp(op.text, operand, (op.start, operand.span[1]))

    def arith_primary(self):
        if self.at("-", "+"):  # binds looser than ^ only: -x^2 is -(x^2)
            return self.unary(ARITH_OPS, ARITH_OPS["^"][0], self.arith_primary)
        if self.at("!"):       # binds looser than comparisons: !x > 3 is !(x > 3)
            return self.unary(ARITH_OPS, NOT_PREC + 1, self.arith_primary)
        if self.at("("):
            self.advance()
            inner = self.arith()
            self.expect(")")
            return inner
        return self.atom() or self.missing_term()

    def model(self):
        """Formula-level expression: + - * / : ^ over terms and random-effect bars."""
        return self.climb(FORMULA_OPS, 1, self.model_primary)

    def model_primary(self):
        if self.at("-", "+"):  # like binary '-': "-a*b" removes a, b and a:b
            return self.unary(FORMULA_OPS, FORMULA_OPS["*"][0], self.model_primary)
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


def _response(parser: Parser):
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
    check_parens(tokens, text)
    parser = Parser(text, tokens)
    response = _response(parser)
    parser.expect("~")
    rhs = parser.model()
    if parser.tok.kind != "end":
        parser.unexpected()
    result = Expander(text).expand(rhs)
    fixed = tuple(FixedTerm(t) for t in ordered(result.terms, variable_order(rhs)))
    return Formula(text, response, fixed, result.intercept is not False, tuple(result.random),
                   tuple(result.offsets))
