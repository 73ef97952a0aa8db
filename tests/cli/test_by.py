"""`lmm fit --by COL`: a report per value and a summary; NDJSON one document per value, CSV rows with `by`."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
from typer.testing import CliRunner

from conftest import REF
from lmmcli.cli import app

runner = CliRunner()
GPA = str(REF.parent.parent / "sample_data" / "gpa.csv")
FORMULA = "gpa ~ occasion + (1|student)"


def run(*args):
    return runner.invoke(app, ["fit", GPA, FORMULA, "--by", "sex", "-j", "1", *args])


def test_table_has_a_report_per_value_then_a_summary():
    res = run()
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    assert out.count("Linear mixed model fit by REML") == 2
    assert out.index("sex = female") < out.index("sex = male") < out.index("Summary by sex")
    summary = out[out.index("Summary by sex"):]
    assert "female" in summary and "male" in summary and "(Intercept)" in summary


def test_ndjson_is_one_document_per_value_with_by():
    docs = [json.loads(line) for line in run("-f", "ndjson").stdout.splitlines()]
    assert [(d["by"], d["by_column"]) for d in docs] == [("female", "sex"), ("male", "sex")]
    alone = json.loads(runner.invoke(app, ["fit", GPA, FORMULA, "-f", "json"]).stdout)
    assert docs[0]["nobs"] + docs[1]["nobs"] == alone["nobs"]


def test_csv_rows_carry_by():
    rows = list(csv.DictReader(io.StringIO(run("-f", "csv").stdout)))
    assert list(rows[0])[:2] == ["by", "effect"]
    assert {r["by"] for r in rows} == {"female", "male"} and len(rows) == 2 * 4


def test_json_holds_every_fit():
    doc = json.loads(run("-f", "json").stdout)
    assert doc["by"] == "sex" and doc["n_missing"] == 0 and len(doc["fits"]) == 2


def test_a_failed_part_is_reported_and_exits_1_after_the_others(tmp_path):
    df = pd.read_csv(GPA)
    df.loc[df.student > 198, "sex"] = "tiny"
    df.loc[df.sex == "tiny", "gpa"] = 3.0
    path = tmp_path / "g.csv"
    df.to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), FORMULA, "--by", "sex", "-f", "ndjson", "-j", "1"])
    assert res.exit_code == 1
    docs = [json.loads(line) for line in res.stdout.splitlines()]
    assert [d["by"] for d in docs] == ["female", "male", "tiny"] and "error" in docs[2]
    assert "error: sex = tiny: " in res.stderr


def test_by_refuses_save_and_jobs_needs_by(tmp_path):
    res = run("--save", str(tmp_path / "m.json"))
    assert res.exit_code == 2 and "--save" in res.stderr
    res = runner.invoke(app, ["fit", GPA, FORMULA, "--jobs", "2"])
    assert res.exit_code == 2 and "--jobs is for --by" in res.stderr


def test_unknown_by_column():
    res = runner.invoke(app, ["fit", GPA, FORMULA, "--by", "sx"])
    assert res.exit_code == 1 and res.stderr.startswith("error: --by column 'sx' is not in gpa.csv")


def test_by_is_refused_with_family_rather_than_ignored():
    res = runner.invoke(app, ["fit", GPA, FORMULA, "--by", "sex", "--family", "poisson"])
    assert res.exit_code == 2 and "--by" in res.stderr and res.stdout == ""


def test_by_with_a_bootstrap_in_the_workers():
    res = runner.invoke(app, ["fit", GPA, FORMULA, "--by", "sex", "--ci", "boot", "--nsim", "20", "--seed", "1",
                              "-f", "csv", "-j", "2"])
    assert res.exit_code == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert all(r["conf_low"] != "" for r in rows if r["effect"] == "fixed")
