"""Model matrices as R's model.matrix builds them, from evaluated variables and a ModelSpec.

Coding of a factor in a term (R's terms.formula and model.matrix): a factor gets contrasts when the
term without it is empty or is contained in an earlier term, and full indicator coding otherwise; in
a model without an intercept the first factor of the first term that has one is coded by indicators.
Columns are named as R names them: the variable's label followed by the level (treatment) or the
contrast's column name (f1, f2 for sum and Helmert; f.L, f.Q for poly), and an interaction's
columns vary its first variable fastest.
"""

from __future__ import annotations

import numpy as np

from lmmcli.design.transforms import contrast_matrix
from lmmcli.errors import DataError
from lmmcli.formula import deparse


def factor_codes(ev, e, info) -> np.ndarray:
    """Row codes into info.levels; a value not among the levels is an error."""
    labels = ev.labels(e)
    index = {lv: i for i, lv in enumerate(info.levels)}
    get = index.get
    codes = np.array([get(v, -1) for v in labels.tolist()], dtype=np.int64).reshape(len(labels))
    if (codes < 0).any():
        bad = labels[np.argmax(codes < 0)]
        raise DataError(f"level '{bad}' of '{deparse(e)}' was not in the data the model was fitted to")
    return codes


def coding(terms, intercept: bool, spec) -> list[list[bool]]:
    """For each term, for each of its variables: True when a factor there is coded by contrasts."""
    sets = [frozenset(deparse(f) for f in t.factors) for t in terms]
    out = []
    for j, t in enumerate(terms):
        out.append([not (sets[j] - {deparse(f)}) or any(sets[j] - {deparse(f)} <= sets[k] for k in range(j))
                    for f in t.factors])
    if not intercept:
        for j, t in enumerate(terms):
            first = next((i for i, f in enumerate(t.factors) if spec.variables[deparse(f)].kind == "factor"), None)
            if first is not None:
                out[j][first] = False
                break
    return out


def _factor_parts(label: str, info, codes, contrast: bool, kind: str):
    """[(name, column)] of one factor in a term: contrasts (R's names) or one indicator per level."""
    if not contrast:
        return list(zip([label + lv for lv in info.levels], _indicators(codes, 0, len(info.levels))))
    suffixes, C = contrast_matrix(kind, info.levels)
    if kind == "treatment":    # indicators of levels 2..k, without a k x (k-1) product
        return list(zip([label + lv for lv in suffixes], _indicators(codes, 1, len(suffixes))))
    return [(label + sfx, C[codes, k]) for k, sfx in enumerate(suffixes)]


def _indicators(codes: np.ndarray, first: int, k: int) -> np.ndarray:
    """(k, n): row j is the indicator of level first + j (one pass over the rows, not one per level)."""
    M = np.zeros((k, len(codes)))
    rows = np.flatnonzero((codes >= first) & (codes < first + k))
    M[codes[rows] - first, rows] = 1.0
    return M


def term_columns(term, contrasts: list[bool], spec, ev, fixed: bool = True):
    """The model-matrix columns of one term: [(name, values)], in R's order."""
    cols = [("", None)]     # None: the empty product, so a one-factor term costs no multiplication
    for e, contrast in zip(term.factors, contrasts):
        label = deparse(e)
        info = spec.variables[label]
        if info.kind == "factor":
            kind = spec.contrasts.get(label, "treatment") if fixed else "treatment"
            parts = _factor_parts(label, info, factor_codes(ev, e, info), contrast, kind)
        else:
            suffixes, M = ev.matrix(e)
            parts = [(label + sfx, M[:, k]) for k, sfx in enumerate(suffixes)]
        # the first factor varies fastest: new parts go in the outer loop
        cols = [(_join(n1, n2), v2 if v1 is None else v1 * v2) for n2, v2 in parts for n1, v1 in cols]
    return cols


def _join(a: str, b: str) -> str:
    return b if not a else f"{a}:{b}"


def model_columns(terms, intercept: bool, spec, ev, fixed: bool = False):
    """Names and matrix of an intercept plus terms; `fixed`: the fixed part, where --contrasts apply
    (random terms keep treatment coding, as lmer's contrasts argument recodes X only)."""
    names, cols = [], []
    if intercept:
        names.append("(Intercept)")
        cols.append(np.ones(len(ev.df)))
    for t, code in zip(terms, coding(terms, intercept, spec)):
        for name, v in term_columns(t, code, spec, ev, fixed):
            names.append(name)
            cols.append(v)
    X = np.column_stack(cols) if cols else np.zeros((len(ev.df), 0))
    return names, X
