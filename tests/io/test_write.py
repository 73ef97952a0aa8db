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


# -- issue 13: outputs never replace inputs, each other, devices or FIFOs ---------------------------
def _saved_model(tmp_path):
    path = tmp_path / "m.json"
    assert runner.invoke(app, ["fit", SLEEP, SF, "--save", str(path)]).exit_code == 0
    return path


@pytest.mark.parametrize("case", ["-o data", "-o newdata", "-o newdata link", "-o model", "-o = --save",
                                  "-o = --save via ./", "--save data", "--save data hard link"])
def test_outputs_naming_inputs_or_each_other_are_refused(tmp_path, case):
    data, new = tmp_path / "train.csv", tmp_path / "new.csv"
    data.write_bytes(open(SLEEP, "rb").read())
    new.write_bytes(data.read_bytes())
    model = _saved_model(tmp_path)
    (tmp_path / "link.csv").symlink_to(new)
    os.link(data, tmp_path / "hard.csv")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    t = str(tmp_path)
    args = {
        "-o data": ["predict", str(data), SF, "--newdata", str(new), "-o", str(data)],
        "-o newdata": ["predict", str(data), SF, "--newdata", str(new), "-o", str(new)],
        "-o newdata link": ["predict", str(data), SF, "--newdata", str(new), "-o", f"{t}/link.csv"],
        "-o model": ["predict", "--model", str(model), "--newdata", str(new), "-o", str(model)],
        "-o = --save": ["fit", str(data), SF, "-o", f"{t}/x.json", "--save", f"{t}/x.json"],
        "-o = --save via ./": ["fit", str(data), SF, "-o", f"{t}/x.json", "--save", f"{t}/./x.json"],
        "--save data": ["fit", str(data), SF, "--save", str(data)],
        "--save data hard link": ["fit", str(data), SF, "--save", f"{t}/hard.csv"],
    }[case]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.stderr
    assert res.stderr.startswith("error: ") and ("refusing to overwrite" in res.stderr or "same file" in res.stderr)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert not (tmp_path / "x.json").exists()


def test_fifo_output_is_written_directly_not_renamed_over(tmp_path):
    import threading

    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()), daemon=True)
    reader.start()
    res = runner.invoke(app, ["predict", SLEEP, SF, "-o", str(fifo)])
    reader.join(timeout=30)
    assert res.exit_code == 0, res.stderr
    assert os.path.exists(fifo) and not os.path.isfile(fifo)     # still a FIFO
    assert got[0].startswith(b"row,prediction")
    assert leftovers(tmp_path) == []


def test_device_output_is_written_directly(tmp_path, monkeypatch):
    """A character device (here a stand-in path that stat() calls one) is opened and written, never replaced."""
    import stat as stat_mod

    target = tmp_path / "dev"
    target.write_bytes(b"")
    real_stat = os.stat
    renames = []
    monkeypatch.setattr(os, "replace", lambda *a: renames.append(a))

    class FakeStat:
        def __init__(self, st):
            self._st = st

        def __getattr__(self, name):
            return self._st.st_mode & 0o7777 | stat_mod.S_IFCHR if name == "st_mode" else getattr(self._st, name)

    monkeypatch.setattr(os, "stat", lambda p, *a, **k: FakeStat(real_stat(p, *a, **k))
                        if str(p) == str(target) else real_stat(p, *a, **k))
    write_text(str(target), "data\n")
    assert renames == [] and target.read_text() == "data\n"


def test_symlinked_output_keeps_the_link(tmp_path):
    (tmp_path / "link.json").symlink_to(tmp_path / "real.json")
    write_text(str(tmp_path / "link.json"), "x\n")
    assert (tmp_path / "link.json").is_symlink() and (tmp_path / "real.json").read_text() == "x\n"


def test_too_long_output_name_is_a_usage_error(tmp_path):
    res = runner.invoke(app, ["fit", SLEEP, SF, "-o", str(tmp_path / ("a" * 300 + ".json"))])
    assert res.exit_code == 2 and "the file name is 305 bytes" in res.stderr and "Traceback" not in res.stderr


def test_long_but_legal_output_name_is_written(tmp_path):
    name = "b" * 250 + ".csv"
    write_text(str(tmp_path / name), "x\n")
    assert (tmp_path / name).read_text() == "x\n" and leftovers(tmp_path) == []


@pytest.mark.parametrize("signum, code, line", [(15, 143, "error: terminated"), (1, 129, "error: hung up")])
def test_sigterm_and_sighup_while_writing_clean_up(tmp_path, monkeypatch, signum, code, line):
    """The signal arrives while the output is being written: the .part file is removed, one line, 128 + signal."""
    import lmmcli.io.write as write_mod

    real = write_mod.atomic_write

    def write_then_signal(path, write, inputs=()):
        def writer(fh):
            write(fh)
            os.kill(os.getpid(), signum)
        return real(path, writer, inputs)

    monkeypatch.setattr(write_mod, "atomic_write", write_then_signal)
    res = runner.invoke(app, ["predict", SLEEP, SF, "-o", str(tmp_path / "out.csv")])
    assert res.exit_code == code and res.stderr.strip().endswith(line)
    assert os.listdir(tmp_path) == []


def _write_one(args):
    path, k = args
    write_text(path, f"{k}\n" * 200_000)     # 200,000 lines: large enough for writes to overlap
    return k


def test_twenty_parallel_writers_leave_one_whole_file(tmp_path):
    import multiprocessing

    target = str(tmp_path / "out.csv")
    with multiprocessing.get_context("fork").Pool(4) as pool:
        done = pool.map(_write_one, [(target, k) for k in range(20)])
    assert sorted(done) == list(range(20))
    lines = open(target).read().splitlines()
    assert len(lines) == 200_000 and len(set(lines)) == 1     # one writer's whole content, not a mixture
    assert leftovers(tmp_path) == []


@pytest.mark.slow   # 20 lmm processes at once: about a minute on 2 cores
def test_twenty_parallel_lmm_runs_leave_one_valid_file(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "pred.csv"
    procs = [subprocess.Popen([sys.executable, "-m", "lmmcli.cli", "predict", SLEEP, SF, "-o", str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(20)]
    assert all(p.wait(timeout=600) == 0 for p in procs)
    text = out.read_text().splitlines()
    assert text[0].startswith("row,prediction") and len(text) == 181
    assert leftovers(tmp_path) == []


def test_save_to_stdout_with_the_report_in_a_file(tmp_path):
    import json as json_mod

    res = runner.invoke(app, ["fit", SLEEP, SF, "--save", "-", "-o", str(tmp_path / "s.txt")])
    assert res.exit_code == 0 and json_mod.loads(res.stdout)["format"] == "lmm-model"
    assert (tmp_path / "s.txt").read_text().startswith("Linear mixed model")
    assert not os.path.exists("-")


@pytest.mark.parametrize("args", [["--save", "-"], ["--save", "-", "-o", "-"]])
def test_two_outputs_on_stdout_are_refused(args):
    res = runner.invoke(app, ["fit", SLEEP, SF, *args])
    assert res.exit_code == 2 and "would both write to standard output" in res.stderr and res.stdout == ""


def test_the_same_character_device_twice_is_allowed(tmp_path, monkeypatch):
    import lmmcli.io.write as write_mod

    from lmmcli.io.write import check_outputs

    dev = tmp_path / "dev"
    dev.write_text("")
    with pytest.raises(UsageError, match="name the same file"):
        check_outputs({"-o": str(dev), "--save": str(dev)}, {})
    monkeypatch.setattr(write_mod, "_is_char_device", lambda p: True)
    check_outputs({"-o": str(dev), "--save": str(dev)}, {})
