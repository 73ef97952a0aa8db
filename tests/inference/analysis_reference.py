"""The stored lmerTest/emmeans reference cases of tests/reference/analysis/ (see make_reference.R there),
and one fit per case shared by the tests that use them."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from lmmcli.fit import fit
from lmmcli.io.read import read_table

BASE = Path(__file__).resolve().parent.parent / "reference" / "analysis"
CASES = sorted(p.stem for p in (BASE / "expected").glob("*.json"))
SLOW = {"crossed_slope"}      # a singular crossed fit: ~180 evaluations, seconds on a busy machine


def params(rows):
    """pytest params of (case, ...) tuples, the SLOW cases marked slow (make test-all runs them)."""
    return [pytest.param(*row, marks=pytest.mark.slow, id="-".join(map(str, row))) if row[0] in SLOW
            else pytest.param(*row, id="-".join(map(str, row))) for row in rows]


@functools.lru_cache(maxsize=None)
def expected(case: str) -> dict:
    return json.loads((BASE / "expected" / f"{case}.json").read_text())


@functools.lru_cache(maxsize=None)
def data(name: str):
    return read_table(str(BASE / "data" / name))


@functools.lru_cache(maxsize=None)
def fitted(case: str):
    """(FittedModel, data) of a case, fitted as R fitted it."""
    ref = expected(case)
    df = data(ref["data"])
    refs, contrasts = ref.get("refs") or {}, ref.get("contrasts") or {}
    fm = fit(ref["formula"], df, reml=ref["reml"], factors=tuple(ref["factors"]), refs=dict(refs),
             weights=ref.get("weights"), contrasts=dict(contrasts))
    return fm, df


def rel(a: float, b: float) -> float:
    """Relative difference of a from the reference b."""
    return abs(a - b) / max(abs(b), 1e-300)


@functools.lru_cache(maxsize=None)
def basis(case: str):
    """The AnalysisBasis of a case (its Satterthwaite and Kenward-Roger pieces computed once)."""
    from lmmcli.inference.basis import basis_from_fit

    return basis_from_fit(*fitted(case))
