"""GLMM speed against glmer, whole process: `python bench/glmm.py [--large] [--glmer] [--data-dir DIR]`.

Cases: VerbAgg (7,584 rows, 316 subjects x 24 items crossed, binary) from tests/reference/glmm, and
with --large a simulated 1e6 rows / 1e4 groups binary `y ~ x + (x|g)` (seeded; written once to
DIR/lmm_bench_glmm_1e6.csv, DIR /tmp by default). --glmer also times lme4::glmer on the same files
with Rscript. Each line gives wall time and the child process's CPU time (user + system), the fair
measure on a shared machine; hold `flock /tmp/lmm_heavy.lock` for --large or --glmer.
lmmcli is byte-compiled first (compileall), as an installed lmm is and as R's packages are: with
PYTHONDONTWRITEBYTECODE set and no __pycache__, an editable checkout compiles its ~70 modules from
source on every run (~0.08 s CPU of VerbAgg's process); --source skips the compile step.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LMM = str(ROOT / ".venv" / "bin" / "lmm")
VERBAGG = ROOT / "tests" / "reference" / "glmm" / "data" / "verbagg.csv"
LARGE_NAME = "lmm_bench_glmm_1e6.csv"
CASES = {
    "verbagg": (VERBAGG, "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", ["--factor", "id"], "id"),
    "binary_1e6": (Path("/tmp") / LARGE_NAME, "y ~ x + (x | g)", ["--factor", "g"], "g"),
}


def make_large(data_dir: Path) -> None:
    """1e6 rows, 1e4 groups, a random intercept (sd 0.8) and slope (sd 0.4), binary outcome."""
    path = data_dir / LARGE_NAME
    CASES["binary_1e6"] = (path, *CASES["binary_1e6"][1:])
    if path.exists():
        return
    rng = np.random.default_rng(20261201)
    n, G = 1_000_000, 10_000
    g = rng.integers(0, G, n)
    x = rng.normal(size=n)
    eta = -0.3 + 0.6 * x + rng.normal(0, 0.8, G)[g] + rng.normal(0, 0.4, G)[g] * x
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    with open(path, "w") as fh:
        fh.write("y,x,g\n")
        np.savetxt(fh, np.column_stack([y, x, g]), fmt=["%d", "%.6f", "%d"], delimiter=",")


def timed(cmd, env=None) -> tuple[float, float]:
    """(wall s, CPU s user + system) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def time_lmm(case) -> tuple[float, float]:
    path, formula, extra, _ = CASES[case]
    return timed([LMM, "fit", str(path), formula, "--family", "binomial", *extra],
                 env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})


def time_glmer(case) -> tuple[float, float]:
    path, formula, _, factor = CASES[case]
    script = (f'suppressMessages(library(lme4)); d <- read.csv("{path}", stringsAsFactors = TRUE); '
              f'd${factor} <- factor(d${factor}); m <- glmer({formula}, d, binomial)')
    return timed(["Rscript", "-e", script])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", action="store_true")
    ap.add_argument("--glmer", action="store_true")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp"), help="where the --large data is written")
    ap.add_argument("--source", action="store_true", help="do not byte-compile lmmcli before timing")
    args = ap.parse_args()
    if not args.source:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "lmmcli")], check=True)
    cases = ["verbagg"] + (["binary_1e6"] if args.large else [])
    if args.large:
        make_large(args.data_dir)
    for case in cases:
        wall, cpu = time_lmm(case)
        line = f"{case}: lmm {wall:.2f} s wall, {cpu:.2f} s CPU"
        if args.glmer:
            wall_r, cpu_r = time_glmer(case)
            line += f"; glmer {wall_r:.2f} s wall, {cpu_r:.2f} s CPU; CPU ratio {cpu_r / cpu:.1f}x"
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
