"""Time one fit phase by phase, in this process; print the timings as one JSON line.

Usage: python bench/phases.py FILE FORMULA [--repeat N]
Phases: import (lmmcli + numpy/scipy/pandas), read (data.read_table), design (build_design),
setup (PlsModel: cross-products), optimise (start_theta + BOBYQA; evaluations and time per evaluation),
solve (solution + conditional variances at the optimum), result (FitResult), render (summary table).
Every phase after import is repeated N times and the minimum kept (timings on a shared machine are noisy).
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as lmm's entry point (cli.main) does
T0 = time.perf_counter()
import numpy as np  # noqa: E402

from lmmcli.io import read as data
from lmmcli.design import design
from lmmcli import fit
from lmmcli import formula
from lmmcli.engine import optimize
from lmmcli.engine import pls
from lmmcli.engine.fit import EngineFit
from lmmcli.render import tables as render  # noqa: E402

T_IMPORT = time.perf_counter() - T0


def timed(fn):
    """(seconds, value) of one call."""
    t = time.perf_counter()
    v = fn()
    return time.perf_counter() - t, v


def best_of(n, fn):
    """Minimum time over n calls, and the last value."""
    times, v = [], None
    for _ in range(n):
        t, v = timed(fn)
        times.append(t)
    return min(times), v


def run(path: str, text: str, repeat: int) -> dict:
    """All phases of `lmm fit` for one data file and formula."""
    f = formula.parse_formula(text)
    t_read, df = best_of(repeat, lambda: data.read_table(path))
    t_design, des = best_of(repeat, lambda: design.build_design(f, df, source=path))
    t_setup, model = best_of(repeat, lambda: pls.PlsModel.from_rows(des.X, des.y, des.blocks, reml=True))
    t_opt, opt = best_of(repeat, lambda: optimize.fit_theta(model))
    t_eval, _ = best_of(max(repeat, 5), lambda: model.objective(opt.theta))
    t_solve, sol = best_of(repeat, lambda: model.solve(opt.theta))
    fm = fit.FittedModel(f, des, EngineFit(model, opt))
    t_result, res = best_of(repeat, lambda: fit.assemble(fm))
    t_render, _ = best_of(repeat, lambda: render.fit_table(res, width=100, color=False))
    return {
        "rows": int(des.n), "groups": {b.group: b.nlevels for b in des.blocks}, "theta": opt.theta.tolist(),
        "objective": float(opt.fmin), "evaluations": int(opt.feval), "return_code": opt.return_code,
        "import_s": T_IMPORT, "read_s": t_read, "design_s": t_design, "setup_s": t_setup,
        "optimise_s": t_opt, "per_eval_ms": 1e3 * t_opt / max(opt.feval, 1), "eval_at_opt_ms": 1e3 * t_eval,
        "solve_s": t_solve, "result_s": t_result, "render_s": t_render,
        "fit_s": t_setup + t_opt + t_solve,
    }


def main(argv) -> None:
    repeat = 1
    if "--repeat" in argv:
        i = argv.index("--repeat")
        repeat = int(argv[i + 1])
        del argv[i:i + 2]
    path, text = argv
    out = run(path, text, repeat)
    out["peak_rss_mb"] = _peak_mb()
    print(json.dumps(out))


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


if __name__ == "__main__":
    np.seterr(all="ignore")
    main(sys.argv[1:])
