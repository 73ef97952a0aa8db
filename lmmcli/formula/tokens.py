"""Formula text -> tokens; each token keeps its character span, so errors point at the character."""

from __future__ import annotations

import re
from typing import NamedTuple

from lmmcli.errors import FormulaSyntaxError

_MAX_DEPTH = 100  # parenthesis nesting limit, so deep input cannot exhaust Python's stack


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


def check_parens(tokens: list[Token], text: str) -> None:
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
