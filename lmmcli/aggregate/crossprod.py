"""The engine's input boundary, engine.crossprod.CrossProducts (see /work/notes/CROSSPRODUCTS.md), as the
aggregation engines fill it, and the row-free ReBlock an aggregated fit's design carries for each term."""

from __future__ import annotations

import numpy as np

from lmmcli.design.design import ReBlock, _varcorr_names
from lmmcli.engine.crossprod import CrossProducts, TermInfo

__all__ = ["CrossProducts", "TermInfo", "term_block", "term_blocks"]


def term_block(term: TermInfo) -> ReBlock:
    """A ReBlock without rows for a term: what the result needs (names, levels, theta layout)."""
    p = len(term.columns)
    return ReBlock(term.group, tuple(term.columns), tuple(term.levels), np.zeros(0, dtype=np.int64),
                   np.zeros((0, p)), term.correlated)


def term_blocks(terms) -> list[ReBlock]:
    """Row-free ReBlocks for the terms in engine order, with lme4's VarCorr names (g, g.1, ...)."""
    return _varcorr_names([term_block(t) for t in terms])
