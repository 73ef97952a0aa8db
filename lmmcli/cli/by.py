"""`lmm fit --by COL`: the same model fitted to the rows of each value of COL, one report per value and a summary.
Failed parts are reported on stderr and end the run with exit code 1 after the others are written."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from lmmcli.cli.common import echo_warnings, load_data, note, parse_contrasts, parse_refs
from lmmcli.cli.output import OutFormat, Shown, write


def by_shown(result) -> Shown:
    """The --by reports in every format."""
    from lmmcli.render import by as render_by

    document = lambda: {"by": result.by, "n_missing": result.n_missing,  # noqa: E731
                        "fits": render_by.documents(result)}
    return Shown(f"lmm fit --by {result.by}", document, lambda: render_by.tidy_rows(result),
                 lambda width, color: render_by.by_table(result, width, color),
                 lines=lambda: render_by.documents(result))


def fit_by_command(data: str, formula: str, by: str, ml: bool, factor, ref, fmt: OutFormat, output: Optional[Path],
                   strict: bool, df: str, ci: Optional[str], level: float, nsim: int, seed, jobs: Optional[int],
                   weights: Optional[str] = None, contrasts=None):
    """Read once, fit per value of --by (library: batch.fit_by), write, then say what went wrong where."""
    from lmmcli.batch import fit_by
    from lmmcli.formula import parse_formula

    parsed = parse_formula(formula)
    refs, coding = parse_refs(ref), parse_contrasts(contrasts)
    frame, source = load_data(data)
    result = fit_by(parsed.text, frame, by, reml=not ml, factors=tuple(factor or ()), refs=refs, source=source,
                    df_method=df, ci=ci, level=level, nsim=nsim, seed=seed, workers=jobs, weights=weights,
                    contrasts=coding)
    if result.n_missing:
        note(f"{result.n_missing} row(s) have no value in --by column '{by}' and are in no fit")
    write(by_shown(result), fmt, output, inputs=(data,))
    warnings = []
    for f in result.fits:
        for message in f.notes if f.value == result.fits[0].value else ():
            note(message)
        warnings += [f"{by} = {f.value}: {w}" for w in (f.report.warnings if f.report is not None else [])]
    for f in result.failed:
        sys.stderr.write(f"error: {by} = {f.value}: {f.error}\n")
    echo_warnings(warnings, strict and not result.failed)
    if result.failed:
        raise typer.Exit(1)
