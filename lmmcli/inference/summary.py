"""What `lmm fit` reports for a mixed model: lme4's summary, lmerTest's df and p-values, the variance
summary (shares, ICC, R²) and, when asked, confidence intervals — one FitResult."""

from __future__ import annotations

from lmmcli.inference.satterthwaite import infer
from lmmcli.results import FitResult
from lmmcli.inference.variance import with_variance_summary


def summarize(fm, df_method: str = "satterthwaite", ci: str | None = None, level: float = 0.95,
              nsim: int = 1000, seed: int | None = None, progress=None) -> FitResult:
    """The full report of a FittedModel; progress(done, total) follows a bootstrap."""
    result = with_variance_summary(fm, infer(fm, fm.result(), df_method))
    if ci is not None:
        # imported only when asked: profiles need scipy.interpolate, a fifth of a second to load
        from lmmcli.inference.confint import attach, confidence_intervals

        groups = {getattr(blk, "name", None) or blk.group: blk.group for blk in fm.blocks}
        attach(result, confidence_intervals(fm, ci, level, nsim, seed, progress=progress), groups)
    return result
