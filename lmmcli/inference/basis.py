"""What anova() and emmeans() need of a fitted model, from a fit and its data or from a saved model.

An AnalysisBasis holds the estimates (beta, sigma, Var(beta)), the term layout with X'X and X' rdX
(hypotheses.py), the reference grid's ingredients (factor levels, covariate means, the directions no
data speak to when columns were aliased), and the df machinery: lmerTest's vcov_varpar and Jac_list
for Satterthwaite, pbkrtest's P, W and adjusted covariance for Kenward-Roger. From a fit these are
computed when first asked; a saved model (`lmm fit --save`) carries them in its "analysis" section, so
`lmm anova|emmeans --model FILE` needs neither the data nor a refit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmmcli.design.design import Evaluator, ModelSpec, model_columns
from lmmcli.errors import DataError, ModelSpecError
from lmmcli.formula import Name, deparse, names_in
from lmmcli.inference.hypotheses import Term, TermLayout, fitting_frame, term_layout

SECTION_VERSION = 1
NULL_TOL = 1e-7          # singular values of the fitting X below this (relative) span its null space
KR_SAVE_MAX_Q = 2000     # `fit --save` stores Kenward-Roger's pieces up to this many random effects


@dataclass
class AnalysisBasis:
    """A fitted model as anova() and emmeans() see it."""

    formula: str
    method: str                            # "REML" or "ML"
    nobs: int
    warnings: list[str]
    spec: ModelSpec
    beta: np.ndarray
    sigma: float
    vcov: np.ndarray
    layout: TermLayout
    grid_factors: dict[str, tuple[str, ...]]
    covariate_means: dict[str, float]
    nonest: np.ndarray | None              # null space of the full X (aliased columns), else None
    fm: object = None                      # the FittedModel, when there is one (df pieces computed from it)
    pieces: dict = field(default_factory=dict)

    @property
    def reml(self) -> bool:
        return self.method == "REML"

    def df_pieces(self, method: str):
        """The Satterthwaite (VarparPieces) or Kenward-Roger (KRPieces) machinery, computed once."""
        if method not in self.pieces:
            if self.fm is None:
                raise DataError(f"this saved model carries no {method} pieces",
                                hint="give DATA FORMULA instead of --model, or save it again with lmm fit --save")
            self.pieces[method] = compute_pieces(self.fm, method)
        return self.pieces[method]


def compute_pieces(fm, method: str):
    """lmerTest's (vcov_varpar, Jac_list) or pbkrtest's (P, W, adjusted vcov) of a fitted model."""
    if method == "kenward-roger":
        from lmmcli.inference.kenward_roger import kr_pieces   # loads scipy.sparse: only when asked

        return kr_pieces(fm)
    from lmmcli.inference.satterthwaite import varpar_pieces

    return varpar_pieces(fm.model, fm.sol.theta, fm.sol.sigma, fm.vcov())


# -- from a fit ----------------------------------------------------------------------------------
def grid_variables(design, data) -> tuple[dict, dict]:
    """({factor column: levels}, {covariate column: mean over the fitting rows}) of the fixed part."""
    spec = design.spec
    factors, numeric_cols = {}, []
    for term in spec.formula.fixed:
        for e in term.factors:
            info = spec.variables[deparse(e)]
            if info.kind == "factor" and isinstance(e, Name):
                factors.setdefault(e.name, info.levels)
            else:
                numeric_cols += [c for c in sorted(names_in(e)) if c not in numeric_cols]
    for e in getattr(spec.formula, "offsets", ()):      # offsets enter the grid at the covariates' means
        numeric_cols += [c for c in sorted(names_in(e)) if c not in numeric_cols]
    frame = fitting_frame(design, data)
    means = {c: float(np.mean(frame[c].astype(float))) for c in numeric_cols if c not in factors}
    return factors, means


def null_space(X: np.ndarray) -> np.ndarray:
    """An orthonormal basis of the directions b with X b = 0 (numerically)."""
    _, d, Vt = np.linalg.svd(X, full_matrices=True)
    rank = int(np.sum(d > NULL_TOL * d[0])) if len(d) else 0
    return Vt[rank:].T


def basis_from_fit(fm, data) -> AnalysisBasis:
    """The basis of a mixed model fitted to `data`."""
    if not fm.blocks:
        raise ModelSpecError("this analysis is for mixed models; the formula has no random terms",
                             hint="add a random term such as (1 | group)")
    design, spec = fm.design, fm.design.spec
    factors, means = grid_variables(design, data)
    nonest = None
    if spec.aliased:
        _, X_full = model_columns(spec.formula.fixed, spec.formula.intercept, spec,
                                  Evaluator.for_spec(spec, fitting_frame(design, data)), fixed=True)
        nonest = null_space(X_full)
    result = fm.result()
    return AnalysisBasis(str(fm.formula.text), result.method, design.n, list(result.warnings), spec,
                         fm.sol.beta, float(fm.sol.sigma), fm.vcov(), term_layout(design, data), factors, means,
                         nonest, fm)


# -- to and from a saved model's "analysis" section -----------------------------------------------
def _matrix(a) -> list:
    return np.asarray(a, dtype=float).tolist()


def to_section(basis: AnalysisBasis, kr: bool = True) -> dict:
    """The saved model's "analysis" section: the layout, the grid, Satterthwaite's pieces and (REML fits,
    up to KR_SAVE_MAX_Q random effects, when kr) Kenward-Roger's."""
    sat = basis.df_pieces("satterthwaite")
    out = {
        "version": SECTION_VERSION,
        "layout": _layout_dict(basis.layout),
        "grid_factors": {k: list(v) for k, v in basis.grid_factors.items()},
        "covariate_means": dict(basis.covariate_means),
        "nonest": None if basis.nonest is None else _matrix(basis.nonest),
        "satterthwaite": {"A": _matrix(sat.A), "grads": [_matrix(G) for G in sat.grads]},
        "kenward_roger": None,
    }
    q = sum(b.nlevels * b.p for b in basis.fm.blocks) if basis.fm is not None else 0
    if kr and basis.reml and q <= KR_SAVE_MAX_Q:
        try:
            k = basis.df_pieces("kenward-roger")
        except ModelSpecError:
            return out
        out["kenward_roger"] = {"P": [_matrix(P) for P in k.P], "Wc": _matrix(k.Wc), "Vadj": _matrix(k.Vadj)}
    return out


def _layout_dict(lay: TermLayout) -> dict:
    """A TermLayout (and the treatment-coded one type 3 is built on) as JSON-ready data."""
    return {"names": list(lay.names),
            "terms": [{"label": t.label, "variables": sorted(t.variables), "numerics": sorted(t.numerics),
                       "columns": list(t.columns)} for t in lay.terms],
            "intercept": lay.intercept, "xtx": _matrix(lay.XtX), "xt_rdx": _matrix(lay.XtRd),
            "rd_names": list(lay.rd_names), "missing_cells": list(lay.missing_cells),
            "treatment": None if lay.treatment is None else _layout_dict(lay.treatment),
            "to_coded": None if lay.to_coded is None else _matrix(lay.to_coded)}


def _layout_from(d: dict) -> TermLayout:
    terms = [Term(t["label"], frozenset(t["variables"]), frozenset(t["numerics"]), tuple(t["columns"]))
             for t in d["terms"]]
    return TermLayout(list(d["names"]), terms, bool(d["intercept"]), np.asarray(d["xtx"], dtype=float),
                      np.asarray(d["xt_rdx"], dtype=float), list(d["rd_names"]), list(d["missing_cells"]),
                      None if d["treatment"] is None else _layout_from(d["treatment"]),
                      None if d["to_coded"] is None else np.asarray(d["to_coded"], dtype=float))


def from_section(state, section: dict) -> AnalysisBasis:
    """The basis of a saved model (its ModelState and its "analysis" section)."""
    from lmmcli.inference.kenward_roger import KRPieces
    from lmmcli.inference.satterthwaite import VarparPieces

    if section.get("version") != SECTION_VERSION:
        raise DataError("the saved model's analysis section is of another version", hint="save it again")
    arr = np.asarray
    layout = _layout_from(section["layout"])
    summary = state.summary
    vcov = arr(state.vcov, dtype=float)
    pieces = {"satterthwaite": VarparPieces(vcov, arr(section["satterthwaite"]["A"]),
                                            [arr(G) for G in section["satterthwaite"]["grads"]])}
    kr = section.get("kenward_roger")
    if kr:
        pieces["kenward-roger"] = KRPieces(vcov, [arr(P) for P in kr["P"]], arr(kr["Wc"]), arr(kr["Vadj"]))
    return AnalysisBasis(state.formula.text, "REML" if state.reml else "ML", int(summary.get("nobs", 0)),
                         list(summary.get("warnings", [])), state.spec, arr(state.beta, dtype=float),
                         float(state.sigma), vcov, layout,
                         {k: tuple(v) for k, v in section["grid_factors"].items()},
                         dict(section["covariate_means"]),
                         None if section["nonest"] is None else arr(section["nonest"]), None, pieces)
