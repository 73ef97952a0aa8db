"""Shared fixtures: the lme4 reference cases copied from ../shared/reference (lme4 1.1-31 + lmerTest 3.1-3)."""

from __future__ import annotations

import os

# one BLAS thread, as `lmm` itself runs (cli.main): on a shared machine threads only contend
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

REF = Path(__file__).parent / "reference"


def load_cases() -> list[dict]:
    """Rows of tests/reference/cases.tsv with the expected JSON attached as 'expected'."""
    with open(REF / "cases.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    for row in rows:
        row["expected"] = json.loads((REF / "expected" / f"{row['id']}.json").read_text())
        row["reml"] = row["reml"].upper() == "TRUE"
        row["factors"] = tuple(f for f in (row.get("factors") or "").split(",") if f)
        row["path"] = REF / row["csv"]
    return rows


CASES = load_cases()
CASE_IDS = [c["id"] for c in CASES]


@pytest.fixture(scope="session")
def cases() -> dict:
    return {c["id"]: c for c in CASES}


def read_case_data(case) -> pd.DataFrame:
    return pd.read_csv(case["path"])


@pytest.fixture(scope="session")
def sleepstudy() -> pd.DataFrame:
    return pd.read_csv(REF / "data" / "sleepstudy.csv")


@pytest.fixture(scope="session")
def fits(cases) -> dict:
    """Each reference case fitted once for the session, by id (tests read these fits, never change them)."""
    from lmmcli.fit import fit

    return {cid: fit(c["formula"], read_case_data(c), reml=c["reml"], factors=c["factors"]) for cid, c in cases.items()}
