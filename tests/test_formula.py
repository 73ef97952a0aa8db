"""Tests for lmmcli.formula: R/lme4 formula semantics, error spans, deparse and round-trips."""

import pytest
from hypothesis import given, settings, strategies as st

from lmmcli.errors import FormulaSyntaxError
from lmmcli.formula import (BinOp, Call, Formula, Name, Number, UnaryOp, deparse, names_in,
                            parse_formula)


def labels(f):
    return [t.label for t in f.fixed]


def random_summary(f):
    """(group_label, lhs labels, intercept, correlated) for each random term."""
    return [(r.group_label, [t.label for t in r.terms], r.intercept, r.correlated)
            for r in f.random]


PARSE_CASES = [
    dict(text="Reaction ~ Days + (Days | Subject)", fixed=["Days"], response="Reaction",
         random=[("Subject", ["Days"], True, True)]),
    dict(text="y ~ a + b", fixed=["a", "b"]),
    dict(text="y ~ a*b", fixed=["a", "b", "a:b"]),
    dict(text="y ~ a:b", fixed=["a:b"]),
    dict(text="y ~ a*b*c", fixed=["a", "b", "c", "a:b", "a:c", "b:c", "a:b:c"]),
    dict(text="y ~ (a+b+c)^2", fixed=["a", "b", "c", "a:b", "a:c", "b:c"]),
    dict(text="y ~ a/b", fixed=["a", "a:b"]),
    dict(text="y ~ (a+b)/c", fixed=["a", "b", "a:b:c"]),
    dict(text="y ~ a:b + a", fixed=["a", "a:b"]),
    dict(text="y ~ a:b + b:a + a:a", fixed=["a", "a:b"]),
    dict(text="y ~ a*b - a", fixed=["b", "a:b"]),
    dict(text="y ~ a*b - a:b", fixed=["a", "b"]),
    dict(text="y ~ 0 + x", fixed=["x"], intercept=False),
    dict(text="y ~ x + 0", fixed=["x"], intercept=False),
    dict(text="y ~ x - 1", fixed=["x"], intercept=False),
    dict(text="y ~ -1 + x", fixed=["x"], intercept=False),
    dict(text="y ~ 1 + x", fixed=["x"]),
    dict(text="y ~ 0 + x + 1", fixed=["x"]),
    dict(text="y ~ 1", fixed=[]),
    dict(text="y ~ x + x", fixed=["x"]),
    dict(text="log(Reaction) ~ log(Days + 1)", fixed=["log(Days + 1)"], response="log(Reaction)"),
    dict(text="y ~ I(Days^2) + scale(x) + sqrt(z) + exp(x/2)",
         fixed=["I(Days^2)", "scale(x)", "sqrt(z)", "exp(x/2)"]),
    dict(text="y ~ occasion*sex", fixed=["occasion", "sex", "occasion:sex"]),
    dict(text="y ~ (1|g)", fixed=[], random=[("g", [], True, True)]),
    dict(text="y ~ x + (1 + x|g)", fixed=["x"], random=[("g", ["x"], True, True)]),
    dict(text="y ~ x + (0 + x|g)", fixed=["x"], random=[("g", ["x"], False, True)]),
    dict(text="y ~ x + (x - 1|g)", fixed=["x"], random=[("g", ["x"], False, True)]),
    # lme4 1.1-31's expandDoubleVerts: one term per part, each its own correlated block
    dict(text="y ~ x + (x||g)", fixed=["x"], random=[("g", [], True, True), ("g", ["x"], False, True)]),
    dict(text="y ~ (f + x||g)", fixed=[],
         random=[("g", [], True, True), ("g", ["f"], False, True), ("g", ["x"], False, True)]),
    dict(text="y ~ (0 + x||g)", fixed=[], random=[("g", ["x"], False, True)]),
    # interactions take their variables in the order they first appear (terms.formula)
    dict(text="m ~ meanses * cses + sector * cses",
         fixed=["meanses", "cses", "sector", "meanses:cses", "cses:sector"], response="m"),
    dict(text="y ~ b %in% a", fixed=["b:a"]),
    dict(text="y ~ b:a + a", fixed=["a", "b:a"]),
    dict(text="y ~ I(x > 3) + I(g %in% c('a', \"b\")) + poly(x, 2, raw = TRUE) + log(x, 10)",
         fixed=['I(x > 3)', 'I(g %in% c("a", "b"))', 'poly(x, 2, raw = TRUE)', 'log(x, 10)']),
    dict(text="y ~ I(!a & b | c != 2) + abs(size-15) + I(pi * x)",
         fixed=["I(!a & b | c != 2)", "abs(size - 15)", "I(pi * x)"]),
    dict(text="y ~ (1|a:b)", fixed=[], random=[("a:b", [], True, True)]),
    dict(text="strength ~ (1|batch/cask)", fixed=[], response="strength",
         random=[("batch", [], True, True), ("cask:batch", [], True, True)]),
    dict(text="y ~ (1|a/b/c)", fixed=[],
         random=[("a", [], True, True), ("b:a", [], True, True), ("c:(b:a)", [], True, True)]),
    dict(text="y ~ (1|a/(b:c))", fixed=[], random=[("a", [], True, True), ("b:c:a", [], True, True)]),
    dict(text="y ~ (1|g) + x + (x*z|h)", fixed=["x"],
         random=[("g", [], True, True), ("h", ["x", "z", "x:z"], True, True)]),
    dict(text="`reaction time` ~ `day n` + (1|Subject)", fixed=["`day n`"],
         response="`reaction time`", random=[("Subject", [], True, True)]),
    dict(text="  y~x+(  1 |\tg )  ", fixed=["x"], random=[("g", [], True, True)]),
    dict(text="y ~ x.1 + .z + a_b", fixed=["x.1", ".z", "a_b"]),
    dict(text="~ x", fixed=["x"], response=None),
]


@pytest.mark.parametrize("case", PARSE_CASES, ids=[c["text"] for c in PARSE_CASES])
def test_parse_structure(case):
    f = parse_formula(case["text"])
    assert labels(f) == case["fixed"]
    assert f.intercept == case.get("intercept", True)
    assert random_summary(f) == case.get("random", [])
    assert (deparse(f.response) if f.response else None) == case.get("response", "y")


ERROR_CASES = [
    dict(text="", span=(0, 0), msg="empty"),
    dict(text="   ", span=(0, 3), msg="empty"),
    dict(text="y x", span=(0, 3), msg="no '~'"),
    dict(text="y ~ x ~ z", span=(6, 7), msg="more than one '~'"),
    dict(text="y ~ (x + z", span=(4, 5), msg="unmatched '('"),
    dict(text="y ~ x + z)", span=(9, 10), msg="unmatched ')'"),
    dict(text="y ~ ((x) + z", span=(4, 5), msg="unmatched '('"),
    dict(text="y ~ x | g", span=(6, 7), msg="only allowed inside parentheses"),
    dict(text="y ~ (1|)", span=(6, 7), msg="no grouping factor"),
    dict(text="y ~ (|g)", span=(5, 6), msg="nothing before '|'"),
    dict(text="y ~ x +", span=(6, 7), msg="missing after '+'"),
    dict(text="y ~", span=(2, 3), msg="missing after '~'"),
    dict(text="y ~ x z", span=(6, 7), msg="missing operator before 'z'"),
    dict(text="y ~ x $ z", span=(6, 7), msg="unexpected character '$'"),
    dict(text="y ~ `my col + x", span=(4, 15), msg="unterminated backquote"),
    dict(text="y ~ foo(x)", span=(4, 7), msg="unknown function 'foo'"),
    dict(text="y ~ I(bar(x))", span=(6, 9), msg="unknown function 'bar'"),
    dict(text="y ~ (1|log(g))", span=(7, 13), msg="grouping factor"),
    dict(text="y ~ (1|a*b)", span=(7, 10), msg="grouping factor"),
    dict(text="y ~ (1|(1|g))", span=(7, 12), msg="cannot be nested"),
    dict(text="y ~ ((1|g)|h)", span=(5, 10), msg="cannot be nested"),
    dict(text="y ~ (1|g|h)", span=(8, 9), msg="only one '|'"),
    dict(text="y ~ x + 2", span=(8, 9), msg="bare number"),
    dict(text="y ~ (0|g)", span=(4, 9), msg="no terms"),
    dict(text="y ~ x:(1|g)", span=(6, 11), msg="interaction"),
    dict(text="y ~ x - (1|g)", span=(8, 13), msg="cannot be removed"),
    dict(text="y ~ (a+b)^x", span=(10, 11), msg="whole number"),
    dict(text="y ~ sqrt(x, 2)", span=(4, 14), msg="exactly one argument"),
    dict(text="y ~ poly(x, 2, 3)", span=(4, 17), msg="1 to 2 arguments"),
    dict(text="y ~ poly(x, 2, rwa = TRUE)", span=(15, 25), msg="no argument 'rwa'"),
    dict(text="y ~ x + 'a'", span=(8, 11), msg="text or logical"),
    dict(text="y ~ I(g == 'a)", span=(11, 14), msg="unterminated string"),
    dict(text="y ~ a %o% b", span=(6, 9), msg="unknown operator"),
    dict(text="y ~ x:offset(z)", span=(6, 15), msg="offset() cannot"),
    dict(text="y ~ (offset(z)|g)", span=(4, 17), msg="fixed part"),
    dict(text="y ~ ()", span=(5, 6), msg="missing before ')'"),
    dict(text="a + b ~ x", span=(0, 5), msg="response"),
    dict(text="y ~ .", span=(4, 5), msg="'.'"),
    dict(text="y ~ x, z", span=(5, 6), msg="','"),
    dict(text="y ~ 1:x", span=(4, 5), msg="interaction"),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c["text"] for c in ERROR_CASES])
def test_errors(case):
    with pytest.raises(FormulaSyntaxError) as info:
        parse_formula(case["text"])
    err = info.value
    assert case["msg"] in err.message
    assert err.span == case["span"]
    assert err.text == case["text"]


def test_no_tilde_hint_and_unknown_function_hint():
    with pytest.raises(FormulaSyntaxError) as info:
        parse_formula("y x")
    assert info.value.hint == "write it as: response ~ terms, e.g. y ~ x + (1|g)"
    with pytest.raises(FormulaSyntaxError) as info:
        parse_formula("y ~ foo(x)")
    assert "log()" in info.value.hint and "I()" in info.value.hint


DEPARSE_CASES = [
    ("y ~ Days", "Days"),
    ("y ~ log(Reaction)", "log(Reaction)"),
    ("y ~ I(Days^2)", "I(Days^2)"),
    ("y ~ I(x*2)", "I(x * 2)"),
    ("y ~ I(x+1)", "I(x + 1)"),
    ("y ~ I(-x)", "I(-x)"),
    ("y ~ I(-x^2)", "I(-x^2)"),
    ("y ~ I((-x)^2)", "I((-x)^2)"),
    ("y ~ I(2^-1)", "I(2^-1)"),
    ("y ~ I(2^3^4)", "I(2^3^4)"),
    ("y ~ I((2^3)^4)", "I((2^3)^4)"),
    ("y ~ I(x - (y - z))", "I(x - (y - z))"),
    ("y ~ I((x - y) - z)", "I(x - y - z)"),
    ("y ~ I((x + 1) * 2)", "I((x + 1) * 2)"),
    ("y ~ I(x / (2 * y))", "I(x/(2 * y))"),
    ("y ~ scale(x)", "scale(x)"),
    ("y ~ exp(x/2)", "exp(x/2)"),
    ("y ~ I(x * 2.0)", "I(x * 2)"),
    ("y ~ I(x * 0.5e1)", "I(x * 5)"),
    ("y ~ I(x * 0.25)", "I(x * 0.25)"),
    ("y ~ `my col`", "`my col`"),
    ("y ~ `if`", "`if`"),
    ("y ~ _x", "`_x`"),
    ("y ~ `Days`", "Days"),
]


@pytest.mark.parametrize("text,expected", DEPARSE_CASES, ids=[c[0] for c in DEPARSE_CASES])
def test_deparse(text, expected):
    (term,) = parse_formula(text).fixed
    assert deparse(term.factors[0]) == expected


def test_tree_shapes():
    f = parse_formula("y ~ I(-x^2 + 3)")
    (call,) = f.fixed[0].factors
    assert call == Call("I", (BinOp("+", UnaryOp("-", BinOp("^", Name("x"), Number(2.0))),
                                      Number(3.0)),))
    assert names_in(call) == {"x"}
    assert f.fixed[0].factors[0].span == (4, 15)


def test_columns_and_spans():
    f = parse_formula("log(y) ~ a*I(b^2) + (x|g/h)")
    assert f.columns() == {"y", "a", "b", "x", "g", "h"}
    assert [r.span for r in f.random] == [(20, 27), (20, 27)]
    assert isinstance(f, Formula) and f.text == "log(y) ~ a*I(b^2) + (x|g/h)"


STR_CASES = [
    ("Reaction ~ Days + (Days | Subject)", "Reaction ~ Days + (Days | Subject)"),
    ("y~0+x+(0+x||g)", "y ~ 0 + x + (0 + x | g)"),
    ("y ~ x + offset(log(n)) + (1|a/b/c)", "y ~ x + offset(log(n)) + (1 | a) + (1 | b:a) + (1 | c:(b:a))"),
    ("y ~ (1|batch/cask)", "y ~ (1 | batch) + (1 | cask:batch)"),
    ("y ~ a*b", "y ~ a + b + a:b"),
    ("y ~ -1", "y ~ 0"),
    ("y ~ x - x", "y ~ 1"),
    ("`a b` ~ `c d` + (1|`e f`)", "`a b` ~ `c d` + (1 | `e f`)"),
    ("~ x", "~ x"),
]


@pytest.mark.parametrize("text,expected", STR_CASES, ids=[c[0] for c in STR_CASES])
def test_str_round_trip(text, expected):
    f = parse_formula(text)
    assert str(f) == expected
    assert parse_formula(str(f)) == f


ALPHABET = "xyzgabI~+-*/^:|()`. 0123456789,$_elogscaqrtp"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=40))
def test_any_text_parses_or_raises_formula_error(text):
    try:
        f = parse_formula(text)
    except FormulaSyntaxError as err:
        assert 0 <= err.span[0] <= err.span[1] <= len(text)
        return
    assert parse_formula(str(f)) == f


FORMULA_PIECES = st.sampled_from(["x", "a", "b", "log(y)", "I(x^2)", "1", "0", "(1|g)",
                                  "(x||g)", "(0 + a|g/h)", "`c d`", "I(-x / 2)"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([" + ", " - ", "*", ":", "/"]), FORMULA_PIECES),
                min_size=1, max_size=6))
def test_structured_formulas_round_trip(pieces):
    text = "y ~ " + pieces[0][1] + "".join(op + p for op, p in pieces[1:])
    try:
        f = parse_formula(text)
    except FormulaSyntaxError:
        return
    # the same model; within an interaction R orders variables by first appearance, which a term
    # removed with '-' can set (y ~ a - a + x*a labels a:x, its text y ~ x + a + a:x labels x:a)
    assert _as_sets(parse_formula(str(f))) == _as_sets(f)


def _as_sets(f):
    return ([frozenset(deparse(e) for e in t.factors) for t in f.fixed], f.intercept,
            [(r.group, r.intercept, [frozenset(deparse(e) for e in t.factors) for t in r.terms]) for r in f.random])


def test_offsets_are_kept_apart_from_terms():
    f = parse_formula("y ~ x + offset(log(n)) + offset(z) + (1|g)")
    assert labels(f) == ["x"] and f.intercept
    assert [deparse(e) for e in f.offsets] == ["log(n)", "z"]
    assert f.columns() == {"y", "x", "n", "z", "g"}


def test_pi_is_a_constant_not_a_column():
    assert parse_formula("y ~ I(pi * x) + sin(x)").columns() == {"y", "x"}


# -- issue 13: long and deep formulas give a clear error or a result, never a RecursionError or a hang --
LONG = {
    "1,000 repeated terms": ("y ~ " + " + ".join(["x"] * 1000), ["x"]),
    "3,000 distinct terms": ("y ~ " + " + ".join(f"a{i}" for i in range(3000)), [f"a{i}" for i in range(3000)]),
    "x:x:...:x 2,000 times": ("y ~ " + ":".join(["x"] * 2000), ["x"]),
    "a - b - ... 1,000 removals": ("y ~ a + " + " - ".join(["b"] * 1000), ["a"]),
    "(a0+...+a4)^5": ("y ~ (" + "+".join(f"a{i}" for i in range(5)) + ")^5", None),
}


@pytest.mark.parametrize("text, labels", LONG.values(), ids=list(LONG))
def test_long_formulas_parse(text, labels):
    import time

    start = time.perf_counter()
    f = parse_formula(text)
    assert time.perf_counter() - start < 5
    if labels is not None:
        assert [t.label for t in f.fixed] == labels
    else:
        assert len(f.fixed) == 31


DEEP = {
    "5,000 minus signs": ("y ~ " + "-" * 5000 + "x", "nests too deeply"),
    "I(x^x^...) 2,000": ("y ~ I(" + "^".join(["x"] * 2000) + ")", "nests too deeply"),
    "log(log(...)) 300": ("y ~ " + "log(" * 300 + "x" + ")" * 300, "nested too deeply"),
    "(a0+...+a19)^20": ("y ~ (" + "+".join(f"a{i}" for i in range(20)) + ")^20 + (1|g)", "more than 10,000 terms"),
    "a0*a1*...*a19": ("y ~ " + "*".join(f"a{i}" for i in range(20)) + " + (1|g)", "more than 10,000 terms"),
    "(a0+...+a99)^3": ("y ~ (" + "+".join(f"a{i}" for i in range(100)) + ")^3", "more than 10,000 terms"),
    "I(x+x+...) 1,000": ("y ~ I(" + "+".join(["x"] * 1000) + ")", r"I\(...\) holds more than 200 operators"),
    "I(y+0+0...) ~ x": ("I(y" + "+0" * 1000 + ") ~ x", "holds more than 200 operators"),
    "(1|g:g:...) 500": ("y ~ x + (1|" + ":".join(["g"] * 500) + ")", "more than 50 parts"),
    "(1|g/g/...) 500": ("y ~ x + (1|" + "/".join(["g"] * 500) + ")", "more than 50 parts"),
}


@pytest.mark.parametrize("text, message", DEEP.values(), ids=list(DEEP))
def test_deep_or_exploding_formulas_are_refused_quickly(text, message):
    import time

    start = time.perf_counter()
    with pytest.raises(FormulaSyntaxError, match=message):
        parse_formula(text)
    assert time.perf_counter() - start < 5
