"""Every `$ lmm ...` example in README.md runs as shown (from the project root) and prints what the README shows.

An example is a `$ lmm ...` line inside a ``` block; the lines after it, up to the next `$ ` line or the end of
the block, are its output. A line `...` stands for lines left out: each run of shown lines between them must
appear in the real output, in order, line for line (trailing spaces aside; a number shown with more than 7
significant digits may differ from the printed one in the 7th, as full-precision JSON does between optimizer
versions). Output that starts with `error:` is compared with stderr (and the exit code must be 1); any other with
stdout.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmmcli.cli import app

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"-?\d+\.\d{7,}(?:e[-+]?\d+)?")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", flags=re.M | re.S)


def examples(text: str) -> list[tuple[str, list[str]]]:
    """(command line after `$ lmm `, shown output lines) for every example in the fenced blocks."""
    out = []
    for block in FENCE.findall(text):
        for chunk in re.split(r"^(?=\$ )", block, flags=re.M):
            if chunk.startswith("$ lmm "):
                line, *shown = chunk.rstrip("\n").split("\n")
                out.append((line[len("$ lmm "):], shown))
    return out


EXAMPLES = examples((ROOT / "README.md").read_text())


def pieces(shown: list[str]) -> list[list[str]]:
    """The runs of shown lines between `...` lines."""
    runs, run = [], []
    for line in shown:
        if line.strip() == "...":
            runs.append(run)
            run = []
        else:
            run.append(line.rstrip())
    return [r for r in runs + [run] if r]


def same_line(printed: str, shown: str) -> bool:
    """The lines are equal, or differ only in full-precision numbers that agree to 1e-6 relative."""
    if printed == shown:
        return True
    a, b = NUMBER.split(printed), NUMBER.split(shown)
    if a != b:
        return False
    return all(abs(float(x) - float(y)) <= 1e-6 * max(abs(float(y)), 1e-300)
               for x, y in zip(NUMBER.findall(printed), NUMBER.findall(shown)))


def same_run(lines: list[str], run: list[str]) -> bool:
    return all(same_line(a, b) for a, b in zip(lines, run))


def shows(output: str, shown: list[str]) -> str | None:
    """None when every run of shown lines appears in output in order, else the first run that does not."""
    lines = [line.rstrip() for line in output.split("\n")]
    start = 0
    for run in pieces(shown):
        at = next((i for i in range(start, len(lines) - len(run) + 1) if same_run(lines[i:i + len(run)], run)), None)
        if at is None:
            return "\n".join(run)
        start = at + len(run)
    return None


def test_readme_has_examples():
    assert len(EXAMPLES) >= 3
    assert sum(bool(shown) for _, shown in EXAMPLES) >= 3


def test_the_comparison_catches_a_changed_line():
    out = "a\nb  \nc\nd\n"
    assert shows(out, ["a", "b", "...", "d"]) is None
    assert shows(out, ["a", "c"]) == "a\nc"
    assert shows(out, ["c", "...", "b"]) == "b"
    assert shows('"x": 0.123456789\n', ['"x": 0.123456700']) is None
    assert shows('"x": 0.123456789\n', ['"x": 0.123466789']) is not None
    assert shows('"x": 0.123456789\n', ['"y": 0.123456789']) is not None


def run_example(line: str, tmp_path: Path):
    """Run one README command line from the project root; files it writes go to tmp_path."""
    args = shlex.split(line)
    args = [str(tmp_path / Path(a).name) if prev in ("-o", "--output", "--save") and a != "-" else a
            for prev, a in zip([""] + args[:-1], args)]
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize("line, shown", EXAMPLES, ids=[line[:60] for line, _ in EXAMPLES])
def test_readme_example_prints_what_it_shows(line, shown, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    res = run_example(line, tmp_path)
    if shown and shown[0].startswith("error:"):
        assert res.exit_code == 1 and res.stdout == ""
        assert shows(res.stderr, shown) is None, res.stderr
        return
    assert res.exit_code in (0, 3), res.stderr
    assert res.stdout or list(tmp_path.iterdir())
    missing = shows(res.stdout, shown)
    assert missing is None, f"README shows lines the command does not print:\n{missing}\n--- printed:\n{res.stdout}"
