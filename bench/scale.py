"""Scale benchmarks (`make bench-scale`, or `make bench-scale CASES="slope_1e8 movielens"`).

Usage: python bench/scale.py [--cases NAME ...] [--scratch DIR] [--keep] [--threads N] [--lock PATH]
Cases (see CASES): slope_1e7 (duckdb vs memory, 1e5 groups), spark_1e6 (spark vs duckdb),
slope_1e8 (1e8 rows, 1e6 groups), movielens (crossed: 2.7e7 rows, 2.7e5 users x 1.3e4 items),
slope_1e9 (1e9 rows in 200 parts, ~21 GB: check the free disk first). Default: the first three.
Data are generated with a fixed seed, in Parquet parts, under --scratch (default $LMM_SCRATCH or
/work/scratch-scale), and deleted afterwards unless --keep. Each fit is one `lmm fit` child process:
its wall time, CPU time (user + system) and peak RSS come from os.wait4, with the load average
before and after; generation and fits hold the shared heavy-run lock (--lock, flock) while they run.
Results: bench/results/scale.json and a markdown table (case, engine, wall, CPU, peak, result,
target met) on stdout.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
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


def movielens_pairs(rng, rows: int, nu: int, ni: int):
    """(user, item) pairs shaped like MovieLens: each pair at most once, sorted by user.

    Ratings per user: 20 + a lognormal share (sigma 1.1: median ~65, mean ~100, a long right tail
    up to half the items), as MovieLens keeps users with >= 20 ratings. Item popularity: weight
    (rank + 20)^-1.3 over a random permutation of the item ids, so the top item is rated by about
    half the users and the rarest by ~100. Each pair occurs at most once: a light user's items are
    drawn with replacement and its duplicates drawn again; a heavy one's (over ni / 20 ratings) are
    drawn without replacement at once (the largest log(U) / weight, Efraimidis & Spirakis).
    """
    extra = rng.lognormal(0.0, 1.1, size=nu)
    n_u = np.minimum(20 + np.floor(extra * (rows - 20 * nu) / extra.sum()), ni // 2).astype(np.int64)
    n_u = np.minimum(n_u + np.bincount(rng.integers(0, nu, size=rows - int(n_u.sum())), minlength=nu), ni // 2)
    weight = ((np.arange(ni) + 20.0) ** -1.3)[rng.permutation(ni)]
    cum = np.cumsum(weight) / weight.sum()
    heavy = np.flatnonzero(n_u > ni // 20)
    parts = []
    for lo in range(0, len(heavy), 256):
        who = heavy[lo:lo + 256]
        order = np.argsort(np.log(rng.random((len(who), ni))) / weight, axis=1)[:, ::-1]
        take = np.arange(ni)[None, :] < n_u[who][:, None]
        parts.append(who[:, None].repeat(ni, axis=1)[take] * ni + order[take])
    want = np.where(n_u > ni // 20, 0, n_u)
    keys, short = np.zeros(0, dtype=np.int64), want
    while short.any():
        users = np.repeat(np.arange(nu, dtype=np.int64), short)
        new = np.sort(users * ni + np.minimum(np.searchsorted(cum, rng.random(len(users))), ni - 1))
        keys = np.concatenate([keys, new])
        keys.sort(kind="stable")                    # two sorted runs: a merge (np.unique hashes: 20x slower)
        keys = keys[np.append(True, np.diff(keys) != 0)]
        short = np.maximum(want - np.bincount(keys // ni, minlength=nu), 0)
    keys = np.sort(np.concatenate([keys] + parts))
    return keys // ni, keys % ni


def write_movielens(rng, rows: int, nu: int, ni: int, out: Path) -> None:
    """rating ~ 1 + (1|user) + (1|item) data in Parquet parts of CHUNK rows (ratings 1..5)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    bu, bi = 0.5 * rng.standard_normal(nu), 0.7 * rng.standard_normal(ni)
    user, item = movielens_pairs(rng, rows, nu, ni)
    for part, lo in enumerate(range(0, rows, CHUNK)):
        u, i = user[lo:lo + CHUNK], item[lo:lo + CHUNK]
        rating = np.clip(np.round(3.5 + bu[u] + bi[i] + rng.standard_normal(len(u))), 1, 5)
        pq.write_table(pa.table({"user": u.astype(np.int32), "item": i.astype(np.int32), "rating": rating}),
                       out / f"part-{part:05d}.parquet", row_group_size=1 << 20)


def generate(kind: str, rows: int, groups, out: Path, single: bool = False) -> Path:
    """Parquet parts (or one file with row groups) of `rows` generated rows; returns the path to fit."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = out / "all.parquet" if single else out
    if any(out.glob("*.parquet")):          # kept from an earlier run (--keep): the same seed, the same rows
        return target
    rng = np.random.default_rng(SEED + rows)
    out.mkdir(parents=True, exist_ok=True)
    if kind == "crossed":
        write_movielens(rng, rows, *groups, out)
        return target
    b = rng.multivariate_normal([0, 0], [[1.0, 0.15], [0.15, 0.25]], size=groups)
    writer, done, part = None, 0, 0
    while done < rows:
        n = min(CHUNK, rows - done)
        table = pa.table(slope_chunk(rng, n, groups, b))
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
    levels the JSON's random-effects list is most of the time and memory): wall s, CPU s, peak MB,
    load average, objective, estimates."""
    fmt = ["-f", "json", "--df", "none"] if as_json else []
    cmd = [LMM, "fit", str(data), formula, "--engine", engine, *fmt, *extra]
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryFile(mode="w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err.seek(0)
        code = os.waitstatus_to_exitcode(status)
        run = {"engine": engine, "command": " ".join(cmd), "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
               "peak_mb": usage.ru_maxrss / 1024.0, "load": [round(load0, 1), round(os.getloadavg()[0], 1)]}
        if code != 0:
            return {**run, "error": err.read()[-1500:]}
    if not as_json:
        line = next(l for l in out.splitlines() if l.startswith(("REML criterion", "AIC")))
        return {**run, "objective": float(line.split(":")[1]) if ":" in line else None, "summary": out}
    r = json.loads(out)
    return {**run, "engine": r.get("engine"),
            "objective": r["reml_criterion"] if r["reml_criterion"] is not None else r["deviance"],
            "beta": [fe["estimate"] for fe in r["fixed_effects"]], "theta": r["theta"], "sigma": r["sigma"],
            "nobs": r["nobs"], "ngroups": r["ngroups"], "evaluations": r["optimizer"]["evaluations"],
            "runs": [(x["kind"], x["evaluations"]) for x in r["optimizer"].get("runs", [])],
            "converged": r.get("converged"), "warnings": r.get("warnings")}


@contextmanager
def heavy(lock: str | None):
    """Hold the shared heavy-run lock (flock) for a generation or a fit."""
    if not lock:
        yield
        return
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def compare(a: dict, b: dict) -> dict:
    if "error" in a or "error" in b:
        return {}
    return {"objective_rel": rel(a["objective"], b["objective"]), "beta_rel": rel(a["beta"], b["beta"]),
            "theta_rel": rel(a["theta"], b["theta"])}


def met(case: str, runs: list[dict], agreement: dict) -> str:
    """Whether the case's target is met, in words (wall time on this shared machine, and CPU time)."""
    r = runs[0]
    if "error" in r:
        return "failed"
    if case == "slope_1e7":
        ok = agreement.get("objective_rel", 1.0) <= 1e-10 and r["peak_mb"] <= 500
        return ("met" if ok else "missed") + f" (objective {agreement.get('objective_rel', float('nan')):.1e}, peak {r['peak_mb']:.0f} MB)"
    if case == "spark_1e6":
        return "met" if agreement.get("objective_rel", 1.0) <= 1e-10 else "missed"
    wall, peak = {"slope_1e8": (90, 1536), "movielens": (900, 8192), "slope_1e9": (900, 4096)}[case]
    words = [("wall met" if r["wall_s"] <= wall else "wall missed"), ("CPU met" if r["cpu_s"] <= wall else "CPU missed"),
             ("peak met" if r["peak_mb"] <= peak else "peak missed")]
    return ", ".join(words)


CASES = {
    # name: (kind, rows, groups, engines, formula, single file?, extra lmm options, target)
    "slope_1e7": ("slope", 10**7, 10**5, ["duckdb", "memory"], SLOPE, True, [], "same estimates 1e-10; duckdb peak <= 500 MB"),
    "spark_1e6": ("slope", 10**6, 10**4, ["spark", "duckdb"], SLOPE, False, [], "spark = duckdb to 1e-10"),
    "slope_1e8": ("slope", 10**8, 10**6, ["duckdb"], SLOPE, False, [], "<= 90 s, <= 1.5 GB"),
    "movielens": ("crossed", 27 * 10**6, (270_000, 13_000), ["duckdb"], CROSSED, False, ["--df", "none"],
                  "exact REML <= 15 min, <= 8 GB"),
    "slope_1e9": ("slope", 10**9, 10**6, ["duckdb"], SLOPE, False, [], "<= 15 min, <= 4 GB"),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", default=["slope_1e7", "spark_1e6", "slope_1e8"], choices=list(CASES))
    ap.add_argument("--scratch", default=os.environ.get("LMM_SCRATCH", "/work/scratch-scale"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lock", default="/tmp/lmm_heavy.lock", help="flock file held by each heavy step ('' for none)")
    args = ap.parse_args(argv)
    results = []
    for name in args.cases:
        kind, rows, groups, engines, formula, single, extra, target = CASES[name]
        where = Path(args.scratch) / name
        t0 = time.perf_counter()
        with heavy(args.lock):
            data = generate(kind, rows, groups, where, single)
        gen_s = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in where.rglob("*.parquet")) / 1e9
        runs = []
        for e in engines:
            with heavy(args.lock):
                runs.append(run_fit(data, formula, e, (["--threads", str(args.threads)] if e == "duckdb" else []) + extra,
                                    as_json=rows <= 10**7 or kind == "crossed"))
        row = {"case": name, "rows": rows, "groups": groups, "formula": formula, "parquet_gb": size,
               "generate_s": gen_s, "target": target, "runs": runs}
        if len(runs) == 2:
            row["agreement"] = compare(runs[0], runs[1])
        row["met"] = met(name, runs, row.get("agreement") or {})
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
    lines = ["| case | rows | Parquet GB | engine | wall s | CPU s | peak MB | load | result | target | met |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        agree = r.get("agreement") or {}
        a = ", ".join(f"{k} {v:.1e}" for k, v in agree.items())
        for run in r["runs"]:
            res = (f"objective {run['objective']:.6f}" if "objective" in run
                   else "error: " + run["error"].splitlines()[-1][:80]) + (f"; {a}" if a else "")
            lines.append(f"| {r['case']} | {r['rows']:.0e} | {r['parquet_gb']:.2f} | {run['engine']} | "
                         f"{run['wall_s']:.1f} | {run['cpu_s']:.1f} | {run['peak_mb']:.0f} | "
                         f"{run['load'][0]}-{run['load'][1]} | {res} | {r['target']} | {r['met']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
