"""Scale benchmarks (`make bench-scale`): --engine duckdb/spark against memory on generated Parquet.

Usage: python bench/scale.py [--cases NAME ...] [--scratch DIR] [--keep]
Cases (see CASES): slope_1e7 (duckdb vs memory, 1e5 groups), slope_1e8 (1e6 groups), slope_1e9,
movielens (crossed 2.7e7 rows, 2.7e5 users x 1.3e4 items), spark_1e6 (spark vs duckdb).
Data are generated with a fixed seed, in parts, under --scratch (default /work/scratch-scale or
$LMM_SCRATCH), and deleted afterwards unless --keep. Each fit is one `lmm fit ... -f json` child
process: its wall time and peak RSS (os.wait4) are recorded, with the objective and estimates.
Results: bench/results/scale.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
LMM = str(VENV_BIN / "lmm") if (VENV_BIN / "lmm").exists() else "lmm"
SEED = 20261201
CHUNK = 5_000_000
SLOPE = "y ~ x + (x|g)"
CROSSED = "rating ~ 1 + (1|user) + (1|item)"


def slope_chunk(rng, n: int, ng: int, b: np.ndarray):
    g = rng.integers(0, ng, size=n)
    x = rng.standard_normal(n)
    y = 2.0 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.standard_normal(n)
    return {"g": g, "x": x, "y": y}


def crossed_chunk(rng, n: int, nu: int, ni: int, bu, bi):
    user = rng.integers(0, nu, size=n)
    item = np.minimum(rng.zipf(1.3, size=n) - 1, ni - 1)        # popular items, as in MovieLens
    rating = np.clip(np.round(3.5 + bu[user] + bi[item] + rng.standard_normal(n)), 1, 5)
    return {"user": user, "item": item, "rating": rating}


def generate(kind: str, rows: int, groups, out: Path, single: bool = False) -> Path:
    """Parquet parts (or one file with row groups) of `rows` generated rows; returns the path to fit."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = out / "all.parquet" if single else out
    if any(out.glob("*.parquet")):          # kept from an earlier run (--keep): the same seed, the same rows
        return target
    rng = np.random.default_rng(SEED + rows)
    if kind == "slope":
        b = rng.multivariate_normal([0, 0], [[1.0, 0.15], [0.15, 0.25]], size=groups)
    else:
        bu, bi = 0.5 * rng.standard_normal(groups[0]), 0.7 * rng.standard_normal(groups[1])
    out.mkdir(parents=True, exist_ok=True)
    writer, done, part = None, 0, 0
    while done < rows:
        n = min(CHUNK, rows - done)
        cols = slope_chunk(rng, n, groups, b) if kind == "slope" else crossed_chunk(rng, n, *groups, bu, bi)
        table = pa.table(cols)
        if single:
            writer = writer or pq.ParquetWriter(target, table.schema)
            writer.write_table(table, row_group_size=1 << 20)
        else:
            pq.write_table(table, out / f"part-{part:05d}.parquet", row_group_size=1 << 20)
        done, part = done + n, part + 1
    if writer:
        writer.close()
    return target


def run_fit(data: Path, formula: str, engine: str, extra=(), as_json: bool = True) -> dict:
    """One `lmm fit DATA FORMULA --engine ENGINE` (JSON, or the table when as_json is False: with 1e6
    levels the JSON's random-effects list is most of the time and memory): wall s, peak MB, objective,
    estimates."""
    fmt = ["-f", "json", "--df", "none"] if as_json else []
    cmd = [LMM, "fit", str(data), formula, "--engine", engine, *fmt, *extra]
    with tempfile.TemporaryFile(mode="w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err.seek(0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            return {"engine": engine, "error": err.read()[-1500:], "wall_s": wall, "peak_mb": usage.ru_maxrss / 1024}
    if not as_json:
        line = next(l for l in out.splitlines() if l.startswith(("REML criterion", "AIC")))
        return {"engine": engine, "wall_s": wall, "peak_mb": usage.ru_maxrss / 1024.0,
                "objective": float(line.split(":")[1]) if ":" in line else None, "summary": out}
    r = json.loads(out)
    return {"engine": r.get("engine"), "wall_s": wall, "peak_mb": usage.ru_maxrss / 1024.0,
            "objective": r["reml_criterion"] if r["reml_criterion"] is not None else r["deviance"],
            "beta": [fe["estimate"] for fe in r["fixed_effects"]], "theta": r["theta"], "sigma": r["sigma"],
            "nobs": r["nobs"], "ngroups": r["ngroups"]}


def rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def compare(a: dict, b: dict) -> dict:
    if "error" in a or "error" in b:
        return {}
    return {"objective_rel": rel(a["objective"], b["objective"]), "beta_rel": rel(a["beta"], b["beta"]),
            "theta_rel": rel(a["theta"], b["theta"])}


CASES = {
    # name: (kind, rows, groups, engines, formula, single file?, targets)
    "slope_1e7": ("slope", 10**7, 10**5, ["duckdb", "memory"], SLOPE, True, "same estimates 1e-10; duckdb peak <= 500 MB"),
    "spark_1e6": ("slope", 10**6, 10**4, ["spark", "duckdb"], SLOPE, False, "spark = duckdb to 1e-10"),
    "slope_1e8": ("slope", 10**8, 10**6, ["duckdb"], SLOPE, False, "<= 90 s, <= 1.5 GB"),
    "movielens": ("crossed", 27 * 10**6, (270_000, 13_000), ["duckdb"], CROSSED, False, "exact REML <= 15 min, <= 8 GB"),
    "slope_1e9": ("slope", 10**9, 10**6, ["duckdb"], SLOPE, False, "<= 15 min, <= 4 GB"),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", default=["slope_1e7", "spark_1e6", "slope_1e8"])
    ap.add_argument("--scratch", default=os.environ.get("LMM_SCRATCH", "/work/scratch-scale"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    results = []
    for name in args.cases:
        kind, rows, groups, engines, formula, single, target = CASES[name]
        where = Path(args.scratch) / name
        t0 = time.perf_counter()
        data = generate(kind, rows, groups, where, single)
        gen_s = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in where.rglob("*.parquet")) / 1e9
        runs = [run_fit(data, formula, e, ["--threads", str(args.threads)] if e == "duckdb" else [],
                        as_json=rows <= 10**7) for e in engines]
        row = {"case": name, "rows": rows, "groups": groups, "formula": formula, "parquet_gb": size,
               "generate_s": gen_s, "target": target, "runs": runs}
        if len(runs) == 2:
            row["agreement"] = compare(runs[0], runs[1])
        results.append(row)
        print(json.dumps(row, indent=1), flush=True)
        if not args.keep:
            shutil.rmtree(where, ignore_errors=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "scale.json").write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0


def table(results) -> str:
    lines = ["| case | rows | Parquet GB | engine | wall s | peak MB | objective | agreement (rel.) | target |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        agree = r.get("agreement") or {}
        a = ", ".join(f"{k} {v:.1e}" for k, v in agree.items())
        for run in r["runs"]:
            obj = f"{run['objective']:.6f}" if "objective" in run else "error: " + run["error"].splitlines()[-1][:80]
            lines.append(f"| {r['case']} | {r['rows']:.0e} | {r['parquet_gb']:.2f} | {run['engine']} | "
                         f"{run['wall_s']:.1f} | {run['peak_mb']:.0f} | {obj} | {a} | {r['target']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
