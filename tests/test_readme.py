"""Every `$ lmm ...` example in README.md runs as shown (from the project root): it succeeds, or, where the
README shows an `error:` line after it, it fails with exit code 1 and that message on stderr."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmmcli.cli import app

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = re.findall(r"^\$ lmm (.+)\n(.*)$", (ROOT / "README.md").read_text(), flags=re.M)


def test_readme_has_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("line, shown", EXAMPLES)
def test_readme_example_runs(line, shown, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    args = shlex.split(line)
    # files the examples write go to a temporary folder, never into the project
    args = [str(tmp_path / Path(a).name) if prev in ("-o", "--output", "--save") else a
            for prev, a in zip([""] + args[:-1], args)]
    res = CliRunner().invoke(app, args)
    if shown.startswith("error:"):
        assert res.exit_code == 1 and res.stdout == ""
        assert res.stderr.startswith(shown)
        return
    assert res.exit_code in (0, 3), res.stderr
    assert res.stdout or list(tmp_path.iterdir())
