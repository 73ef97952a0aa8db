"""The glmer reference cases of tests/reference/glmm (see its README): cases, expected numbers, fits."""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

REF = Path(__file__).resolve().parent.parent / "reference" / "glmm"


def load_cases() -> dict[str, dict]:
    with open(REF / "cases.tsv", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    out = {}
    for row in rows:
        row["expected"] = json.loads((REF / "expected" / f"{row['id']}.json").read_text())
        row["factors"] = tuple(f for f in row["factors"].split(",") if f)
        row["nagq"] = int(row["nagq"])
        row["weights"] = row["weights"] or None
        out[row["id"]] = row
    return out


CASES = load_cases()


@functools.lru_cache(maxsize=None)
def fitted(case_id: str):
    """The fit of one case (cached: several tests look at the same fit)."""
    from lmmcli import glmm
    from lmmcli.io.read import read_table

    c = CASES[case_id]
    df = read_table(str(REF / c["csv"]))
    return glmm.glmer(c["formula"], df, c["family"], c["link"], c["nagq"], c["weights"], c["factors"])
