"""The bootstrap progress bar is drawn only for --ci boot, and only when stderr is a terminal."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from conftest import REF
from lmmcli.cli import app, common

SLEEP = str(REF / "data" / "sleepstudy.csv")


@pytest.fixture
def bars(monkeypatch):
    """The labels of the bars the commands open, with stderr taken for a terminal."""
    opened = []
    real = common._bar

    def bar(label, total):
        opened.append(label)
        return real(label, total)

    monkeypatch.setattr(common, "stderr_is_terminal", lambda: True)
    monkeypatch.setattr(common, "_bar", bar)
    return opened


@pytest.mark.parametrize("extra", [[], ["--ci", "wald"], ["--ci", "profile"]])
def test_no_bar_unless_bootstrapping(bars, extra):
    res = CliRunner().invoke(app, ["fit", SLEEP, "Reaction ~ Days + (1|Subject)", *extra])
    assert res.exit_code == 0, res.stderr
    assert bars == [] and "bootstrap" not in res.stderr


def test_bar_for_the_bootstrap(bars):
    res = CliRunner().invoke(app, ["fit", SLEEP, "Reaction ~ Days + (1|Subject)", "--ci", "boot", "--nsim", "20",
                                   "--seed", "1"])
    assert res.exit_code == 0, res.stderr
    assert bars == ["bootstrap"]


def test_no_bar_when_stderr_is_not_a_terminal():
    assert common.progress_bar("bootstrap", 10).__enter__() is None
