"""The engine's input boundary (CrossProducts, as /work/notes/CROSSPRODUCTS.md specifies it) and the
small adapter that feeds it to today's PlsModel.

The engine package is growing its own CrossProducts (engine/crossprod.py); until it is in main, the
aggregation engines build this one, with the same field names, so replacing it is an import change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmmcli.design.design import ReBlock
from lmmcli.engine.pls import PlsModel, theta_lower, theta_start
from lmmcli.engine import kernels as kern


@dataclass(frozen=True)
class TermInfo:
    """One random-effects term, in engine order (largest number of levels first)."""

    group: str
    columns: tuple[str, ...]
    levels: tuple[str, ...]
    correlated: bool = True


@dataclass(frozen=True)
class CrossProducts:
    """Sufficient statistics of [Z X y] (m = p + 1: X columns then y); no rows."""

    n: int
    columns: tuple[str, ...]
    XyXy: np.ndarray                 # (m, m)
    terms: tuple[TermInfo, ...]
    counts1: np.ndarray              # (l1,)
    D1: np.ndarray                   # (l1, p1, p1)
    ZtXy1: np.ndarray                # (l1, p1, m)
    A21: object                      # (q_r, q1) csr or None
    A22: object                      # (q_r, q_r) csr or None
    A2Xy: np.ndarray | None          # (q_r, m)
    col_sum: np.ndarray              # (m,)
    col_min: np.ndarray
    col_max: np.ndarray
    nonfinite: np.ndarray            # (m,) int

    @property
    def p(self) -> int:
        return len(self.columns) - 1


def term_block(term: TermInfo) -> ReBlock:
    """A row-free ReBlock for a term: what the optimizer and the result need (names, levels, theta layout)."""
    p = len(term.columns)
    return ReBlock(term.group, term.columns, term.levels, np.zeros(0, dtype=np.int64), np.zeros((0, p)),
                   term.correlated)


def pls_model(cp: CrossProducts, reml: bool = True) -> PlsModel:
    """A PlsModel whose cross-products are cp's (today's PlsModel forms them from rows; this sets them)."""
    from lmmcli.errors import ModelSpecError
    from lmmcli.engine.pls import MAX_DENSE_REST

    model = PlsModel.__new__(PlsModel)
    blocks = [term_block(t) for t in cp.terms]
    model.n, model.p, model.m, model.reml = cp.n, cp.p, cp.p + 1, reml
    model.blocks, model.Xy, model.XyXy = blocks, None, cp.XyXy
    model.lower, model.theta0 = theta_lower(blocks), theta_start(blocks)
    model.l1, model.p1 = len(cp.terms[0].levels), len(cp.terms[0].columns)
    model.D1, model.ZtXy1 = cp.D1, cp.ZtXy1
    model.rest = blocks[1:]
    model.q_r = sum(b.nlevels * b.p for b in model.rest)
    if model.rest:
        if model.q_r > MAX_DENSE_REST:
            raise ModelSpecError(
                f"the random terms after the largest one have {model.q_r} random effects together; "
                f"lmm handles at most {MAX_DENSE_REST} there",
                hint="put the grouping factor with the most levels in its own term, or use fewer levels")
        model.A21, model.A22, model.A2Xy = cp.A21, cp.A22, cp.A2Xy
        offsets = np.cumsum([0] + [b.nlevels * b.p for b in model.rest])
        layout = [(int(o), b.nlevels, b.p) for o, b in zip(offsets, model.rest)]
        model.rest_part = kern.RestPart(cp.A21, cp.A22, layout, model.l1, model.p1)
    return model
