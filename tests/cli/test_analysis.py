"""CLI of anova, ranova, emmeans: the JSON contract, tables, CSV, and exit codes for bad requests."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import REF
from lmmcli.cli import app

runner = CliRunner()
DATA = REF / "analysis" / "data"
TWOWAY, GPA, SLEEP = str(DATA / "twoway.csv"), str(DATA / "gpa.csv"), str(DATA / "sleepstudy.csv")
AXB = "y ~ A*B + x + (1 + x | g)"
GPA_F = "gpa ~ job + sex + highgpa + (1 | student)"


def run(*args):
    return runner.invoke(app, list(args))


def test_anova_json_keys_and_reference_values():
    res = run("anova", TWOWAY, AXB, "--factor", "B", "-f", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["type"] == "3" and doc["df_method"] == "satterthwaite"
    want = json.loads((REF / "analysis" / "expected" / "twoway_AxB.json").read_text())["anova"]["3_satterthwaite"]
    for got, w in zip(doc["anova"], want):
        assert list(got) == ["term", "sum_sq", "mean_sq", "num_df", "den_df", "f_value", "p_value"]
        assert got["term"] == w["term"] and got["f_value"] == pytest.approx(w["f_value"], rel=1e-3)


def test_anova_table_and_csv():
    res = run("anova", GPA, GPA_F, "--type", "2", "--df", "kenward-roger")
    assert res.exit_code == 0, res.stderr
    assert "Type II Analysis of Variance Table with Kenward-Roger's method" in res.stdout
    assert "NumDF" in res.stdout and "highgpa" in res.stdout
    csv = run("anova", GPA, GPA_F, "-f", "csv").stdout.splitlines()
    assert csv[0] == "term,sum_sq,mean_sq,num_df,den_df,f_value,p_value" and len(csv) == 4


def test_ranova_rows():
    res = run("ranova", SLEEP, "Reaction ~ Days + (Days | Subject)", "-f", "json")
    assert res.exit_code == 0, res.stderr
    terms = [r["term"] for r in json.loads(res.stdout)["ranova"]]
    assert terms == ["<none>", "Days in (Days | Subject)"]
    table = run("ranova", SLEEP, "Reaction ~ Days + (Days | Subject)").stdout
    assert "ANOVA-like table for random-effects" in table and "Pr(>Chisq)" in table


def test_emmeans_json_with_by_and_pairwise():
    res = run("emmeans", TWOWAY, AXB, "--factor", "B", "--specs", "A", "--by", "B", "--pairwise",
              "--adjust", "holm", "-f", "json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["df_method"] == "kenward-roger" and doc["adjust"] == "holm"
    assert doc["emmeans"][0]["levels"] == {"A": "ctrl", "B": "1"}
    assert doc["contrasts"][0]["contrast"] == "ctrl - (high-dose)" and doc["contrasts"][0]["by"] == {"B": "1"}
    assert set(doc["contrasts"][0]) == {"contrast", "by", "estimate", "std_error", "df", "t_ratio", "p_value"}


def test_emmeans_table_and_csv():
    res = run("emmeans", GPA, GPA_F, "--specs", "job", "--pairwise")
    assert res.exit_code == 0, res.stderr
    assert "Estimated marginal means" in res.stdout and "1 hour - 2 hours" in res.stdout
    assert "P value adjustment: tukey method for comparing a family of 3 estimates" in res.stdout
    csv = run("emmeans", GPA, GPA_F, "--specs", "job,sex", "-f", "csv").stdout.splitlines()
    assert csv[0].startswith("contrast,job,sex,emmean") and len(csv) == 7


@pytest.mark.parametrize("args,code,message", {
    "kr with ml (anova)": (["anova", SLEEP, "Reaction ~ Days + (1 | Subject)", "--ml", "--df", "kenward-roger"], 2,
                           "REML"),
    "kr with ml (emmeans)": (["emmeans", GPA, GPA_F, "--ml", "--df", "kenward-roger", "--specs", "job"], 2, "REML"),
    "bad type": (["anova", SLEEP, "Reaction ~ Days + (1 | Subject)", "--type", "4"], 2, "--type"),
    "not a factor": (["emmeans", GPA, GPA_F, "--specs", "highgpa"], 1, "not a factor"),
    "no random terms": (["ranova", SLEEP, "Reaction ~ Days"], 1, "random"),
    "bad adjust": (["emmeans", GPA, GPA_F, "--specs", "job", "--adjust", "scheffe"], 2, "scheffe"),
}.values())
def test_refusals_are_one_error_line(args, code, message):
    res = run(*args)
    assert res.exit_code == code
    assert message in res.stderr and res.stdout == "" and "Traceback" not in res.stderr


@pytest.mark.parametrize("fmt,start", {"markdown": "|  | (1) | (2) |", "html": "<table>", "csv": ",(1),(2)",
                                       "table": ""}.items())
def test_table_formats(fmt, start):
    res = run("table", GPA, "gpa ~ occasion + (1|student)", GPA_F, "-f", fmt)
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith(start) and "Num.Obs." in res.stdout


def test_table_json():
    res = run("table", GPA, "gpa ~ occasion + (1|student)", "gpa ~ occasion", "-f", "json", "--ci")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert [m["model"] for m in doc["models"]] == ["lmer", "lm"] and doc["ci_level"] == 0.95
    assert {"estimate", "std_error", "conf_low", "conf_high", "p_value"} <= set(doc["models"][0]["fixed"][0])


def test_emmeans_marks_non_estimable_means():
    res = run("emmeans", str(DATA / "twoway_missing.csv"), "y ~ A*B + x + (1 | g)", "--factor", "B", "--specs", "A",
              "--pairwise")
    assert res.exit_code == 0, res.stderr
    assert "nonEst" in res.stdout and "not estimable" in res.stdout
    assert "rank deficient" in res.stderr


def test_anova_and_emmeans_from_a_saved_model(tmp_path):
    path = str(tmp_path / "m.json")
    assert run("fit", GPA, GPA_F, "--save", path).exit_code == 0
    direct = json.loads(run("anova", GPA, GPA_F, "-f", "json").stdout)
    saved = run("anova", "--model", path, "-f", "json")
    assert saved.exit_code == 0, saved.stderr
    assert json.loads(saved.stdout)["anova"] == direct["anova"]
    em = run("emmeans", "--model", path, "--specs", "job", "--pairwise", "-f", "json")
    assert em.exit_code == 0, em.stderr
    assert json.loads(em.stdout)["contrasts"][0]["contrast"] == "1 hour - 2 hours"
    both = run("anova", GPA, "--model", path)
    assert both.exit_code == 2 and "with --model" in both.stderr
