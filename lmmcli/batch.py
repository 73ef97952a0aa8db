"""One model per value of a column (`lmm fit --by COL`): the data split by COL's values (in R's level order),
the same formula fitted to each part, in parallel over processes, each report kept with its value.

A part that cannot be fitted (too few rows, a constant response, ...) does not stop the others: its error is
kept as its result. Rows whose COL is missing belong to no part; their count is reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from lmmcli.design.levels import group_codes
from lmmcli.errors import DataError, LmmError
from lmmcli.io.frame import as_frame, missing


@dataclass
class ByFit:
    """The report of one part: the value of the --by column, and the fit's report or its error."""

    value: str
    nrows: int
    report: object = None           # FitResult, or lm.LmResult for a formula without random terms
    mixed: bool = True
    notes: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class ByFits:
    """Every part's fit, in the order of the column's levels."""

    by: str
    fits: list[ByFit]
    n_missing: int                  # rows with no value in the --by column (in no part)

    @property
    def failed(self) -> list[ByFit]:
        return [f for f in self.fits if f.error is not None]


def split_by(df, by: str, source: str = "the data"):
    """([(label, part)], rows without a value): the data's rows grouped by the values of column `by`."""
    df = as_frame(df)
    if by not in df:
        import difflib

        close = difflib.get_close_matches(by, df.columns, n=1)
        raise DataError(f"--by column '{by}' is not in {source}", hint=f"did you mean '{close[0]}'?" if close else None)
    keep = np.flatnonzero(~missing(df[by]))
    if len(keep) == 0:
        raise DataError(f"--by column '{by}' has no values in {source}")
    present = df.take(keep)
    codes, labels = group_codes(present, (by,))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    parts = [(labels[k], present.take(keep_rows)) for k, keep_rows in
             enumerate(np.split(order, bounds[1:-1]))]
    return parts, len(df) - len(keep)


def _fit_part(job) -> ByFit:
    """Fit and summarise one part (in a worker process or here)."""
    from lmmcli.fit import analyze, fit

    label, part, text, options = job
    try:
        fm = fit(text, part, reml=options["reml"], factors=options["factors"], refs=options["refs"],
                 source=f"{options['source']} ({options['by']} = {label})", weights=options["weights"],
                 contrasts=options["contrasts"])
        a = analyze(fm, options["df_method"], options["ci"], options["level"], options["nsim"], options["seed"])
        return ByFit(label, len(part), a.report, a.mixed, a.notes)
    except LmmError as exc:
        return ByFit(label, len(part), error=exc.message)


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:              # not Linux
        return os.cpu_count() or 1


def fit_by(text: str, df, by: str, reml: bool = True, factors=(), refs=None, source: str = "the data",
           df_method: str = "satterthwaite", ci: str | None = None, level: float = 0.95, nsim: int = 1000,
           seed: int | None = None, workers: int | None = None, weights: str | None = None,
           contrasts: dict | None = None) -> ByFits:
    """The formula fitted to the rows of each value of column `by`, over `workers` processes (default: every
    core; one process when there is one part or one worker)."""
    parts, n_missing = split_by(df, by, source)
    options = dict(reml=reml, factors=tuple(factors), refs=dict(refs or {}), source=source, by=by,
                   df_method=df_method, ci=ci, level=level, nsim=nsim, seed=seed, weights=weights,
                   contrasts=dict(contrasts or {}))
    jobs = [(label, part, text, options) for label, part in parts]
    workers = min(workers or default_workers(), len(jobs))
    if workers <= 1:
        return ByFits(by, [_fit_part(j) for j in jobs], n_missing)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as pool:
        return ByFits(by, list(pool.map(_fit_part, jobs)), n_missing)
