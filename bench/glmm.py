"""GLMM speed against glmer, whole process: `python bench/glmm.py [--large] [--glmer]`.

Cases: VerbAgg (7,584 rows, 316 subjects x 24 items crossed, binary) from tests/reference/glmm, and
with --large a simulated 1e6 rows / 1e4 groups binary `y ~ x + (x|g)` (seeded; written once to
/tmp/lmm_bench_glmm_1e6.csv). --glmer also times lme4::glmer on the same files with Rscript.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LMM = str(ROOT / ".venv" / "bin" / "lmm")
VERBAGG = ROOT / "tests" / "reference" / "glmm" / "data" / "verbagg.csv"
LARGE = Path("/tmp/lmm_bench_glmm_1e6.csv")
CASES = {
    "verbagg": (VERBAGG, "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", ["--factor", "id"], "id"),
    "binary_1e6": (LARGE, "y ~ x + (x | g)", ["--factor", "g"], "g"),
}


def make_large() -> None:
    """1e6 rows, 1e4 groups, a random intercept (sd 0.8) and slope (sd 0.4), binary outcome."""
    if LARGE.exists():
        return
    rng = np.random.default_rng(20261201)
    n, G = 1_000_000, 10_000
    g = rng.integers(0, G, n)
    x = rng.normal(size=n)
    eta = -0.3 + 0.6 * x + rng.normal(0, 0.8, G)[g] + rng.normal(0, 0.4, G)[g] * x
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    with open(LARGE, "w") as fh:
        fh.write("y,x,g\n")
        np.savetxt(fh, np.column_stack([y, x, g]), fmt=["%d", "%.6f", "%d"], delimiter=",")


def time_lmm(case) -> float:
    path, formula, extra, _ = CASES[case]
    t0 = time.perf_counter()
    subprocess.run([LMM, "fit", str(path), formula, "--family", "binomial", *extra], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    return time.perf_counter() - t0


def time_glmer(case) -> float:
    path, formula, _, factor = CASES[case]
    script = (f'suppressMessages(library(lme4)); d <- read.csv("{path}", stringsAsFactors = TRUE); '
              f'd${factor} <- factor(d${factor}); m <- glmer({formula}, d, binomial)')
    t0 = time.perf_counter()
    subprocess.run(["Rscript", "-e", script], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", action="store_true")
    ap.add_argument("--glmer", action="store_true")
    args = ap.parse_args()
    cases = ["verbagg"] + (["binary_1e6"] if args.large else [])
    if args.large:
        make_large()
    for case in cases:
        line = f"{case}: lmm {time_lmm(case):.2f} s"
        if args.glmer:
            line += f", glmer {time_glmer(case):.2f} s"
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
