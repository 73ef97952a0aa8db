"""Synthetic benchmark data, generated with a fixed seed (no downloads).

slope_N:   y ~ x + z + (x|g) with N rows and N/100 groups (integer group ids).
text_N:    the same model with text group ids ("g4267") and full-precision floats, as users' files are.
wide:      a fixed factor with 5,000 levels on 15,000 rows: y ~ f + x + (1|g), 100 groups.
insteval:  InstEval-shaped crossed design: 73,421 ratings y (1..5) by ~2,972 students s of
           ~1,128 lecturers d; each lecturer belongs to one of 14 departments (dept), service is 0/1;
           model y ~ service + (1|s) + (1|d) + (1|dept:service) as in lme4's InstEval example.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SEED = 20240606

# what every bench script runs and on what (the venv's lmm when the script runs from it)
ROOT = Path(__file__).resolve().parent.parent
_VENV_BIN = Path(sys.executable).parent
LMM = str(_VENV_BIN / "lmm") if (_VENV_BIN / "lmm").exists() else "lmm"
SLEEP = ROOT / "tests" / "reference" / "data" / "sleepstudy.csv"
INSTEVAL = "y ~ service + (1|s) + (1|d) + (1|dept:service)"


def slope_frame(n: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """Random intercept and slope data: n rows, n/100 groups, sd(intercept)=1, sd(slope)=0.5, cor 0.3."""
    rng = np.random.default_rng(seed + n)
    ng = max(n // 100, 2)
    g = rng.integers(0, ng, size=n)
    g[:ng] = np.arange(ng)  # every group present
    x = rng.standard_normal(n)
    z = rng.standard_normal(n)
    cov = np.array([[1.0, 0.15], [0.15, 0.25]])
    b = rng.multivariate_normal([0.0, 0.0], cov, size=ng)
    y = 2.0 + 0.5 * x - 0.3 * z + b[g, 0] + b[g, 1] * x + rng.standard_normal(n)
    return {"y": np.round(y, 5), "x": np.round(x, 5), "z": np.round(z, 5), "g": g}


def text_frame(n: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """slope_frame with text group ids and unrounded numbers (17 significant digits in the CSV)."""
    rng = np.random.default_rng(seed + n + 1)
    ng = max(n // 100, 2)
    g = rng.integers(0, ng, size=n)
    g[:ng] = np.arange(ng)
    x, z = rng.standard_normal(n), rng.standard_normal(n)
    b = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.15], [0.15, 0.25]], size=ng)
    y = 2.0 + 0.5 * x - 0.3 * z + b[g, 0] + b[g, 1] * x + rng.standard_normal(n)
    return {"y": y, "x": x, "z": z, "g": np.array([f"g{k}" for k in range(ng)], dtype=object)[g]}


def wide_frame(seed: int = SEED) -> dict[str, np.ndarray]:
    """A 5,000-level fixed factor f (3 rows a level on average) and 100 groups g, 15,000 rows."""
    rng = np.random.default_rng(seed + 5000)
    n, nf, ng = 15000, 5000, 100
    f = rng.integers(0, nf, size=n)
    f[:nf] = np.arange(nf)
    g = rng.integers(0, ng, size=n)
    x = rng.standard_normal(n)
    y = rng.standard_normal(nf)[f] + 0.5 * x + rng.standard_normal(ng)[g] + rng.standard_normal(n)
    return {"y": y, "x": x, "f": np.array([f"f{k}" for k in range(nf)], dtype=object)[f],
            "g": np.array([f"g{k}" for k in range(ng)], dtype=object)[g]}


def insteval_frame(seed: int = SEED) -> dict[str, np.ndarray]:
    """Crossed students x lecturers, lecturers nested in 14 departments (InstEval's shape)."""
    rng = np.random.default_rng(seed)
    n, ns, nd, ndept = 73421, 2972, 1128, 14
    s = rng.integers(0, ns, size=n)
    s[:ns] = np.arange(ns)
    d = rng.integers(0, nd, size=n)
    d[ns:ns + nd] = np.arange(nd)
    dept_of_d = rng.integers(0, ndept, size=nd)
    dept_of_d[:ndept] = np.arange(ndept)
    dept = dept_of_d[d]
    service = rng.integers(0, 2, size=n)
    eta = (3.2 + 0.3 * rng.standard_normal(ns)[s] + 0.5 * rng.standard_normal(nd)[d]
           + 0.1 * rng.standard_normal((ndept, 2))[dept, service] - 0.07 * service)
    y = np.clip(np.round(eta + 1.2 * rng.standard_normal(n)), 1, 5).astype(np.int64)
    return {"y": y, "service": service, "s": s, "d": d, "dept": np.array([f"D{k:02d}" for k in range(ndept)])[dept]}


def write_csv(cols: dict[str, np.ndarray], path: Path) -> None:
    """Write columns as CSV with pyarrow (fast enough for 10 million rows)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    tmp = path.with_suffix(".tmp")
    pacsv.write_csv(pa.table(cols), tmp, pacsv.WriteOptions(quoting_style="needed"))
    tmp.replace(path)


def ensure(name: str, directory: Path) -> Path:
    """The CSV for a case, generated once and kept (same seed, same bytes)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.csv"
    if not path.exists():
        if name == "insteval":
            write_csv(insteval_frame(), path)
        elif name == "wide":
            write_csv(wide_frame(), path)
        elif name.startswith("text_"):
            write_csv(text_frame(int(float(name.split("_")[1]))), path)
        else:
            write_csv(slope_frame(int(float(name.split("_")[1]))), path)
    return path
