"""`make bench`: issue 17's table -- what users run, whole process, lmm beside lme4 in the same run.

Usage: python bench/table.py [--repeat N] [--only CASE ...] [--no-r] [--r-timeout S]

Each case runs `lmm fit FILE FORMULA` (default output: lme4's summary with lmerTest's Satterthwaite df;
or --format json) in a fresh process, N times (default 3), and reports the minimum wall time (the
machine may be shared). When Rscript with lme4 and lmerTest is installed, the same file and formula
run once in R in the same session (read.csv, lmer, print(summary) -- lmerTest's for every case but
the 5,000-level factor, where lmerTest's df for 5,000 coefficients would take hours and plain lme4
is timed) and the table shows R's time and the ratio; without R that column says so. Data are made
once with fixed seeds (bench/gen.py) into bench/results/data/ (git-ignored); "insteval" is lme4's
own InstEval when R can export it, else gen.py's InstEval-shaped design. Results are also written to
bench/results/table.md and table.json.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DATA = RESULTS / "data"
sys.path.insert(0, str(HERE))

import gen  # noqa: E402
from gen import INSTEVAL, LMM, SLEEP  # noqa: E402


# name, label, data, formula, lmm options, target seconds, target ratio to lme4, lme4 with lmerTest
CASES = [
    ("sleepstudy", "sleepstudy `(Days|Subject)`, lmerTest summary", SLEEP,
     "Reaction ~ Days + (Days|Subject)", [], 0.35, None, True),
    ("text_1e6", "1e6 rows, 10k text ids, full precision, `(x|g)`", "text_1e6",
     "y ~ x + z + (x|g)", [], 1.2, 50.0, True),
    ("text_1e6_json", "the same with `--format json`", "text_1e6",
     "y ~ x + z + (x|g)", ["--format", "json"], 1.4, None, False),
    ("insteval", "InstEval (73k rows; 2,972 x 1,128 crossed + dept:service)", "insteval",
     INSTEVAL, [], 1.2, 25.0, True),
    ("wide", "a fixed factor with 5,000 levels, 15k rows", "wide",
     "y ~ f + x + (1|g)", [], 10.0, None, False),
]

R_SCRIPT = """
args <- commandArgs(TRUE)
suppressMessages({library(lme4); if (args[3] == "TRUE") library(lmerTest)})
d <- read.csv(args[1], stringsAsFactors = TRUE)
for (v in c("s", "d", "g")) if (v %in% names(d)) d[[v]] <- factor(d[[v]])
m <- lmer(as.formula(args[2]), data = d)
invisible(capture.output(print(summary(m))))
"""


def have_r() -> str | None:
    """Why R cannot be used, or None when Rscript with lme4 and lmerTest is there."""
    if shutil.which("Rscript") is None:
        return "Rscript is not installed"
    probe = subprocess.run(["Rscript", "-e", "library(lme4); library(lmerTest)"], capture_output=True, text=True)
    return None if probe.returncode == 0 else "R has no lme4/lmerTest"


def data_path(spec, use_r: bool) -> Path:
    if isinstance(spec, Path):
        return spec
    if spec == "insteval" and (use_r or shutil.which("Rscript")):     # lme4's own data also under --no-r
        path = DATA / "insteval_lme4.csv"
        if not path.exists():
            DATA.mkdir(parents=True, exist_ok=True)
            code = ("library(lme4); d <- InstEval; write.csv(data.frame(y = d$y, service = d$service, "
                    f"s = d$s, d = d$d, dept = d$dept), '{path}', row.names = FALSE)")
            if subprocess.run(["Rscript", "-e", code], capture_output=True).returncode == 0:
                return path
        else:
            return path
    return gen.ensure(spec, DATA)


def timed(cmd, timeout=None) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return float("inf"), -1, "timed out"
    return time.perf_counter() - t0, proc.returncode, proc.stderr


def timed_lmm(cmd) -> tuple[float, float, int, str]:
    """(wall s, CPU s = user + system of the child, exit code, stderr) of one lmm run."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, proc.returncode, err


def run_case(case, repeat: int, use_r: bool, r_timeout: float) -> dict:
    name, label, spec, formula, opts, target, ratio_target, lmertest = case
    path = data_path(spec, use_r)
    times, cpus, code, err = [], [], 0, ""
    for _ in range(repeat):
        t, cpu, code, err = timed_lmm([LMM, "fit", str(path), formula, *opts, "-o", str(RESULTS / f"{name}.out")])
        times.append(t)
        cpus.append(cpu)
    out = {"case": name, "label": label, "data": path.name, "lmm_s": min(times), "lmm_all_s": times,
           "lmm_cpu_s": min(cpus), "load": os.getloadavg()[0],
           "exit": code, "target_s": target, "ratio_target": ratio_target}
    if code not in (0, 3):
        out["error"] = err.strip().splitlines()[-1] if err.strip() else f"exit {code}"
    if use_r and not opts:
        script = RESULTS / "bench_lme4.R"
        script.write_text(R_SCRIPT)
        t, rc, rerr = timed(["Rscript", str(script), str(path), formula, "TRUE" if lmertest else "FALSE"],
                            timeout=r_timeout)
        out["lme4_s"] = t if rc == 0 else None
        out["lme4_note"] = "" if rc == 0 else ("timed out" if rc == -1 else rerr.strip()[-200:])
        out["lme4_what"] = "lme4 + lmerTest" if lmertest else "lme4 (no lmerTest df)"
    return out


def fmt_row(r: dict, r_missing: str | None) -> str:
    lmm = f"{r['lmm_s']:.2f} s ({r['lmm_cpu_s']:.2f} s CPU)" + (f" ({r['error']})" if r.get("error") else "")
    if "lme4_s" in r and r["lme4_s"]:
        lme4 = f"{r['lme4_s']:.2f} s ({r['lme4_what']})"
        ratio = f"{r['lme4_s'] / r['lmm_s']:.0f}x"
    elif "lme4_s" in r:
        lme4, ratio = f"failed: {r['lme4_note']}", "-"
    else:
        lme4, ratio = ("-" if r_missing is None else f"skipped: {r_missing}"), "-"
    target = f"<= {r['target_s']:g} s" + (f", >= {r['ratio_target']:g}x lme4" if r["ratio_target"] else "")
    met = r["lmm_s"] <= r["target_s"] and not r.get("error")
    if r["ratio_target"] and "lme4_s" in r and r["lme4_s"]:
        met = met and r["lme4_s"] / r["lmm_s"] >= r["ratio_target"]
    label = r["label"].replace("|", "\\|")
    return f"| {label} | {lme4} | {lmm} | {ratio} | {target} | {'yes' if met else 'no'} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--no-r", action="store_true", help="do not run lme4")
    ap.add_argument("--r-timeout", type=float, default=600.0)
    args = ap.parse_args()
    r_missing = "--no-r" if args.no_r else have_r()
    use_r = r_missing is None
    RESULTS.mkdir(parents=True, exist_ok=True)
    # lmm's modules as bytecode, as an installed package has them (pip compiles at install time): with
    # PYTHONDONTWRITEBYTECODE set, as on some machines, every run would otherwise compile ~50 modules (~50 ms)
    compileall.compile_dir(ROOT / "lmmcli", quiet=1)
    rows = []
    for case in CASES:
        if args.only and case[0] not in args.only:
            continue
        rows.append(run_case(case, args.repeat, use_r, args.r_timeout))
        print(f"  {case[0]}: lmm {rows[-1]['lmm_s']:.2f} s" +
              (f", lme4 {rows[-1]['lme4_s']:.2f} s" if rows[-1].get("lme4_s") else ""), file=sys.stderr)
    head = ["| case | lme4 (same run) | lmm (min of %d, whole process; CPU) | ratio | target | met |" % args.repeat,
            "|---|---|---|---|---|---|"]
    table = "\n".join(head + [fmt_row(r, r_missing) for r in rows])
    table += f"\n\nLoad average {min(r['load'] for r in rows):.1f}-{max(r['load'] for r in rows):.1f} during the lmm runs."
    if r_missing:
        table += f"\n\nlme4 skipped: {r_missing}."
    print(table)
    (RESULTS / "table.md").write_text(table + "\n")
    (RESULTS / "table.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
