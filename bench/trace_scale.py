"""Where the time goes in one aggregated fit (in process): aggregation, each objective evaluation,
the solution, the residual pass, the result and the summary's analysis.

Usage: python bench/trace_scale.py DATA FORMULA [--threads 2] [--df none|satterthwaite]
Prints one JSON object: wall and CPU seconds per phase, the number of objective evaluations,
their mean, minimum and maximum wall time and total CPU time, the peak RSS, the objective and theta. For the
`make bench-scale` cases see bench/scale.py (which runs `lmm fit` as a child process instead).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from contextlib import contextmanager


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("formula")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--df", default="none")
    args = ap.parse_args(argv)

    from lmmcli.aggregate.duckdb_engine import DuckDBRunner
    from lmmcli.aggregate.source import resolve
    from lmmcli.aggregate.stats import aggregate
    from lmmcli.fit import analyze
    from lmmcli.engine import pls
    from lmmcli.fit_scale import fit_aggregated, residual_quantiles
    from lmmcli.formula import parse_formula

    phases, evals, cpu = {}, [], []

    @contextmanager
    def phase(name):
        w, c = time.perf_counter(), time.process_time()
        yield
        phases[name] = {"wall_s": round(time.perf_counter() - w, 2), "cpu_s": round(time.process_time() - c, 2)}
        print(name, phases[name], file=sys.stderr, flush=True)

    inner = pls.PlsModel.objective

    def timed(self, theta):
        t, c = time.perf_counter(), time.process_time()
        f = inner(self, theta)
        evals.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        print(f"evaluation {len(evals)}: {evals[-1]:.2f} s wall, {cpu[-1]:.2f} CPU-s, theta {[float(t) for t in theta]}, "
              f"{f!r}", file=sys.stderr, flush=True)
        return f

    pls.PlsModel.objective = timed
    runner = DuckDBRunner(resolve(args.data), threads=args.threads, progress=False)
    formula = parse_formula(args.formula)
    with phase("aggregate"):
        agg = aggregate(runner, formula, (), None, args.data)
    with phase("optimise"):
        fm = fit_aggregated(formula, agg, True, runner.name)
        fm.engine.opt                                    # noqa: B018 (the optimisation runs on first use)
    n_opt = len(evals)
    with phase("solution"):
        fm.sol                                           # noqa: B018
    with phase("residuals"):
        fm.residuals = residual_quantiles(runner, fm)
    with phase("analysis"):
        analysis = analyze(fm, args.df, None, 0.95, 0, 1, None)
    out = {"data": args.data, "formula": args.formula, "phases": phases,
           "evaluations": {"optimise": n_opt, "all": len(evals),
                           "mean_s": round(sum(evals) / max(len(evals), 1), 3),
                           "min_s": round(min(evals, default=0.0), 3), "max_s": round(max(evals, default=0.0), 3),
                           "cpu_s": round(sum(cpu), 1)},
           "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
           "objective": float(fm.sol.objective), "theta": [float(t) for t in fm.engine.opt.theta],
           "residuals": fm.residuals, "nobs": int(agg.cp.n), "report": bool(analysis.report)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
