"""Likelihood-ratio tests between GLMMs, as lme4's anova(gm1, gm2, ...) on glmer fits.

Every model is fitted (by glmer's method) to the rows complete in the columns of all models; the
table and its tests are compare.py's: ordered by npar, Chisq = 2 (logLik_i - logLik_{i-1}).
The logLik are complete for every nAGQ, so models fitted with the same nAGQ compare properly.
"""

from __future__ import annotations

import numpy as np

from lmmcli.compare import ComparedModel, CompareResult, common_rows, dropped_note, lr_tests, parse_all
from lmmcli.formula import deparse
from lmmcli.io.frame import as_frame


def compare_glmms(texts, df, family: str, link: str | None = None, nagq: int = 1, weights: str | None = None,
                  factors=(), refs=None, source: str = "the data") -> CompareResult:
    """anova() of several GLMMs of one family fitted to the same rows."""
    from lmmcli import glmm

    formulas = parse_all(texts)
    df = as_frame(df)
    rows = common_rows(formulas, df, source, weights)
    data = df.take(rows)
    fits = [glmm.glmer(f.text, data, family, link, nagq, weights, tuple(factors), dict(refs or {}), source)
            for f in formulas]
    table = lr_tests([_row(f"M{k}", fm) for k, fm in enumerate(fits, start=1)])
    dropped = len(df) - len(rows)
    notes = [dropped_note(dropped, len(rows))] if dropped else []
    from lmmcli.glmm.result import assemble

    warnings = [f"M{k}: {w}" for k, fm in enumerate(fits, start=1) for w in assemble(fm).warnings]
    return CompareResult(table, False, "ML", deparse(formulas[0].response), len(rows), len(df), dropped,
                         notes, warnings)


def _row(name: str, fm) -> ComparedModel:
    n, npar, ll = fm.design.n, fm.npar(), fm.loglik()
    opt = fm.opt2 or fm.opt1
    return ComparedModel(name, str(fm.formula.text), "glmer", npar, -2 * ll + 2 * npar,
                         -2 * ll + np.log(n) * npar, ll, -2 * ll, converged=opt.converged,
                         singular=fm.is_singular())
