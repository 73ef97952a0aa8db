"""Evaluate formula expressions on a Frame's columns as R's model.frame does (never with eval).

A numeric expression gives one float column (NaN where R has NA or NaN); poly(), ns() and bs() give
several; a factor expression (a text or TRUE/FALSE column, factor(x), a comparison) gives text labels
(None where missing). Data-dependent functions (scale, poly, ns, bs) learn their coefficients the first
time they are evaluated, from every row where their argument is present, and reuse them for new data.
"""

from __future__ import annotations

import math

import numpy as np

from lmmcli.design import splines, transforms
from lmmcli.design.levels import is_factor_column, is_number, value_labels
from lmmcli.errors import DataError, ModelSpecError
from lmmcli.formula import BinOp, Call, Const, Keyword, Name, Number, UnaryOp, deparse
from lmmcli.io.frame import as_frame, missing

MATH = {"log": np.log, "exp": np.exp, "sqrt": np.sqrt, "log10": np.log10, "log2": np.log2, "log1p": np.log1p,
        "abs": np.abs, "sin": np.sin, "cos": np.cos, "tan": np.tan}
CONSTANTS = {"pi": math.pi}
COMPARE = {"==": np.equal, "!=": np.not_equal, "<": np.less, ">": np.greater, "<=": np.less_equal,
           ">=": np.greater_equal}
LOGICAL_OPS = {*COMPARE, "&", "|", "%in%"}
MATRIX_FUNCS = {"poly", "ns", "bs"}


def is_logical(e, df) -> bool:
    """Whether an expression is TRUE/FALSE-valued (R turns such a variable into a factor FALSE, TRUE)."""
    if isinstance(e, BinOp):
        return e.op in LOGICAL_OPS
    if isinstance(e, UnaryOp):
        return e.op == "!"
    if isinstance(e, Call) and e.func == "I":
        return is_logical(e.args[0], df)
    if isinstance(e, Const):
        return isinstance(e.value, bool)
    return isinstance(e, Name) and e.name in df.columns and _is_bool(df[e.name])


def is_factor(e, df, forced: set) -> bool:
    """Whether a model variable is a factor: a text or logical column (or one named by --factor),
    factor(...), or a logical expression."""
    if isinstance(e, Name) and e.name in df.columns:
        return is_factor_column(df[e.name], e.name in forced)
    if isinstance(e, Call) and e.func == "factor":
        return True
    return is_logical(e, df)


def factor_is_numeric(e, df, forced: set) -> bool:
    """factor(x) of a numeric x (its levels sort as numbers)."""
    return isinstance(e, Call) and e.func == "factor" and not is_factor(e.args[0], df, forced)


def _is_bool(col) -> bool:
    if col.dtype == bool:
        return True
    if col.dtype != object:
        return False
    present = col[~missing(col)].tolist()
    return bool(present) and all(isinstance(v, (bool, np.bool_)) for v in present)   # (stops at the first other)


def _argument(e: Call, position: int, keyword: str, default):
    """A call's argument by position (after the first) or by name."""
    positional = [a for a in e.args if not isinstance(a, Keyword)]
    named = {a.name: a.value for a in e.args if isinstance(a, Keyword)}
    if keyword in named:
        return named[keyword]
    return positional[position] if position < len(positional) else default


def _constant(e, what: str):
    """The value of a literal argument (a number, TRUE/FALSE)."""
    if isinstance(e, Number):
        return e.value
    if isinstance(e, Const):
        return e.value
    if isinstance(e, UnaryOp) and e.op == "-" and isinstance(e.operand, Number):
        return -e.operand.value
    raise ModelSpecError(f"{what} must be a number or TRUE/FALSE, not '{deparse(e)}'", span=e.span)


def _whole(e, what: str, default: int) -> int:
    value = default if e is None else _constant(e, what)
    if isinstance(value, bool) or not float(value).is_integer():
        raise ModelSpecError(f"{what} must be a whole number, not {value}")
    return int(value)


class Evaluator:
    """Evaluates formula expressions on a Frame; learns scale/poly/ns/bs coefficients unless given them."""

    def __init__(self, df, scale_state: dict | None = None, transforms_state: dict | None = None,
                 forced: set | None = None):
        self.df = as_frame(df)
        self.learn = scale_state is None
        self.scale_state = {} if scale_state is None else scale_state
        self.transforms = {} if transforms_state is None else transforms_state
        self.forced = set(forced or ())
        self.cache: dict = {}

    @classmethod
    def for_spec(cls, spec, df) -> "Evaluator":
        """An evaluator with a fitted model's learned coefficients (for new data)."""
        return cls(df, spec.scale_state, spec.transforms, set(spec.factor_columns))

    def take(self, rows) -> "Evaluator":
        """The same evaluations restricted to rows (cached values are sliced, not recomputed)."""
        new = Evaluator(self.df.take(rows), self.scale_state, self.transforms, self.forced)
        new.cache = {k: (v[0], v[1][rows]) for k, v in self.cache.items()}
        return new

    def _cached(self, kind: str, e, compute):
        key = (kind, deparse(e))
        if key not in self.cache:
            self.cache[key] = (kind, compute())
        return self.cache[key][1]

    # -- numbers -----------------------------------------------------------------------------
    def numeric(self, e) -> np.ndarray:
        """The expression's values as floats (NaN where missing or undefined)."""
        return self._cached("num", e, lambda: self._numeric(e))

    def _numeric(self, e) -> np.ndarray:
        if isinstance(e, Name):
            return self._column(e.name)
        if isinstance(e, Number):
            return np.full(len(self.df), float(e.value))
        if isinstance(e, Const):
            if isinstance(e.value, bool):
                return np.full(len(self.df), float(e.value))
            raise ModelSpecError(f"text \"{e.value}\" cannot be used in arithmetic", span=e.span)
        if isinstance(e, UnaryOp):
            v = self.logical(e) if e.op == "!" else self.numeric(e.operand)
            return -v if e.op == "-" else v
        if isinstance(e, BinOp):
            if e.op in LOGICAL_OPS:
                return self.logical(e)
            return _arith(e.op, self.numeric(e.left), self.numeric(e.right))
        if isinstance(e, Call):
            return self._call(e)
        raise ModelSpecError(f"cannot evaluate '{deparse(e)}'")

    def _column(self, name: str) -> np.ndarray:
        if name in CONSTANTS and name not in self.df.columns:
            return np.full(len(self.df), CONSTANTS[name])
        col = self.df[name]
        if _is_bool(col):
            return np.array([np.nan if v is None else float(v) for v in col.tolist()])
        if not is_number(col):
            raise DataError(f"column '{name}' is not numeric, so it cannot be used in arithmetic")
        return col.astype(float)

    def _call(self, e: Call) -> np.ndarray:
        if e.func in ("I", "as.numeric"):
            return self.numeric(e.args[0])
        if e.func == "scale":
            return self._scale(deparse(e), self.numeric(e.args[0]))
        if e.func in MATRIX_FUNCS:
            suffixes, M = self.matrix(e)
            if M.shape[1] != 1:
                raise ModelSpecError(f"'{deparse(e)}' has {M.shape[1]} columns; it cannot be used in arithmetic")
            return M[:, 0]
        if e.func == "factor":
            raise ModelSpecError(f"'{deparse(e)}' is a factor; it cannot be used in arithmetic", span=e.span)
        if e.func == "log" and len(e.args) == 2:
            with np.errstate(all="ignore"):
                return np.log(self.numeric(e.args[0])) / np.log(self.numeric(_argument(e, 1, "base", None)))
        if e.func not in MATH:
            raise ModelSpecError(f"{e.func}() cannot be used here", span=e.span)
        with np.errstate(all="ignore"):
            return MATH[e.func](self.numeric(e.args[0]))

    def _scale(self, key: str, x: np.ndarray) -> np.ndarray:
        """Centre and scale by the fitting data's mean and sd over the rows where x is present."""
        if self.learn and key not in self.scale_state:
            self.scale_state[key] = transforms.learn_scale(x)
        if key not in self.scale_state:
            raise ModelSpecError(f"no stored centre and scale for '{key}'")
        c, s = self.scale_state[key]
        return (x - c) / s

    # -- several columns ---------------------------------------------------------------------
    def matrix(self, e) -> tuple[list[str], np.ndarray]:
        """(column suffixes, n x k values): poly(x, 2) gives suffixes 1, 2; anything numeric one column ''."""
        if not (isinstance(e, Call) and e.func in MATRIX_FUNCS):
            return [""], self.numeric(e)[:, None]
        M = self._cached("mat", e, lambda: self._matrix(e))
        return [str(j) for j in range(1, M.shape[1] + 1)], M

    def _matrix(self, e: Call) -> np.ndarray:
        key, x = deparse(e), self.numeric(e.args[0])
        if e.func == "poly":
            degree = _whole(_argument(e, 1, "degree", None), f"the degree of {key}", 1)
            raw = _argument(e, 99, "raw", None)       # by name only: poly(x, ...) puts more positions in '...'
            if raw is not None and _constant(raw, "raw ="):
                return transforms.raw_poly(x, degree)
            return transforms.poly_basis(x, self._learned(key, lambda: transforms.learn_poly(x, degree, key)))
        df_arg = _argument(e, 1, "df", None)
        if e.func == "ns":
            state = self._learned(key, lambda: splines.learn_ns(x, _whole(df_arg, f"df of {key}", 1), key))
            return splines.ns_basis(x, state)
        degree = _whole(_argument(e, 2, "degree", None), f"the degree of {key}", 3)
        state = self._learned(key, lambda: splines.learn_bs(x, _whole(df_arg, f"df of {key}", degree), degree, key))
        return splines.bs_basis(x, state)

    def _learned(self, key: str, learn):
        if self.learn and key not in self.transforms:
            self.transforms[key] = learn()
        if key not in self.transforms:
            raise ModelSpecError(f"no stored coefficients for '{key}'")
        return self.transforms[key]

    # -- TRUE/FALSE and factors --------------------------------------------------------------
    def logical(self, e) -> np.ndarray:
        """A logical expression as 1.0 / 0.0 (NaN where R has NA)."""
        return self._cached("lgl", e, lambda: self._logical(e))

    def _logical(self, e) -> np.ndarray:
        if isinstance(e, UnaryOp) and e.op == "!":
            return 1.0 - self.logical(e.operand)
        if isinstance(e, Call) and e.func == "I":
            return self.logical(e.args[0])
        if not isinstance(e, BinOp):
            return self.numeric(e)
        if e.op in ("&", "|"):
            a, b = self.logical(e.left), self.logical(e.right)
            decided = 0.0 if e.op == "&" else 1.0     # FALSE & NA is FALSE, TRUE | NA is TRUE
            known = np.minimum(a, b) if e.op == "&" else np.maximum(a, b)
            return np.where((a == decided) | (b == decided), decided, known)
        if e.op == "%in%":
            return self._in(e)
        if self._is_text(e.left) or self._is_text(e.right):
            a, b = self._texts(e.left), self._texts(e.right)
            gone = np.array([x is None or y is None for x, y in zip(a, b)])
            out = COMPARE[e.op](np.where(gone, "", a).astype(str), np.where(gone, "", b).astype(str))
            return np.where(gone, np.nan, out.astype(float))
        a, b = self.numeric(e.left), self.numeric(e.right)
        with np.errstate(invalid="ignore"):
            return np.where(np.isnan(a) | np.isnan(b), np.nan, COMPARE[e.op](a, b).astype(float))

    def _in(self, e: BinOp) -> np.ndarray:
        """x %in% c(...): never NA (R's match)."""
        table = e.right.args if isinstance(e.right, Call) and e.right.func == "c" else (e.right,)
        values = [_constant(v, "the values after %in%") for v in table]
        if self._is_text(e.left) or any(isinstance(v, str) for v in values):
            wanted = {str(v) if not isinstance(v, float) else "%.15g" % v for v in values}
            return np.array([x in wanted for x in self._texts(e.left)], dtype=float)
        x = self.numeric(e.left)
        return np.isin(x, np.array(values, dtype=float)).astype(float)

    def _is_text(self, e) -> bool:
        if isinstance(e, Const):
            return isinstance(e.value, str)
        return isinstance(e, Name) and e.name in self.df.columns and not is_number(self.df[e.name]) \
            and not _is_bool(self.df[e.name])

    def _texts(self, e) -> np.ndarray:
        if isinstance(e, Const):
            return np.full(len(self.df), str(e.value), dtype=object)
        return self.labels(e)

    def labels(self, e) -> np.ndarray:
        """A factor expression's level labels per row (None where missing)."""
        return self._cached("lab", e, lambda: self._labels(e))

    def _labels(self, e) -> np.ndarray:
        if isinstance(e, Call) and e.func == "factor":
            inner = e.args[0]
            if is_factor(inner, self.df, self.forced):
                return self.labels(inner)
            return _number_labels(self.numeric(inner))
        if isinstance(e, Name) and not is_logical(e, self.df):
            col = self.df[e.name]
            return np.where(missing(col), None, value_labels(col)).astype(object)
        v = self.logical(e)
        return np.where(np.isnan(v), None, np.where(v == 1.0, "TRUE", "FALSE")).astype(object)


def _number_labels(v: np.ndarray) -> np.ndarray:
    """factor() of numbers: labels as R prints them (3 not 3.0), None for NA."""
    return np.array([None if x != x else "%.15g" % x for x in v.tolist()], dtype=object)


def _arith(op, a, b):
    """Arithmetic with R's meaning of ^ (power)."""
    with np.errstate(all="ignore"):
        return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power}[op](a, b)
