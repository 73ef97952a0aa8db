"""Every command's output in every format; the -o extension chooses the format unless --format says otherwise;
a contradiction is refused; `-o -` is standard output; fit's CSV is broom.mixed's tidy() rows."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from conftest import REF
from lmmcli.cli import app

runner = CliRunner()
SLEEP = str(REF / "data" / "sleepstudy.csv")
F = "Reaction ~ Days + (Days|Subject)"
COMMANDS = {
    "fit": ["fit", SLEEP, F],
    "compare": ["compare", SLEEP, "Reaction ~ Days + (1|Subject)", F],
    "ranef": ["ranef", SLEEP, F],
    "coef": ["coef", SLEEP, F],
    "predict": ["predict", SLEEP, F],
    "simulate": ["simulate", SLEEP, F, "--nsim", "2", "--seed", "1"],
    "simulate-spec": ["simulate", "--groups", "3", "--per-group", "2", "--sd-group", "1", "--sd-resid", "1",
                      "--seed", "1"],
}
N_ROWS = {"fit": 6, "compare": 2, "ranef": 36, "coef": 36, "predict": 180, "simulate": 180, "simulate-spec": 6}


def run(*args):
    return runner.invoke(app, list(args))


def parsed(fmt: str, out: str | bytes):
    """The rows (or the document) of an output in a format, parsed back."""
    if fmt == "json":
        return json.loads(out)
    if fmt == "ndjson":
        return [json.loads(line) for line in out.splitlines()]
    if fmt in ("csv", "tsv"):
        return list(csv.DictReader(io.StringIO(out), delimiter="," if fmt == "csv" else "\t"))
    if fmt == "markdown":
        lines = [ln for ln in out.splitlines() if ln.startswith("|")]
        assert set(lines[1]) <= {"|", "-"}
        return lines[2:]
    if fmt == "html":
        assert out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")
        return out.count("<tr>") - 1
    raise AssertionError(fmt)


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("fmt", ["csv", "tsv", "markdown", "html", "ndjson"])
def test_row_formats_have_one_row_per_result_row(name, fmt):
    res = run(*COMMANDS[name], "--format", fmt)
    assert res.exit_code == 0, res.stderr
    rows = parsed(fmt, res.stdout)
    n = N_ROWS[name] if not (name == "fit" and fmt == "ndjson") else 1     # a fit is one document per line
    assert (rows if isinstance(rows, int) else len(rows)) == n


@pytest.mark.parametrize("name", COMMANDS)
def test_json_and_table(name):
    doc = json.loads(run(*COMMANDS[name], "-f", "json").stdout)
    assert isinstance(doc, dict) and doc
    res = run(*COMMANDS[name], "-f", "table")
    assert res.exit_code == 0 and res.stdout.strip() and "…" not in res.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_parquet_extension_writes_parquet(name, tmp_path):
    out = tmp_path / "r.parquet"
    res = run(*COMMANDS[name], "-o", str(out))
    assert res.exit_code == 0, res.stderr
    assert out.read_bytes()[:4] == b"PAR1"
    assert pq.read_table(out).num_rows == N_ROWS[name]


@pytest.mark.parametrize("ext, check", [
    (".json", lambda t: json.loads(t)),
    (".ndjson", lambda t: [json.loads(x) for x in t.splitlines()]),
    (".csv", lambda t: t.startswith("group,level,term,estimate")),
    (".tsv", lambda t: t.startswith("group\tlevel\tterm\testimate")),
    (".md", lambda t: t.startswith("**Random effects")),
    (".html", lambda t: t.startswith("<!DOCTYPE html>")),
    (".txt", lambda t: t.startswith("Random effects (conditional modes)")),
])
def test_the_extension_chooses_the_format(ext, check, tmp_path):
    out = tmp_path / f"r{ext}"
    assert run(*COMMANDS["ranef"], "-o", str(out)).exit_code == 0
    assert check(out.read_text())


def test_format_beats_an_unknown_extension(tmp_path):
    out = tmp_path / "r.out"
    assert run(*COMMANDS["ranef"], "-f", "csv", "-o", str(out)).exit_code == 0
    assert out.read_text().startswith("group,level,term")


@pytest.mark.parametrize("name", ["fit", "ranef", "predict", "simulate"])
def test_a_contradiction_is_refused(name, tmp_path):
    res = run(*COMMANDS[name], "-f", "json", "-o", str(tmp_path / "r.csv"))
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr.startswith("error: --format json contradicts the extension of")
    assert list(tmp_path.iterdir()) == []


def test_dash_is_standard_output():
    res = run(*COMMANDS["ranef"], "-o", "-", "-f", "csv")
    assert res.exit_code == 0 and res.stdout.startswith("group,level,term")


def test_fit_csv_is_broom_mixed_tidy():
    rows = parsed("csv", run("fit", SLEEP, F, "-f", "csv").stdout)
    assert list(rows[0]) == ["effect", "group", "term", "estimate", "std_error", "statistic", "df", "p_value",
                             "conf_low", "conf_high"]
    assert [(r["effect"], r["group"], r["term"]) for r in rows] == [
        ("fixed", "", "(Intercept)"), ("fixed", "", "Days"),
        ("ran_pars", "Subject", "sd__(Intercept)"), ("ran_pars", "Subject", "cor__(Intercept).Days"),
        ("ran_pars", "Subject", "sd__Days"), ("ran_pars", "Residual", "sd__Observation")]
    doc = json.loads(run("fit", SLEEP, F, "-f", "json").stdout)
    fe = doc["fixed_effects"][1]
    assert float(rows[1]["estimate"]) == fe["estimate"] and float(rows[1]["p_value"]) == fe["p_value"]
    assert float(rows[1]["df"]) == fe["df"] and rows[1]["conf_low"] == ""
    assert float(rows[3]["estimate"]) == doc["correlations"][0]["correlation"]
    assert float(rows[5]["estimate"]) == doc["sigma"]


def test_fit_csv_carries_the_intervals_of_ci():
    rows = parsed("csv", run("fit", SLEEP, F, "-f", "csv", "--ci", "wald").stdout)
    assert rows[0]["conf_low"] != "" and float(rows[0]["conf_low"]) < float(rows[0]["estimate"])


def test_lm_csv_has_the_same_columns():
    rows = parsed("csv", run("fit", SLEEP, "Reaction ~ Days", "-f", "csv").stdout)
    assert [r["term"] for r in rows] == ["(Intercept)", "Days"] and rows[0]["df"] == "178.0"


@pytest.mark.parametrize("command, what", [("ranef", "random effects"), ("coef", "group-specific coefficients")])
def test_ranef_and_coef_without_random_terms_say_so(command, what):
    res = run(command, SLEEP, "Reaction ~ Days")
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.startswith(f"error: the model has no random terms, so there are no {what}")


def test_lmm_table_follows_the_extension_and_refuses_what_it_cannot_write(tmp_path):
    md = tmp_path / "t.md"
    assert run("table", SLEEP, "Reaction ~ Days + (1|Subject)", "-o", str(md)).exit_code == 0
    assert md.read_text().startswith("|")
    res = run("table", SLEEP, "Reaction ~ Days + (1|Subject)", "-o", str(tmp_path / "t.parquet"))
    assert res.exit_code == 2 and "not parquet" in res.stderr and not (tmp_path / "t.parquet").exists()


@pytest.mark.parametrize("command", [["anova", SLEEP, F], ["ranova", SLEEP, F]])
def test_analysis_commands_write_real_parquet(command, tmp_path):
    out = tmp_path / "a.parquet"
    res = run(*command, "-o", str(out))
    assert res.exit_code == 0, res.stderr
    assert pq.read_table(out).num_rows >= 1


def test_parquet_to_a_pipe():
    res = runner.invoke(app, [*COMMANDS["ranef"], "-f", "parquet"])
    assert res.exit_code == 0 and res.stdout_bytes[:4] == b"PAR1"
    assert pq.read_table(io.BytesIO(res.stdout_bytes)).num_rows == 36
