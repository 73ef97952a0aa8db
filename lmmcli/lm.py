"""The regression baseline: a formula without random terms is an ordinary linear model (R's lm()).

Reported as R's summary(lm()): coefficients with t tests on n - p residual degrees of freedom, the
residual standard error, R^2 and adjusted R^2, and the overall F test against the intercept-only
model (against the zero model when the formula has no intercept, as R does). The likelihood is the
ML one, as R's logLik(lm): -2 logLik = n (1 + log(2 pi RSS / n)), with p + 1 parameters.

The numbers come from the same engine as the mixed models: with no random blocks, engine.fit is
ordinary least squares (RX is the R factor of X, pwrss the residual sum of squares).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmmcli.design.design import Design
from lmmcli.distributions import f_sf, t_two_sided_p
from lmmcli.errors import ModelSpecError
from lmmcli.formula import Formula
from lmmcli.engine.crossprod import CrossProducts
from lmmcli.engine.fit import fit as engine_fit
from lmmcli.engine.pls import unscaled_vcov
from lmmcli.engine.scaling import choose_scaling
from lmmcli.results import SCHEMA_VERSION, FixedEffect, report_dict


@dataclass
class LmResult:
    """Everything `lmm fit` reports for a model without random terms (R's summary(lm()))."""

    formula: str
    nobs: int
    n_dropped: int
    fixed_effects: list[FixedEffect]
    sigma: float                    # residual standard error, sqrt(RSS / df_resid)
    df_resid: int
    r_squared: float
    adj_r_squared: float
    f_statistic: float | None       # None for an intercept-only (or empty) model, as R prints none
    f_df1: int | None
    f_df2: int | None
    f_p_value: float | None
    loglik: float                   # ML log-likelihood, as R's logLik(lm)
    aic: float
    bic: float
    npar: int
    residuals: dict[str, float]     # quantiles of the raw residuals y - X beta
    vcov: list[list[float]]
    warnings: list[str]
    model: str = "lm"
    method: str = "OLS"
    note: str = "no random-effects term was given, so an ordinary linear regression (lm) was fitted"
    extra: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        """The JSON document: every field, optional sections merged at the top level."""
        return report_dict(self)


@dataclass
class OlsFit:
    """Least-squares estimates from the engine with zero random blocks."""

    beta: np.ndarray
    RX: np.ndarray                  # upper triangular, X'X = RX' RX
    rss: float
    deviance: float                 # -2 logLik by ML


def ols(design: Design) -> OlsFit:
    """Solve the (weighted) least-squares problem through the engine (no theta); the ML objective is
    -2 logLik (with prior weights: less sum(log w), as R's logLik(lm))."""
    X, y, _ = design.engine_inputs()
    units = choose_scaling(X, y, [])
    cp = CrossProducts.from_rows(X, y, [], (*design.fixed_names, design.response), units)
    sol = engine_fit(cp, reml=False).solution(cond_var=False)
    return OlsFit(sol.beta, sol.RX, sol.pwrss, sol.objective - design.log_det_weights())


def _coefficients(names, beta, vcov, df_resid) -> list[FixedEffect]:
    """Estimate, Std. Error, t value and two-sided Pr(>|t|) on df_resid degrees of freedom."""
    se = np.sqrt(np.diag(vcov))
    t = beta / se
    p = t_two_sided_p(t, df_resid)
    return [FixedEffect(n, float(b), float(s), float(tv), float(df_resid), float(pv))
            for n, b, s, tv, pv in zip(names, beta, se, t, p)]


def _model_ss(fitted: np.ndarray, intercept: bool, w=None) -> float:
    """R's summary.lm 'mss': fitted values about their (weighted) mean, or about 0 without an intercept."""
    w = np.ones_like(fitted) if w is None else w
    centre = np.sum(w * fitted) / np.sum(w) if intercept else 0.0
    return float(np.sum(w * (fitted - centre) ** 2))


def _r_squared(mss, rss, n, df1, df_int, df_resid) -> tuple[float, float]:
    """R^2 = mss / (mss + rss) and its adjusted form; both 0 when there is nothing to explain (as R)."""
    if df1 <= 0 or mss + rss <= 0:
        return 0.0, 0.0
    r2 = mss / (mss + rss)
    return r2, 1.0 - (1.0 - r2) * (n - df_int) / df_resid


def _f_test(mss, rss, df1, df2):
    """The overall F test (statistic, p-value); None when there is nothing to test."""
    if df1 <= 0:
        return None, None
    f = (mss / df1) / (rss / df2)
    return float(f), float(f_sf(f, df1, df2))


def _residual_quantiles(r: np.ndarray) -> dict[str, float]:
    q = np.quantile(r, [0, 0.25, 0.5, 0.75, 1.0])
    return dict(zip(["min", "q1", "median", "q3", "max"], map(float, q)))


def fit_lm(formula: Formula, design: Design) -> LmResult:
    """lm(): least squares on the design, summarised as summary(lm())."""
    if design.blocks:
        raise ModelSpecError("fit_lm needs a formula without random-effects terms")
    n, p = design.X.shape
    df_resid = n - p
    if df_resid <= 0:
        raise ModelSpecError(f"{n} observations for {p} coefficients leave no residual degrees of freedom",
                             hint="use fewer fixed-effect terms or more rows")
    o = ols(design)
    sigma = float(np.sqrt(o.rss / df_resid))
    vcov = sigma ** 2 * unscaled_vcov(o.RX)
    intercept = formula.intercept and "(Intercept)" in design.fixed_names
    offset = 0.0 if design.offset is None else design.offset
    fitted = design.X @ o.beta + offset
    mss = _model_ss(fitted, intercept, design.weights)   # R 4.2's summary.lm counts the offset as fitted
    residuals = design.y - fitted
    if design.weights is not None:     # summary.lm's residuals are sqrt(w) (y - fitted)
        residuals = residuals * np.sqrt(design.weights)
    df_int = 1 if intercept else 0
    r2, adj = _r_squared(mss, o.rss, n, p - df_int, df_int, df_resid)
    f, fp = _f_test(mss, o.rss, p - df_int, df_resid)
    npar = p + 1
    ll = -0.5 * o.deviance
    return LmResult(
        formula=str(formula.text), nobs=n, n_dropped=design.n_dropped,
        fixed_effects=_coefficients(design.fixed_names, o.beta, vcov, df_resid),
        sigma=sigma, df_resid=df_resid, r_squared=float(r2), adj_r_squared=float(adj),
        f_statistic=f, f_df1=(p - df_int) if f is not None else None, f_df2=df_resid if f is not None else None,
        f_p_value=fp, loglik=ll, aic=-2 * ll + 2 * npar, bic=-2 * ll + np.log(n) * npar, npar=npar,
        residuals=_residual_quantiles(residuals), vcov=vcov.tolist(),
        warnings=list(design.warnings),
    )
