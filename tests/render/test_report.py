"""`lmm report`: one self-contained HTML page (no scripts, nothing fetched) with the summary, p-values, variance
components with ICC and R², three inline SVG figures and the command with versions; it renders in headless
Chromium with no console message."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from conftest import REF
from lmmcli.cli import app

runner = CliRunner()
SLEEP = str(REF / "data" / "sleepstudy.csv")
FORMULA = "Reaction ~ Days + (Days|Subject)"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    res = runner.invoke(app, ["report", SLEEP, FORMULA, "-o", str(out)])
    assert res.exit_code == 0, res.stderr
    return out


def test_the_page_holds_the_fit(page):
    text = page.read_text()
    for piece in ("Reaction ~ Days + (Days|Subject)", "REML criterion", "1743.6283", "Fixed effects", "(Intercept)",
                  "Pr(&gt;|t|)", "3.26e-06", "Satterthwaite", "Variance components", "ICC adjusted", "R² marginal",
                  "Residual"):
        assert piece in text, piece
    assert text.count("<svg") == 3


def test_the_page_is_self_contained(page):
    text = page.read_text()
    assert "<script" not in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "@import" not in text and "url(http" not in text


def test_the_page_records_the_command_and_versions(page):
    text = page.read_text()
    assert f"lmm report {SLEEP} &#x27;{FORMULA}&#x27; -o" in text
    assert re.search(r"lmm \d+\.\d+\.\d+, Python \d+\.\d+\.\d+, numpy \d", text)


def test_the_report_must_be_html(tmp_path):
    res = runner.invoke(app, ["report", SLEEP, FORMULA, "-o", str(tmp_path / "r.txt")])
    assert res.exit_code == 2 and "HTML" in res.stderr and list(tmp_path.iterdir()) == []


def test_a_formula_without_random_terms_gets_the_lm_report(tmp_path):
    out = tmp_path / "lm.html"
    assert runner.invoke(app, ["report", SLEEP, "Reaction ~ Days", "-o", str(out)]).exit_code == 0
    text = out.read_text()
    assert "least squares" in text and text.count("<svg") == 1


# -- in a browser --------------------------------------------------------------------------------------
def chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def render(path) -> tuple[str, list[str]]:
    """(the DOM after loading, the console messages) from headless Chromium."""
    res = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                          "--v=0", "--dump-dom", f"file://{path}"], capture_output=True, text=True, timeout=120)
    return res.stdout, [line for line in res.stderr.splitlines() if ":CONSOLE" in line]


needs_chromium = pytest.mark.skipif(chromium() is None, reason="no chromium on this machine (.ci/run installs it)")


@needs_chromium
def test_chromium_sees_console_errors(tmp_path):
    """The check below can fail: a page with a script error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>")
    _, console = render(bad)
    assert any("undefinedFunction" in line for line in console)


@needs_chromium
def test_the_report_renders_in_chromium_without_console_messages(page):
    dom, console = render(page)
    assert console == []
    assert "<h1>Linear mixed model: Reaction ~ Days + (Days|Subject)</h1>" in dom
    assert dom.count("<svg") == 3


def test_a_model_without_a_numeric_predictor_says_why_it_has_no_trajectories(tmp_path):
    out = tmp_path / "pen.html"
    res = runner.invoke(app, ["report", str(REF / "data" / "penicillin.csv"), "diameter ~ 1 + (1|plate) + (1|sample)",
                              "-o", str(out)])
    assert res.exit_code == 0, res.stderr
    text = out.read_text()
    assert text.count("<svg") == 2 and "no numeric predictor" in text
