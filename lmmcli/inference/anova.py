"""F tests of the fixed terms of a mixed model, as lmerTest's anova(): types 1, 2, 3 (hypotheses.py)
with Satterthwaite's or Kenward-Roger's denominator df.

Satterthwaite (lmerTest's contestMD): for L with more than one row, eigen-decompose L V L' = P D P'
(keeping eigenvalues above sqrt(machine eps) times the largest), test the q rows of P'L:
    F = sum_m (P'L beta)_m^2 / d_m / q,   nu_m = 2 d_m^2 / (g_m' A g_m),  g_m = d(P'L V L'P)_mm / d varpar,
    den_df = 2 E / (E - q) with E = sum nu_m / (nu_m - 2)   (2 if any nu_m <= 2; their mean if all equal).
One row: the t test's df (contest1D), F = t^2.
Kenward-Roger (pbkrtest's KRmodcomp, as lmerTest calls it): F = scaling * (L b)'(L Phi_A L')^{-1}(L b) / q
with KR's df and scaling (kenward_roger.f_test).
Both: Mean Sq = F_unscaled * sigma^2, Sum Sq = Mean Sq * num_df, as lmerTest prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmmcli.distributions import f_sf
from lmmcli.errors import UsageError
from lmmcli.inference.hypotheses import TYPES, hypotheses
from lmmcli.results import SCHEMA_VERSION, clean

DF_METHODS = ("satterthwaite", "kenward-roger")
EIGEN_EPS = np.sqrt(np.finfo(float).eps)
NU_TOL = 1e-8


@dataclass
class AnovaRow:
    """One term's F test."""

    term: str
    sum_sq: float | None
    mean_sq: float | None
    num_df: int | None
    den_df: float | None
    f_value: float | None
    p_value: float | None


@dataclass
class AnovaResult:
    """lmerTest's anova() table of a fitted model."""

    anova: list[AnovaRow]
    type: str
    df_method: str
    formula: str
    method: str
    nobs: int
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict:
        """The JSON document."""
        return clean(self)


def check_options(type_, df_method: str, reml: bool | None = None) -> tuple[str, str]:
    """(type, df method), normalised; a UsageError for what lmerTest would refuse."""
    t = {"i": "1", "ii": "2", "iii": "3"}.get(str(type_).strip().lower(), str(type_).strip())
    if t not in TYPES:
        raise UsageError(f"unknown --type '{type_}'", hint="use 1, 2 or 3 (lmerTest's default is 3)")
    m = df_method.strip().lower().replace("_", "-")
    if m not in DF_METHODS:
        raise UsageError(f"unknown --df method '{df_method}'", hint=f"use one of: {', '.join(DF_METHODS)}")
    if m == "kenward-roger" and reml is False:
        raise UsageError("Kenward-Roger's method needs a REML fit (as lmerTest)",
                         hint="drop --ml, or use --df satterthwaite")
    return t, m


# -- the tests ------------------------------------------------------------------------------------
def fstat_ddf(nu: np.ndarray) -> float:
    """lmerTest's get_Fstat_ddf: the F statistic's df from the df of its q independent t statistics."""
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < NU_TOL):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2)))
    return 2 * E / (E - len(nu))


def satterthwaite_test(L: np.ndarray, beta: np.ndarray, pieces) -> tuple[float, int, float]:
    """(F, num_df, den_df) of L beta = 0 by Satterthwaite's method (lmerTest's contestMD)."""
    if L.shape[0] == 1:
        return _one_row(L[0], beta, pieces)
    d, P = np.linalg.eigh(L @ pieces.vcov @ L.T)
    d, P = d[::-1], P[:, ::-1]                       # decreasing, as R's eigen
    q = int(np.sum(d > max(EIGEN_EPS * d[0], 0.0)))
    PtL = (P.T @ L)[:q]
    if q == 1:
        F, _, ddf = _one_row(PtL[0], beta, pieces)
        return F, 1, ddf
    F = float(np.sum((PtL @ beta) ** 2 / d[:q]) / q)
    nu = np.array([pieces.df(PtL[m]) for m in range(q)])    # = 2 d_m^2 / g'Ag, d_m = PtL_m V PtL_m'
    return F, q, fstat_ddf(nu)


def _one_row(l: np.ndarray, beta: np.ndarray, pieces) -> tuple[float, int, float]:
    """contest1D: the t test of one contrast, as F = t^2 on (1, df)."""
    t = float(l @ beta) / np.sqrt(float(l @ pieces.vcov @ l))
    return t * t, 1, pieces.df(l)


def _row(term: str, F_unscaled: float, F: float, ndf: int, ddf: float, sigma: float) -> AnovaRow:
    ms = F_unscaled * sigma ** 2
    return AnovaRow(term, ms * ndf, ms, ndf, ddf, F, float(f_sf(F, ndf, ddf)))


def test_terms(Ls: dict, beta, sigma: float, df_method: str, pieces) -> list[AnovaRow]:
    """One AnovaRow per term; a term with no testable row (all its columns aliased) gets empty values."""
    rows = []
    for term, L in Ls.items():
        if L.shape[0] == 0:
            rows.append(AnovaRow(term, None, None, None, None, None, None))
        elif df_method == "kenward-roger":
            kr = pieces.f_test(L, beta)
            rows.append(_row(term, kr["FstatU"], kr["F"], kr["ndf"], kr["ddf"], sigma))
        else:
            F, q, ddf = satterthwaite_test(L, beta, pieces)
            rows.append(_row(term, F, F, q, ddf, sigma))
    return rows


# -- the entry points -----------------------------------------------------------------------------
def anova_of(basis, type_: str = "3", df_method: str = "satterthwaite") -> AnovaResult:
    """lmerTest's anova(model, type, ddf) of an AnalysisBasis (a fit with its data, or a saved model)."""
    type_, df_method = check_options(type_, df_method, basis.reml)
    Ls = hypotheses(basis.layout, type_)
    rows = test_terms(Ls, basis.beta, basis.sigma, df_method, basis.df_pieces(df_method))
    notes = []
    if type_ == "3" and basis.layout.missing_cells:
        notes.append(f"missing cells for: {', '.join(basis.layout.missing_cells)}; "
                     "interpret type III hypotheses with care")
    return AnovaResult(rows, type_, df_method, basis.formula, basis.method, basis.nobs, notes, basis.warnings)


def anova(fm, data, type_: str = "3", df_method: str = "satterthwaite") -> AnovaResult:
    """lmerTest's anova(model, type, ddf) of a FittedModel fitted to `data`."""
    from lmmcli.inference.basis import basis_from_fit

    check_options(type_, df_method, fm.reml)
    return anova_of(basis_from_fit(fm, data), type_, df_method)
