"""Every `$ lmm ...` example in README.md runs as shown (from the project root) and prints what the README shows.

An example is a `$ lmm ...` line inside a ``` block; the lines after it, up to the next `$ ` line or the end of
the block, are its output. A line `...` stands for lines left out: each run of shown lines between them must
appear in the real output, in order, line for line (trailing spaces aside). Numbers with a decimal point may
differ as much as the optimizer's tolerance moves them: a unit in the last printed digit (a number on a rounding
edge flips) or 3e-5 relative; full-precision numbers (8 or more digits) 1e-4 and p-values in e-notation 1e-3 (the
engine agrees with lme4 to about 1e-5 in theta, a weakly determined correlation less). Every other character,
integers included, must be equal. Output that starts with `error:` is compared with stderr (and the exit code
must be 1); any other with stdout.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmmcli.cli import app

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")
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
    return all(close(x, y) for x, y in zip(NUMBER.findall(printed), NUMBER.findall(shown)))


def close(printed: str, shown: str) -> bool:
    """Two printed numbers agree to the optimizer's tolerance (see the module docstring)."""
    mantissa, _, exponent = shown.partition("e")
    last_digit = 10.0 ** (-len(mantissa.split(".")[1]) + int(exponent or 0))
    a, b = float(printed), float(shown)
    full_precision = len(mantissa.replace("-", "").replace(".", "").lstrip("0")) >= 8
    rel = 1e-3 if exponent else 1e-4 if full_precision else 3e-5
    return abs(a - b) <= max(rel * abs(b), 1.01 * last_digit)


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
    assert shows('"x": 0.123456789\n', ['"x": 0.123457700']) is None
    assert shows('"x": 0.123456789\n', ['"x": 0.123566789']) is not None
    assert shows('"x": 0.123456789\n', ['"y": 0.123456789']) is not None
    assert shows("612.09   24.740\n", ["612.10   24.741"]) is None          # a rounding edge
    assert shows("612.09   24.740\n", ["612.12   24.741"]) is not None
    assert shows("npar 4\n", ["npar 5"]) is not None                     # integers are exact
    assert shows("p 1.1708e-17\n", ["p 1.1714e-17"]) is None


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
