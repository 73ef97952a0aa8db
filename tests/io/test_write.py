"""output.atomic_write: a temporary file renamed into place; no partial file on failure or Ctrl-C;
never over an input file (same path, symlink or hard link); and `lmm ... -o FILE` uses it."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from conftest import REF
from lmmcli.cli import app
from lmmcli.errors import LmmError, UsageError
from lmmcli.io.write import atomic_write, check_target, write_text

runner = CliRunner()
SLEEP = str(REF / "data" / "sleepstudy.csv")
SF = "Reaction ~ Days + (Days|Subject)"


def leftovers(folder) -> list[str]:
    return [f for f in os.listdir(folder) if f.endswith(".part")]


def test_writes_the_content(tmp_path):
    write_text(str(tmp_path / "a.txt"), "héllo\n")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert leftovers(tmp_path) == []


class Boom(Exception):
    pass


@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt, OSError])
@pytest.mark.parametrize("existing", [False, True])
def test_failure_midway_leaves_no_partial_file(tmp_path, exc, existing):
    target = tmp_path / "out.json"
    if existing:
        target.write_text("old")

    def half_then_fail(fh):
        fh.write(b'{"half": ')
        raise exc("disk full" if exc is OSError else None)

    expected = LmmError if exc is OSError else exc   # an OSError while writing is reported as an lmm error
    with pytest.raises(expected):
        atomic_write(str(target), half_then_fail)
    assert leftovers(tmp_path) == []
    assert (target.read_text() == "old") if existing else not target.exists()


def test_os_error_is_one_clean_message(tmp_path):
    def fail(fh):
        raise OSError(28, "No space left on device")

    with pytest.raises(LmmError, match="cannot write '.*out.txt': No space left on device"):
        atomic_write(str(tmp_path / "out.txt"), fail)


@pytest.mark.parametrize("how", ["same path", "relative path", "symlink", "hard link"])
def test_refuses_to_overwrite_an_input(tmp_path, monkeypatch, how):
    data = tmp_path / "data.csv"
    data.write_text("y,x\n1,2\n")
    monkeypatch.chdir(tmp_path)
    target = {"same path": str(data), "relative path": "data.csv"}.get(how)
    if how == "symlink":
        os.symlink(data, tmp_path / "link.csv")
        target = str(tmp_path / "link.csv")
    if how == "hard link":
        os.link(data, tmp_path / "hard.csv")
        target = str(tmp_path / "hard.csv")
    with pytest.raises(UsageError, match="refusing to overwrite the input data file"):
        write_text(target, "output", inputs=(str(data),))
    assert data.read_text() == "y,x\n1,2\n"


def test_stdin_input_and_new_files_are_fine(tmp_path):
    assert check_target(str(tmp_path / "new.json"), inputs=("-", None)) == tmp_path / "new.json"


@pytest.mark.parametrize("target, fragment", [
    ("{tmp}/missing/out.json", "does not exist"),
    ("{tmp}", "it is a folder"),
])
def test_bad_targets(tmp_path, target, fragment):
    with pytest.raises(UsageError, match=fragment):
        write_text(target.replace("{tmp}", str(tmp_path)), "x")


def test_file_mode_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(str(tmp_path / "a.txt"), "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644   # not mkstemp's 0600


def test_existing_file_keeps_its_mode(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    target.chmod(0o640)
    write_text(str(target), "new")
    assert target.read_text() == "new" and target.stat().st_mode & 0o777 == 0o640


# -- through the CLI ---------------------------------------------------------------------------------
def test_cli_output_file_and_empty_stdout(tmp_path):
    out = tmp_path / "fit.json"
    res = runner.invoke(app, ["fit", SLEEP, SF, "-f", "json", "-o", str(out)])
    assert res.exit_code == 0 and res.stdout == ""
    assert json.loads(out.read_text())["nobs"] == 180
    assert leftovers(tmp_path) == []


def test_cli_failed_run_leaves_no_file(tmp_path):
    out = tmp_path / "fit.json"
    res = runner.invoke(app, ["fit", SLEEP, "Reaction ~ Nope + (1|Subject)", "-o", str(out)])
    assert res.exit_code == 1 and not out.exists() and leftovers(tmp_path) == []


def test_cli_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    from lmmcli.render import tables as render

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "to_json", interrupted)
    out = tmp_path / "fit.json"
    res = runner.invoke(app, ["fit", SLEEP, SF, "-f", "json", "-o", str(out)])
    assert res.exit_code == 130 and not out.exists() and leftovers(tmp_path) == []


def test_cli_never_overwrites_the_data_file(tmp_path):
    data = tmp_path / "s.csv"
    data.write_bytes(open(SLEEP, "rb").read())
    before = data.read_bytes()
    res = runner.invoke(app, ["fit", str(data), SF, "-o", str(data)])
    assert res.exit_code == 2 and data.read_bytes() == before and leftovers(tmp_path) == []
