"""The few distribution functions lmm needs, on scipy.special.

scipy.stats costs about half a second to import, more than a whole sleepstudy fit; these are the
same special functions scipy.stats calls underneath.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from .errors import UsageError


def norm_ppf(p):
    """Quantile of the standard normal."""
    return special.ndtri(p)


def interval_z(level: float) -> float:
    """z = qnorm((1 + level) / 2), the half-width in sds of a two-sided normal interval at `level`.

    The one check of --level for every command that takes it, so the mistake reads the same everywhere.
    """
    if not 0 < level < 1:
        raise UsageError(f"--level must be between 0 and 1 (e.g. 0.95), got {level}")
    return float(norm_ppf(0.5 + level / 2))


def t_sf(t, df):
    """Upper tail P(T > t) of Student's t with df degrees of freedom (df = inf gives the normal)."""
    t, df = np.asarray(t, dtype=float), np.asarray(df, dtype=float)
    return np.where(np.isinf(df), special.ndtr(-t), special.stdtr(np.where(np.isinf(df), 1.0, df), -t))


def t_two_sided_p(t, df):
    """Two-sided p-value of a t statistic."""
    return 2.0 * t_sf(np.abs(t), df)


def chi2_sf(x, df):
    """Upper tail of the chi-squared distribution."""
    return special.chdtrc(df, x)


def chi2_ppf(p, df):
    """Quantile of the chi-squared distribution."""
    return special.chdtri(df, 1.0 - np.asarray(p, dtype=float))


def f_sf(f, df1, df2):
    """Upper tail of the F distribution."""
    return special.fdtrc(df1, df2, f)
