"""lmm benchmark suite (`make bench`): phase timings, whole-process wall time and peak memory.

Usage: python bench/run.py [--large] [--repeat N] [--only NAME ...]
  --large     also run the 10-million-row case (a 300 MB CSV, ~1 minute more)
  --repeat N  runs per measurement, the minimum is reported (default 3; the machine is shared)
Data are generated once with a fixed seed into bench/results/data/ (git-ignored); results go to
bench/results/bench.md and bench/results/bench.json, and the table is printed.

Phase timings come from bench/phases.py run in a fresh process per case; whole-process time is
time.perf_counter() around subprocess.run of `lmm fit FILE FORMULA`; peak memory is that child's
ru_maxrss (os.wait4 gives each child's own resource usage).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

import gen  # noqa: E402
from gen import INSTEVAL, LMM, SLEEP  # noqa: E402

SLOPE = "y ~ x + z + (x|g)"

# name, data (generated name or a path), formula, target notes (seconds / MB), lme4's time if known
CASES = [
    ("sleepstudy", SLEEP, "Reaction ~ Days + (Days|Subject)", {"fit_s": 0.005, "wall_s": 0.5}, "0.024 s fit, 3.4 s Rscript"),
    ("slope_1e4", "slope_1e4", SLOPE, {}, ""),
    ("slope_1e5", "slope_1e5", SLOPE, {}, ""),
    ("slope_1e6", "slope_1e6", SLOPE, {"fit_s": 0.3, "rfs_s": 1.5, "peak_mb": 600}, "47-57 s fit (+10 s read), 776 MB"),
    ("insteval", "insteval", INSTEVAL, {"fit_s": 1.5}, "31 s fit"),
    ("slope_1e7", "slope_1e7", SLOPE, {"wall_s": 15.0, "peak_mb": 4096}, "not attempted"),
]


def data_path(spec) -> Path:
    """The CSV for a case: a file as given, or generated synthetic data."""
    return spec if isinstance(spec, Path) else gen.ensure(spec, RESULTS / "data")


def run_child(cmd: list[str]) -> tuple[float, float, int, str, str]:
    """(wall seconds, peak RSS MB, exit code, stdout, stderr) of one child process."""
    with tempfile.TemporaryFile(mode="w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        err.seek(0)
        return wall, usage.ru_maxrss / 1024.0, proc.returncode, out, err.read()


def best(cmd: list[str], repeat: int) -> dict:
    """Minimum wall time and peak memory over repeated runs."""
    walls, peaks, out = [], [], ""
    for _ in range(repeat):
        wall, peak, code, out, err = run_child(cmd)
        if code != 0:
            raise SystemExit(f"bench: command failed with exit {code}: {' '.join(cmd)}\n{err[-2000:]}")
        walls.append(wall)
        peaks.append(peak)
    return {"wall_s": min(walls), "peak_mb": min(peaks), "stdout": out}


def run_case(name, spec, formula, repeat: int) -> dict:
    """Phases in a fresh process, then the whole `lmm fit` command."""
    path = data_path(spec)
    big = path.stat().st_size > 100e6
    reps = 1 if big else repeat
    ph = best([sys.executable, str(HERE / "phases.py"), str(path), formula, "--repeat", str(reps)], 1)
    phases = json.loads(ph["stdout"])
    whole = best([LMM, "fit", str(path), formula], reps)
    phases["rfs_s"] = sum(phases[k] for k in ("read_s", "design_s", "fit_s", "result_s", "render_s"))
    return {"case": name, "file": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
            "formula": formula, "file_mb": path.stat().st_size / 1e6, **phases,
            "wall_s": whole["wall_s"], "peak_mb": whole["peak_mb"]}


def startup(repeat: int) -> dict:
    """`lmm --help` wall time, and what the sleepstudy fit spends importing (python -X importtime)."""
    return {"help_s": best([LMM, "--help"], max(repeat, 5))["wall_s"], "imports_s": import_costs()}


def import_costs(top: int = 8) -> dict:
    """Cumulative import time of the top-level modules `lmm fit` loads on sleepstudy (seconds)."""
    cmd = [sys.executable, "-X", "importtime", "-m", "lmmcli.cli", "fit", str(SLEEP), CASES[0][2]]
    err = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ)).stderr
    costs = {}
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  "):
            costs[parts[2].strip()] = int(parts[1]) / 1e6
    return dict(sorted(costs.items(), key=lambda kv: -kv[1])[:top])


COLUMNS = [("case", "case", "{}"), ("rows", "rows", "{:,}"), ("levels", "levels", "{}"),
           ("read s", "read_s", "{:.3f}"), ("design s", "design_s", "{:.3f}"), ("setup s", "setup_s", "{:.3f}"),
           ("optimise s", "optimise_s", "{:.3f}"), ("evals", "evaluations", "{}"),
           ("ms/eval", "per_eval_ms", "{:.3f}"), ("fit s", "fit_s", "{:.3f}"), ("result s", "result_s", "{:.3f}"),
           ("read+fit+summary s", "rfs_s", "{:.3f}"),
           ("engine import s", "import_s", "{:.3f}"), ("whole process s", "wall_s", "{:.2f}"),
           ("peak MB", "peak_mb", "{:.0f}")]


def markdown(rows: list[dict], extra: dict) -> str:
    """The results as a markdown table plus target notes."""
    head = "| " + " | ".join(c for c, _, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(COLUMNS)]
    for r in rows:
        r = dict(r, levels=" x ".join(str(v) for v in r["groups"].values()))
        lines.append("| " + " | ".join(f.format(r[k]) for _, k, f in COLUMNS) + " |")
    lines.append("")
    lines.append(f"`lmm --help`: {extra['help_s']:.3f} s (target 0.2 s)")
    lines.append("")
    lines.append("Imports of `lmm fit sleepstudy` (cumulative s, top-level modules): " + ", ".join(
        f"{k} {v:.3f}" for k, v in extra["imports_s"].items()))
    lines.append("")
    lines.append("fit s = setup (cross-products) + optimise + solve at the optimum; read+fit+summary = read + "
                 "design + fit + result + rendering, in process; whole process = `lmm fit FILE FORMULA` start "
                 "to printed summary (start-up, Satterthwaite df included); all times are minima over runs.")
    lines.append("")
    lines.extend(target_lines(rows))
    return "\n".join(lines) + "\n"


def target_lines(rows: list[dict]) -> list[str]:
    """One line per target: met or missed, with the measured number."""
    out = ["| case | target | measured | met | lme4 |", "|---|---|---|---|---|"]
    for r in rows:
        case = next(c for c in CASES if c[0] == r["case"])
        for key, limit in case[3].items():
            unit = "MB" if key == "peak_mb" else "s"
            out.append(f"| {r['case']} | {key} <= {limit:g} {unit} | {r[key]:.3f} {unit} | "
                       f"{'yes' if r[key] <= limit else 'NO'} | {case[4]} |")
    return out


def merged(rows: list[dict]) -> list[dict]:
    """With --only: the new rows in place of the same cases' rows of the last bench.json, in CASES order."""
    try:
        old = {r["case"]: r for r in json.loads((RESULTS / "bench.json").read_text())["cases"]}
    except (OSError, ValueError, KeyError):
        old = {}
    old.update({r["case"]: r for r in rows})
    return [old[c[0]] for c in CASES if c[0] in old]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large", action="store_true", help="include the 10-million-row case")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", help="run only these cases")
    args = ap.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    chosen = [c for c in CASES if (args.large or c[0] != "slope_1e7") and (not args.only or c[0] in args.only)]
    rows = []
    for name, spec, formula, _, _ in chosen:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        rows.append(run_case(name, spec, formula, args.repeat))
    extra = startup(args.repeat)
    rows = merged(rows) if args.only else rows
    text = markdown(rows, extra)
    (RESULTS / "bench.md").write_text(text)
    (RESULTS / "bench.json").write_text(json.dumps({"cases": rows, **extra, "cpu_count": os.cpu_count(),
                                                     "load_avg": os.getloadavg()}, indent=2))
    print(text)


if __name__ == "__main__":
    main()
