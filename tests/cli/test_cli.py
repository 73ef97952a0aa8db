"""CLI: `lmm fit` output on stdout, messages on stderr, exit codes (0 ok, 1 user error, 2 usage)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import REF
from lmmcli.cli import app

runner = CliRunner()
SLEEP = str(REF / "data" / "sleepstudy.csv")
FORMULA = "Reaction ~ Days + (Days|Subject)"


def run(*args):
    return runner.invoke(app, list(args))


def test_fit_table_looks_like_lme4_summary():
    res = run("fit", SLEEP, FORMULA)
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    for piece in ("Linear mixed model fit by REML", "REML criterion at convergence: 1743.6283",
                  "Scaled residuals", "Random effects", "Subject", "Residual",
                  "Number of obs: 180, groups: Subject, 18", "Fixed effects", "(Intercept)",
                  "Correlation of fixed effects"):
        assert piece in out
    assert res.stderr == ""


def test_fit_json_is_one_document():
    res = run("fit", SLEEP, FORMULA, "--format", "json")
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["method"] == "REML" and doc["nobs"] == 180
    assert doc["fixed_effects"][1]["term"] == "Days"


def test_fit_ml_reports_deviance():
    doc = json.loads(run("fit", SLEEP, FORMULA, "--ml", "-f", "json").stdout)
    assert doc["method"] == "ML" and doc["reml_criterion"] is None
    assert doc["deviance"] == pytest.approx(1751.93934480795, abs=1e-3)


def test_fit_reads_parquet(tmp_path):
    import pandas as pd

    pq = tmp_path / "s.parquet"
    pd.read_csv(SLEEP).to_parquet(pq)
    a = json.loads(run("fit", str(pq), FORMULA, "-f", "json").stdout)
    b = json.loads(run("fit", SLEEP, FORMULA, "-f", "json").stdout)
    assert a["reml_criterion"] == pytest.approx(b["reml_criterion"], abs=1e-9)


def test_output_file(tmp_path):
    out = tmp_path / "fit.json"
    res = run("fit", SLEEP, FORMULA, "-f", "json", "-o", str(out))
    assert res.exit_code == 0 and res.stdout == ""
    assert json.loads(out.read_text())["nobs"] == 180


def test_singular_fit_warns_on_stderr_and_strict_exits_3():
    dye2 = str(REF / "data" / "dyestuff2.csv")
    res = run("fit", dye2, "Yield ~ 1 + (1|Batch)")
    assert res.exit_code == 0 and "singular" in res.stderr and "singular" in res.stdout
    assert run("fit", dye2, "Yield ~ 1 + (1|Batch)", "--strict").exit_code == 3


@pytest.mark.parametrize("formula, fragment, caret", [
    ("Reaction ~ Dayz + (Days|Subject)", "column 'Dayz' is not in sleepstudy.csv", "^^^^"),
    ("Reaction ~ Days + (Days|Subject", "", "^"),
    ("Reaction Days", "'~'", None),
])
def test_formula_errors_are_one_clean_message(formula, fragment, caret):
    res = run("fit", SLEEP, formula)
    assert res.exit_code == 1
    assert res.stdout == ""
    assert res.stderr.startswith("error: ") and fragment in res.stderr
    assert "Traceback" not in res.stderr
    if caret:
        assert caret in res.stderr


def test_unknown_column_hint():
    res = run("fit", SLEEP, "Reaction ~ Dayz + (Days|Subject)")
    assert "hint: did you mean 'Days'?" in res.stderr


def test_missing_file():
    res = run("fit", "no/such.csv", FORMULA)
    assert res.exit_code == 1 and "does not exist" in res.stderr and res.stdout == ""


def test_usage_error_exit_2():
    assert run("fit", SLEEP, FORMULA, "--format", "xml").exit_code == 2
    assert run("fit", SLEEP, FORMULA, "--ref", "nolevel").exit_code == 2


FITTING_COMMANDS = [["fit"], ["compare"], ["ranef"], ["coef"], ["predict"], ["plot", "ranef", "--terminal"],
                    ["simulate"]]


@pytest.mark.parametrize("command", FITTING_COMMANDS[:1] + FITTING_COMMANDS[2:])
def test_every_fitting_command_checks_the_formula_before_reading_data(command):
    res = run(*command, "no/such.csv", "Reaction ~ Days + (Days|Subject")
    assert res.exit_code == 1 and res.stderr.startswith("error: ")
    assert "does not exist" not in res.stderr and "^" in res.stderr


DYE2 = str(REF / "data" / "dyestuff2.csv")       # a singular fit: its warning must reach every command


@pytest.mark.parametrize("command", FITTING_COMMANDS)
def test_every_fitting_command_honours_strict(command):
    formulas = ["Yield ~ 1 + (1|Batch)"] + (["Yield ~ 1"] if command == ["compare"] else [])
    res = run(*command, DYE2, *formulas)
    assert res.exit_code == 0 and "singular" in res.stderr
    assert run(*command, DYE2, *formulas, "--strict").exit_code == 3


@pytest.mark.parametrize("command", FITTING_COMMANDS)
def test_every_fitting_command_refuses_a_bad_ref_alike(command):
    formulas = [FORMULA] + (["Reaction ~ Days + (1|Subject)"] if command == ["compare"] else [])
    res = run(*command, SLEEP, *formulas, "--ref", "Days=3")
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.startswith("error: --ref Days=3: 'Days' is numeric, so it has no reference level")


@pytest.mark.parametrize("command", [["fit", "--ci", "wald"], ["predict"], ["predict", "--interval", "confidence"],
                                     ["ranef"], ["coef"], ["plot", "ranef", "--terminal"]])
def test_a_bad_level_reads_the_same_in_every_command(command):
    res = run(*command, SLEEP, FORMULA, "--level", "1.5")
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr == "error: --level must be between 0 and 1 (e.g. 0.95), got 1.5\n"


def _many_fixed_effects(tmp_path, levels):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    n = 20 * levels
    f, g = rng.integers(0, levels, n), rng.integers(0, 10, n)
    y = rng.normal(size=levels)[f] + rng.normal(size=10)[g] + rng.normal(size=n)
    path = tmp_path / "wide.csv"
    pd.DataFrame({"y": y, "f": [f"f{i:02d}" for i in f], "g": [f"g{i}" for i in g]}).to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("levels,flag,shown", [
    (12, [], True), (13, [], False), (13, ["--correlation"], True)])
def test_correlation_table_only_up_to_12_fixed_effects(tmp_path, levels, flag, shown):
    """lme4 prints the fixed effects' correlations only for p <= 12 unless asked (--correlation)."""
    res = runner.invoke(app, ["fit", _many_fixed_effects(tmp_path, levels), "y ~ f + (1|g)", "--df", "none", *flag])
    assert res.exit_code == 0, res.stderr
    assert ("Correlation of fixed effects" in res.stdout) is shown
    assert ("Correlation matrix not shown by default, as p = 13 > 12" in res.stdout) is (not shown and not flag)


def test_a_long_table_is_laid_out_as_rich_lays_it_out(monkeypatch):
    """Over PLAIN_ROWS rows the fixed effects table is plain text: the same text as rich's table."""
    from lmmcli.render import text as tables

    cols = ["", "Estimate", "Std. Error", "t value"]
    rows = [[f"f{i}" * (1 + i % 3), f"{i * 1.5:.2f}", f"{0.1 + i:.4f}", f"-{i % 7}.5"] for i in range(300)]
    plain = tables._rows_table(cols, rows, "Fixed effects")
    monkeypatch.setattr(tables, "PLAIN_ROWS", 10 ** 6)
    rich = tables._rows_table(cols, rows, "Fixed effects")
    assert not isinstance(plain, type(rich))
    assert tables.to_text([plain]) == tables.to_text([rich])
