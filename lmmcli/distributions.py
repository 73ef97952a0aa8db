"""The few distribution functions lmm needs.

scipy.stats costs about half a second to import, more than a whole sleepstudy fit, so the tails and
quantiles come from scipy.special (what scipy.stats calls underneath), imported when first needed.
The t tests of a plain `lmm fit` need none of it (0.1 s saved per run): their tail is the regularised
incomplete beta function, evaluated here by its continued fraction for df up to LARGE_DF.
"""

from __future__ import annotations

import math

import numpy as np

from lmmcli.errors import UsageError

CF_EPS = 1e-15
CF_MAX_ITER = 20_000
# Against scipy.special.stdtr the continued fraction agrees to 1e-13 relative up to df = 100 and
# 3e-12 up to 1e5, but only 1e-9 for df of 1e6 and more (it then needs thousands of terms); such
# df come from hundreds of thousands of rows, where scipy's import cost does not matter.
LARGE_DF = 1e4
# Above LARGE_DF a t far out in the tail needs no scipy either: when the continued fraction's front factor
# is below exp(UNDERFLOW_LOG) and x is well below the fraction's switch point (so the fraction is
# small: its terms shrink geometrically), the tail is below 1e-340, which is 0 in double precision, as scipy gives it
# (a fit on 1e6 rows has t of 100-300 and df of 1e4-1e6: scipy.special's import was ~70 ms of 1.2 s).
UNDERFLOW_LOG = -800.0


def _special():
    from scipy import special

    return special


def norm_ppf(p):
    """Quantile of the standard normal."""
    return _special().ndtri(p)


def interval_z(level: float) -> float:
    """z = qnorm((1 + level) / 2), the half-width in sds of a two-sided normal interval at `level`.

    The one check of --level for every command that takes it, so the mistake reads the same everywhere.
    """
    if not 0 < level < 1:
        raise UsageError(f"--level must be between 0 and 1 (e.g. 0.95), got {level}")
    return float(norm_ppf(0.5 + level / 2))


def _beta_cf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz), for x < (a+1)/(a+b+2)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, CF_MAX_ITER):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)), -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < CF_EPS:
            break
    return h


def _stirling_tail(z: float) -> float:
    """lgamma(z) - [(z - 1/2) log z - z + log(2 pi)/2], by its asymptotic series (error < 1e-16 for z > 50)."""
    return 1.0 / (12.0 * z) - 1.0 / (360.0 * z ** 3) + 1.0 / (1260.0 * z ** 5)


def log_beta(a: float, b: float) -> float:
    """log B(a, b). For a large the lgamma values are huge and nearly cancel (df = 1e7 lost 8 digits),
    so lgamma(a) - lgamma(a + b) is then taken from Stirling's series, in terms that do not cancel."""
    if a < 50.0:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    diff = -(a - 0.5) * math.log1p(b / a) - b * math.log(a + b) + b + _stirling_tail(a) - _stirling_tail(a + b)
    return math.lgamma(b) + diff


def beta_inc(a: float, b: float, x: float, one_minus_x: float) -> float:
    """I_x(a, b), the regularised incomplete beta function; 1 - x is passed separately to keep its digits."""
    if x <= 0.0:
        return 0.0
    if one_minus_x <= 0.0:
        return 1.0
    log_x = math.log(x) if x < 0.5 else math.log1p(-one_minus_x)
    log_1mx = math.log(one_minus_x) if one_minus_x < 0.5 else math.log1p(-x)
    log_front = a * log_x + b * log_1mx - log_beta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, one_minus_x) / b


def _t_two_sided(t: float, df: float) -> float:
    """P(|T| > |t|) for Student's t: I_{df/(df+t^2)}(df/2, 1/2); the normal tail when df is infinite."""
    if math.isnan(t) or math.isnan(df):
        return math.nan
    if math.isinf(df):
        return math.erfc(abs(t) / math.sqrt(2.0))
    t2 = t * t
    a, x, one_minus_x = df / 2.0, df / (df + t2), t2 / (df + t2)
    if df > LARGE_DF:
        if 0.0 < x < 0.99 * (a + 1.0) / (a + 2.5) and \
                a * math.log(x) + 0.5 * math.log(one_minus_x) - log_beta(a, 0.5) < UNDERFLOW_LOG:
            return 0.0
        return float(2.0 * _special().stdtr(df, -abs(t)))
    return beta_inc(a, 0.5, x, one_minus_x)


def t_two_sided_p(t, df):
    """Two-sided p-values of t statistics (elementwise over t and df)."""
    t, df = np.broadcast_arrays(np.asarray(t, dtype=float), np.asarray(df, dtype=float))
    out = np.array([_t_two_sided(a, b) for a, b in zip(t.ravel(), df.ravel())], dtype=float)
    return out.reshape(t.shape) if t.ndim else float(out[0])


def chi2_sf(x, df):
    """Upper tail of the chi-squared distribution."""
    return _special().chdtrc(df, x)


def chi2_ppf(p, df):
    """Quantile of the chi-squared distribution."""
    return _special().chdtri(df, 1.0 - np.asarray(p, dtype=float))


def f_sf(f, df1, df2):
    """Upper tail of the F distribution."""
    return _special().fdtrc(df1, df2, f)


def t_ppf(p, df):
    """Quantile of Student's t (the normal's for infinite df)."""
    return _special().stdtrit(df, p) if np.isfinite(df) else _special().ndtri(p)


def tukey_sf(q, k: int, df):
    """Upper tail of the studentized range of k means with df error degrees of freedom (R's ptukey,
    lower.tail = FALSE). scipy.stats is imported here only: it costs half a second."""
    from scipy.stats import studentized_range

    return float(studentized_range.sf(q, k, df if np.isfinite(df) else np.inf))


QUARTILE_NAMES = ("min", "q1", "median", "q3", "max")


def quartiles(x) -> dict[str, float]:
    """min, quartiles and max of a sample by R's type-7 quantile (np.quantile's default), from one
    np.partition: np.quantile calls np.unique, whose first call imports numpy.ma (~7 ms a process)."""
    x = np.asarray(x, dtype=float).ravel()
    h = (len(x) - 1) * np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, len(x) - 1)
    if np.isnan(x).any():
        return dict.fromkeys(QUARTILE_NAMES, float("nan"))
    s = np.partition(x, np.concatenate([lo, hi]))
    q = s[lo] + (h - lo) * (s[hi] - s[lo])
    return dict(zip(QUARTILE_NAMES, map(float, q)))
