"""The hypothesis (contrast) matrices of lmerTest's anova(): one L per fixed term, for types 1, 2 and 3.

Each term's L has one row per degree of freedom and one column per column of X; the F test of the
term is the test of L beta = 0 (anova.py). How lmerTest builds them (Kuznetsova, Brockhoff &
Christensen 2017, JSS 82(13), section 4; its get_contrasts_type1/2/3):

    type 1  sequential: the rows of t(D) for the term's columns, D the unit lower-triangular factor of
            Doolittle's LU decomposition of X'X (each term adjusted for the terms before it).
    type 2  marginal for terms no other term contains; otherwise Doolittle on X'X with the term and the
            terms containing it moved last (the term adjusted for every term that does not contain it).
    type 3  from the over-parameterised design rdX (an intercept and every level of every factor in
            every term, R's ~ 0 + term per term): L0 = t(ginv(X) rdX) expresses each rdX column in X's
            columns; then, highest-order terms first, a term's columns of L0 are replaced by their
            residuals on the columns of the terms containing it (least squares over rdX's columns),
            and L is L0's rows for X's own columns. For treatment contrasts this is not the naive test
            of the term's coefficients: a main effect is tested averaged over the levels of the
            factors it interacts with, as in SAS.

Containment (lmerTest's term_contain): A is contained in B when A's variables are a proper subset of
B's and both have the same numeric (covariate) variables, so x is not contained in A:x.
R's zapsmall (round to 7 significant digits of the largest entry) is applied where lmerTest applies it,
because it decides which entries are exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmmcli.design.aliasing import aliased_columns
from lmmcli.design.evaluate import Evaluator
from lmmcli.design.matrices import term_columns
from lmmcli.design.matrices import coding
from lmmcli.formula import deparse
from lmmcli.io.frame import as_frame, infer_kind

TYPES = ("1", "2", "3")
DOOLITTLE_EPS = 1e-6      # lmerTest's doolittle(): entries below this (absolute) are set to 0
ROW_TOL = 1e-8            # lmerTest drops rows of a type-3 L whose absolute sum is below this


@dataclass(frozen=True)
class Term:
    """One fixed term: its label (R's term label), its variables, the numeric ones, its columns of X."""

    label: str
    variables: frozenset
    numerics: frozenset
    columns: tuple[int, ...]

    @property
    def order(self) -> int:
        return len(self.variables)


@dataclass
class TermLayout:
    """What the hypotheses are made of: X's column names grouped by term, X'X, and X' rdX with rdX type 3's
    full-dummy design (cross-products only, so a saved model can carry them), and rdX's empty columns.
    With contrasts other than treatment, type 3 is built on the treatment-coded X (`treatment`) and mapped
    to this X's coefficients by `to_coded` = ginv(X_treatment) X, as lmerTest's get_contrasts_type3 does."""

    names: list[str]
    terms: list[Term]
    intercept: bool
    XtX: np.ndarray
    XtRd: np.ndarray
    rd_names: list[str]
    missing_cells: list[str]
    treatment: "TermLayout | None" = None
    to_coded: np.ndarray | None = None


def fitting_frame(design, df):
    """The rows of the data the design was fitted to, with the column kinds build_design gave them."""
    used = sorted(design.spec.formula.columns())
    picked = as_frame(df).select(used).take(design.rows)
    return picked.with_columns({c: infer_kind(picked[c]) for c in used})


def _columns(formula, spec, ev, fixed: bool):
    """[(term, its column names, its columns)] of the fixed part, coded (fixed) or treatment-coded."""
    codes = coding(formula.fixed, formula.intercept, spec)      # R's contrasts-or-indicators per factor
    return [(t, term_columns(t, code, spec, ev, fixed=fixed)) for t, code in zip(formula.fixed, codes)]


def _terms(spec, columns, names: list[str]) -> list[Term]:
    """Term records whose column indices point into `names` (aliased columns have none)."""
    index = {name: j for j, name in enumerate(names)}
    out = []
    for t, cols in columns:
        labels = [deparse(f) for f in t.factors]
        numerics = frozenset(lb for lb in labels if spec.variables[lb].kind != "factor")
        out.append(Term(t.label, frozenset(labels), numerics, tuple(index[nm] for nm, _ in cols if nm in index)))
    return out


def term_layout(design, df) -> TermLayout:
    """The term of each of X's columns (R's assign) and the over-parameterised rdX, from the fitting rows."""
    spec, formula = design.spec, design.spec.formula
    ev = Evaluator.for_spec(spec, fitting_frame(design, df))
    rd_cols, rd_names = ([np.ones(design.n)], ["(Intercept)"]) if formula.intercept else ([], [])
    for t in formula.fixed:
        for nm, v in term_columns(t, [False] * len(t.factors), spec, ev):
            rd_names.append(nm)
            rd_cols.append(np.ones(design.n) if v is None else v)
    rdX = np.column_stack(rd_cols) if rd_cols else np.zeros((design.n, 0))
    cells = [nm for nm, col in zip(rd_names, rdX.T) if not np.any(col != 0)]
    X, names = design.X, list(design.fixed_names)
    layout = TermLayout(names, _terms(spec, _columns(formula, spec, ev, True), names), formula.intercept,
                        X.T @ X, X.T @ rdX, rd_names, cells)
    if spec.contrasts:
        columns = _columns(formula, spec, ev, False)
        t_names = (["(Intercept)"] if formula.intercept else []) + [nm for _, cols in columns for nm, _ in cols]
        t_cols = ([np.ones(design.n)] if formula.intercept else []) + \
            [np.ones(design.n) if v is None else v for _, cols in columns for _, v in cols]
        Xt = np.column_stack(t_cols)
        keep = [j for j in range(Xt.shape[1]) if j not in set(aliased_columns(Xt))]
        Xt, t_names = Xt[:, keep], [t_names[j] for j in keep]
        XtXt = Xt.T @ Xt
        layout.treatment = TermLayout(t_names, _terms(spec, columns, t_names), formula.intercept, XtXt,
                                      Xt.T @ rdX, rd_names, cells)
        layout.to_coded = zapsmall(np.linalg.solve(XtXt, Xt.T @ X))
    return layout


def containment(terms: list[Term]) -> dict[str, list[str]]:
    """For each term, the terms that contain it (lmerTest's containment)."""
    def contains(a: Term, b: Term) -> bool:
        return a.variables < b.variables and a.numerics == b.numerics
    return {a.label: [b.label for b in terms if contains(a, b)] for a in terms}


# -- R's numerical helpers ------------------------------------------------------------------------
def zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's zapsmall: round to `digits` significant digits of the largest absolute entry."""
    x = np.asarray(x, dtype=float)
    mx = np.max(np.abs(x)) if x.size else 0.0
    places = max(0, digits - int(np.ceil(np.log10(mx)))) if mx > 0 else digits
    return np.round(x, places)


def doolittle(x: np.ndarray, eps: float = DOOLITTLE_EPS) -> np.ndarray:
    """The unit lower-triangular L of Doolittle's LU decomposition without pivoting (lmerTest's doolittle):
    a pivot below eps gives a zero column, and entries below eps are set to 0."""
    n = x.shape[0]
    L, U = np.eye(n), np.zeros((n, n))
    for i in range(n):
        U[i, :] = x[i, :] - L[i, :i] @ U[:i, :]
        if i + 1 < n:
            col = x[i + 1:, i] - L[i + 1:, :i] @ U[:i, i]
            L[i + 1:, i] = 0.0 if abs(U[i, i]) < eps else col / U[i, i]
    L[np.abs(L) < eps] = 0.0
    return L


# -- the three types ---------------------------------------------------------------------------
def type1(XtX: np.ndarray, terms: list[Term]) -> dict[str, np.ndarray]:
    """Sequential hypotheses: rows of t(doolittle(X'X)) for each term's columns."""
    p = XtX.shape[1]
    Lt = np.eye(1) if p == 1 else doolittle(XtX).T
    return {t.label: Lt[list(t.columns), :] for t in terms}


def type2(XtX: np.ndarray, terms: list[Term]) -> dict[str, np.ndarray]:
    """lmerTest's type 2 ('unfolded'): marginal for uncontained terms, Doolittle with the term last otherwise."""
    p = XtX.shape[1]
    if p <= 1 or len(terms) <= 1:
        return type1(XtX, terms)
    contained = containment(terms)
    by_label = {t.label: t for t in terms}
    out = {}
    for t in terms:
        if not contained[t.label]:
            out[t.label] = np.eye(p)[list(t.columns), :]
            continue
        last = [j for u in [t.label] + contained[t.label] for j in by_label[u].columns]
        order = [j for j in range(p) if j not in set(last)] + last
        Lt = doolittle(XtX[np.ix_(order, order)]).T
        rows = [k for k, j in enumerate(order) if j in set(t.columns)]
        back = np.argsort(order)          # columns back in X's order
        out[t.label] = Lt[np.ix_(rows, back)]
    return out


def type3(layout: TermLayout) -> dict[str, np.ndarray]:
    """lmerTest's type 3 (see the module docstring): built on the treatment coding, then mapped to X's."""
    if layout.treatment is not None and len(layout.terms) > 1 and layout.XtX.shape[1] > 1:
        return {k: L @ layout.to_coded for k, L in _type3_treatment(layout.treatment).items()}
    return _type3_treatment(layout)


def _type3_treatment(layout: TermLayout) -> dict[str, np.ndarray]:
    """Type 3 hypotheses for a treatment-coded X."""
    terms = layout.terms
    if layout.XtX.shape[1] <= 1 or len(terms) <= 1:
        return type1(layout.XtX, terms)
    # ginv(X) rdX = (X'X)^{-1} X'rdX: X has full column rank once its aliased columns are dropped
    L = zapsmall(np.linalg.solve(layout.XtX, layout.XtRd).T)   # rows: rdX columns; columns: X columns
    contained = containment(terms)
    by_label = {t.label: t for t in terms}
    for t in sorted(terms, key=lambda t: -t.order):            # stable: highest order first
        if not contained[t.label] or not t.columns:
            continue
        basis = L[:, [j for u in contained[t.label] for j in by_label[u].columns]]
        own = L[:, list(t.columns)]
        coef = np.linalg.lstsq(basis, own, rcond=None)[0]
        L[:, list(t.columns)] = zapsmall(own - basis @ coef)
    rd_index = {nm: i for i, nm in enumerate(layout.rd_names)}
    L = L[[rd_index[nm] for nm in layout.names], :]
    out = {}
    for t in terms:
        Lt = L[:, list(t.columns)].T
        out[t.label] = Lt[np.sum(np.abs(Lt), axis=1) > ROW_TOL, :]
    return out


def hypotheses(layout: TermLayout, type_: str) -> dict[str, np.ndarray]:
    """{term label: L} for anova type '1', '2' or '3'."""
    if type_ == "1":
        return type1(layout.XtX, layout.terms)
    if type_ == "2":
        return type2(layout.XtX, layout.terms)
    return type3(layout)
