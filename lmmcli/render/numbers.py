"""Numbers as R prints them: significant digits, a column's common decimals, p-values."""

from __future__ import annotations


def fmt(x, digits: int = 4) -> str:
    """A number with `digits` significant digits, R-like; None/NaN as blank."""
    if x is None:
        return ""
    x = float(x)
    if x != x:
        return "NaN"
    if x == 0:
        return "0"
    if abs(x) >= 1e6 or abs(x) < 1e-4:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}" if abs(x) >= 10 ** digits else f"{x:.{max(digits - 1 - _mag(x), 0)}f}"


def _mag(x: float) -> int:
    import math

    return int(math.floor(math.log10(abs(x))))


def fmt_column(values, digits: int = 4) -> list[str]:
    """A column formatted with common decimals so its smallest entry keeps `digits` significant digits (R's format())."""
    finite = [abs(float(v)) for v in values if v is not None and float(v) == float(v) and float(v) != 0]
    if not finite:
        return [fmt(v, digits) for v in values]
    if min(finite) < 1e-4 or max(finite) >= 1e8:
        return [fmt(v, digits) if v is not None else "" for v in values]
    decimals = min(max(digits - 1 - _mag(min(finite)), 0), 8)
    return ["" if v is None else ("NaN" if float(v) != float(v) else f"{float(v):.{decimals}f}") for v in values]


def fmt_p(p) -> str:
    """p-values as R prints them: '< 2e-16' below that."""
    if p is None:
        return ""
    if p < 2e-16:
        return "< 2e-16"
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.2e}"
