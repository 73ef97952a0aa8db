"""Bad input never crashes: every case of issue 7 gives one clear message on stderr, nothing on stdout,
exit 1 (2 for usage errors), and no traceback. Table-driven: each row is (id, files, args, exit, fragment).

Files are written into a temporary folder by name; `{S}` in args is sleepstudy (tests/reference/data),
`{D}` dyestuff2 (a singular fit), `{tmp}` the temporary folder.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import REF
from lmmcli.cli import app

runner = CliRunner()
SLEEP = str(REF / "data" / "sleepstudy.csv")
DYE2 = str(REF / "data" / "dyestuff2.csv")
SLEEP_SHA = hashlib.sha256(open(SLEEP, "rb").read()).hexdigest()
SF = "Reaction ~ Days + (Days|Subject)"
TOY = "y ~ x + (1|g)"


def toy(**cols) -> bytes:
    """30 rows, 6 groups of 5: y, x, g; keyword arguments replace or add columns."""
    rng = np.random.default_rng(7)
    df = pd.DataFrame({"y": rng.normal(size=30) + np.tile(np.arange(5.0), 6), "x": np.tile(np.arange(5.0), 6),
                       "g": np.repeat(list("abcdef"), 5)})
    for k, v in cols.items():
        df[k] = v
    return df.to_csv(index=False).encode()


def with_inf(col, row, value):
    df = pd.read_csv(__import__("io").BytesIO(toy()))
    df.loc[row, col] = value
    return df.to_csv(index=False).encode()


# files by name -> bytes (a callable makes them lazily)
FILES = {
    "empty.csv": b"",
    "blank.csv": b"\n\n  \n",
    "header.csv": b"y,x,g\n",
    "short_row.csv": b"y,x,g\n1,2,a\n3,4\n5,6,b\n",
    "long_row.csv": b"y,x,g\n1,2,a\n3,4,b,9\n",
    "garbage.csv": bytes(np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8)),
    "data.xlsx": b"PK\x03\x04not really",
    "noext": b"y,x\n1,2\n",
    "corrupt.parquet": b"PAR1" + b"\x13" * 200,
    "parquet_named.csv": b"PAR1\x15\x04\x15\x00",
    "utf16.csv": "y,x,g\n1,2,a\n".encode("utf-16"),
    "text_response.csv": lambda: toy(y=["a", "b", "c"] * 10),
    "bool_response.csv": lambda: toy(y=[True, False, False] * 10),
    "constant.csv": lambda: toy(y=5.0),
    "inf_x.csv": lambda: with_inf("x", 3, np.inf),
    "inf_y.csv": lambda: with_inf("y", 7, -np.inf),
    "na_response.csv": lambda: toy(y=np.nan),
    "one_level.csv": lambda: toy(g="a"),
    "singletons.csv": lambda: toy(g=[f"s{i}" for i in range(30)]),
    "two_per_group.csv": lambda: toy(g=np.repeat(list("abcdefghijklmno"), 2)),
    "bool_factor.csv": lambda: toy(b=[True, False] * 15),
    "latin1.csv": "y,x,g\n1,2,café\n2,3,naïve\n3,1,café\n4,2,naïve\n5,5,café\n".encode("latin-1"),
}

# (id, args, exit code, fragment of stderr)
CASES = [
    # -- files
    ("missing file", ["fit", "{tmp}/nope.csv", SF], 1, "does not exist"),
    ("a directory", ["fit", "{tmp}", SF], 1, "is a directory"),
    ("empty file", ["fit", "{tmp}/empty.csv", SF], 1, "empty.csv is empty"),
    ("blank lines only", ["fit", "{tmp}/blank.csv", SF], 1, "is empty"),
    ("header only", ["fit", "{tmp}/header.csv", TOY], 1, "has a header but no data rows"),
    ("ragged short row", ["fit", "{tmp}/short_row.csv", TOY], 1, "line 3 has 2 fields, but the header has 3"),
    ("ragged long row", ["fit", "{tmp}/long_row.csv", TOY], 1, "line 3 has 4 fields, but the header has 3"),
    ("binary garbage", ["fit", "{tmp}/garbage.csv", SF], 1, "not a text data file"),
    ("unknown extension", ["fit", "{tmp}/data.xlsx", SF], 1, "cannot tell the format"),
    ("no extension", ["fit", "{tmp}/noext", SF], 1, "cannot tell the format"),
    ("corrupt parquet", ["fit", "{tmp}/corrupt.parquet", SF], 1, "cannot read Parquet file 'corrupt.parquet'"),
    ("parquet named .csv", ["fit", "{tmp}/parquet_named.csv", SF], 1, "is a Parquet file, not text"),
    ("utf-16 text", ["fit", "{tmp}/utf16.csv", SF], 1, "is UTF-16 text"),
    # -- formula
    ("empty formula", ["fit", SLEEP, ""], 1, "the formula is empty"),
    ("blank formula", ["fit", SLEEP, "   "], 1, "the formula is empty"),
    ("no tilde", ["fit", SLEEP, "Reaction Days"], 1, "no '~'"),
    ("unmatched (", ["fit", SLEEP, "Reaction ~ Days + (Days|Subject"], 1, "unmatched '('"),
    ("unmatched )", ["fit", SLEEP, "Reaction ~ Days + Days|Subject)"], 1, "unmatched ')'"),
    ("bar outside parentheses", ["fit", SLEEP, "Reaction ~ Days | Subject"], 1, "'|' is only allowed inside"),
    ("empty grouping", ["fit", SLEEP, "Reaction ~ Days + (1|)"], 1, "no grouping factor after '|'"),
    ("meaningless character", ["fit", SLEEP, "Reaction ~ Days $ Subject"], 1, "unexpected character '$'"),
    ("meaningless characters", ["fit", SLEEP, "Reaction ~ Days + @!"], 1, "unexpected character"),
    ("unknown function", ["fit", SLEEP, "Reaction ~ foo(Days) + (1|Subject)"], 1, "unknown function 'foo'"),
    ("unknown column", ["fit", SLEEP, "Reaction ~ Dayz + (1|Subject)"], 1, "hint: did you mean 'Days'?"),
    ("unknown grouping column", ["fit", SLEEP, "Reaction ~ Days + (1|Subjekt)"], 1, "did you mean 'Subject'?"),
    ("same column both sides", ["fit", SLEEP, "Reaction ~ Reaction + (1|Subject)"], 1, "on both sides of '~'"),
    ("response as group", ["fit", SLEEP, "Reaction ~ Days + (1|Reaction)"], 1, "on both sides of '~'"),
    # -- data
    ("text response", ["fit", "{tmp}/text_response.csv", TOY], 1, "the response 'y' is not numeric"),
    ("boolean response", ["fit", "{tmp}/bool_response.csv", TOY], 1, "TRUE/FALSE"),
    ("constant response", ["fit", "{tmp}/constant.csv", TOY], 1, "the response 'y' is constant"),
    ("infinite predictor", ["fit", "{tmp}/inf_x.csv", TOY], 1, "'x' has infinite values in 1 row (first: row 4"),
    ("infinite response", ["fit", "{tmp}/inf_y.csv", TOY], 1, "the response 'y' has infinite values"),
    ("infinite from a transform", ["fit", SLEEP, "Reaction ~ log(Days) + (1|Subject)"], 1,
     "'log(Days)' has infinite values in 18 rows"),
    ("all response missing", ["fit", "{tmp}/na_response.csv", TOY], 1, "every value of the response 'y' is missing"),
    ("grouping with one level", ["fit", "{tmp}/one_level.csv", TOY], 1, "has only 1 level"),
    ("groups all of size one", ["fit", "{tmp}/singletons.csv", TOY], 1,
     "number of levels of each grouping factor must be < number of observations"),
    ("more random effects than data (checkZdims)", ["fit", "{tmp}/two_per_group.csv", "y ~ x + (x|g)"], 1,
     "number of observations (=30) <= number of random effects (=30) for term ((Intercept) + x | g)"),
    ("--ref level missing", ["fit", "{tmp}/bool_factor.csv", "y ~ b + (1|g)", "--ref", "b=TRU"], 1,
     "'TRU' is not a level of 'b'"),
    ("--ref on a numeric column", ["fit", SLEEP, SF, "--ref", "Days=3"], 1, "add --factor Days"),
    ("--ref on a column not in the model", ["fit", SLEEP, SF, "--ref", "Subject=308"], 1,
     "'Subject' is not a predictor"),
    ("--ref column not in the data", ["fit", SLEEP, SF, "--ref", "Nope=1"], 1, "--ref names column 'Nope'"),
    # -- options
    ("unknown --format", ["fit", SLEEP, SF, "--format", "xml"], 2, "'xml' is not one of"),
    ("malformed --ref", ["fit", SLEEP, SF, "--ref", "nolevel"], 2, "--ref expects COL=LEVEL"),
    ("-o onto the input file", ["fit", SLEEP, SF, "-o", SLEEP], 2, "refusing to overwrite the input data file"),
    ("-o into a missing folder", ["fit", SLEEP, SF, "-o", "{tmp}/no/such/out.json"], 2, "does not exist"),
    ("-o onto a folder", ["fit", SLEEP, SF, "-o", "{tmp}"], 2, "it is a folder"),
    ("--model with a formula", ["predict", SLEEP, SF, "--model", "{tmp}/m.json"], 2, "with --model"),
    ("--terminal with -o", ["plot", "ranef", SLEEP, SF, "--terminal", "-o", "{tmp}/p.png"], 2, "--terminal"),
]


@pytest.fixture
def workdir(tmp_path):
    for name, content in FILES.items():
        (tmp_path / name).write_bytes(content() if callable(content) else content)
    return tmp_path


def invoke(args, tmp):
    return runner.invoke(app, [a.replace("{tmp}", str(tmp)) for a in args])


@pytest.mark.parametrize("cid, args, code, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input(workdir, cid, args, code, fragment):
    res = invoke(args, workdir)
    assert res.exit_code == code, (res.stdout, res.stderr)
    assert res.stdout == ""
    assert fragment in res.stderr
    assert "Traceback" not in res.stderr
    assert res.exception is None or isinstance(res.exception, SystemExit)
    if code == 1:
        first = res.stderr.splitlines()[0]
        assert first.startswith("error: ")
        extra = [ln for ln in res.stderr.splitlines()[1:] if not ln.startswith(("  ", "hint: "))]
        assert extra == []      # one line, + caret lines, + hint
    assert hashlib.sha256(open(SLEEP, "rb").read()).hexdigest() == SLEEP_SHA   # the input is never touched


@pytest.mark.parametrize("formula, token", [
    ("Reaction ~ Dayz + (1|Subject)", "Dayz"),
    ("Reaction ~ Days $ Subject", "$"),
    ("Reaction ~ foo(Days) + (1|Subject)", "foo"),
    ("Reaction ~ Reaction + (1|Subject)", "Reaction "),
])
def test_formula_errors_point_at_the_characters(formula, token):
    res = runner.invoke(app, ["fit", SLEEP, formula])
    lines = res.stderr.splitlines()
    start = formula.index(token, 1)
    assert lines[1] == "  " + formula
    assert lines[2] == "  " + " " * start + "^" * len(token.strip())


def test_latin1_file_is_read_with_a_note(workdir):
    res = invoke(["fit", "{tmp}/latin1.csv", "y ~ x + (1|g)", "-f", "json"], workdir)
    assert res.exit_code == 0, res.stderr
    assert "note: latin1.csv is not UTF-8; read it as latin-1" in res.stderr
    assert '"naïve"' in res.stdout or "na\\u00efve" in res.stdout


def test_rank_z_is_a_warning_and_strict_makes_it_exit_3(tmp_path):
    """lme4's checkZrank: crossed terms that together fit every observation exactly."""
    rng = np.random.default_rng(5)
    a = np.repeat(np.arange(6), 2)                          # 6 levels each, 12 rows: each term has 6 < 12
    b = np.array([0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 0])      # random effects, but together rank(Z) = 12
    c = np.array([0, 3, 1, 4, 2, 5, 0, 3, 1, 4, 2, 5])
    pd.DataFrame({"y": rng.normal(size=12), "a": a, "b": b, "c": c}).to_csv(tmp_path / "r.csv", index=False)
    args = ["fit", str(tmp_path / "r.csv"), "y ~ 1 + (1|a) + (1|b) + (1|c)"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0 and "warning: number of observations (=12) <= rank(Z) (=12)" in res.stderr
    assert runner.invoke(app, args + ["--strict"]).exit_code == 3


# -- --strict: every command that fits turns any warning into exit code 3 --------------------------
FITTING = ["fit", "compare", "predict", "ranef", "coef", "plot", "simulate"]
STRICT_ARGS = {
    "fit": ["fit", DYE2, "Yield ~ 1 + (1|Batch)"],
    "compare": ["compare", DYE2, "Yield ~ 1 + (1|Batch)", "Yield ~ 1 + (1|Batch)"],
    "predict": ["predict", DYE2, "Yield ~ 1 + (1|Batch)"],
    "ranef": ["ranef", DYE2, "Yield ~ 1 + (1|Batch)"],
    "coef": ["coef", DYE2, "Yield ~ 1 + (1|Batch)"],
    "plot": ["plot", "ranef", DYE2, "Yield ~ 1 + (1|Batch)", "--terminal"],
    "simulate": ["simulate", DYE2, "Yield ~ 1 + (1|Batch)"],
}


def test_every_command_with_a_formula_has_strict():
    import inspect

    for cmd in app.registered_commands:
        params = inspect.signature(cmd.callback).parameters
        if "formula" in params or "formulas" in params:
            assert "strict" in params, f"lmm {cmd.name or cmd.callback.__name__} fits but has no --strict"


@pytest.mark.parametrize("name", FITTING)
def test_strict_exits_3_on_a_singular_fit(name):
    assert runner.invoke(app, STRICT_ARGS[name]).exit_code == 0
    res = runner.invoke(app, STRICT_ARGS[name] + ["--strict"])
    assert res.exit_code == 3, res.stderr
    assert "singular" in res.stderr


# -- interruptions and closed pipes ---------------------------------------------------------------
def test_ctrl_c_is_one_line_exit_130(monkeypatch):
    import lmmcli.fit

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(lmmcli.fit, "fit", interrupted)
    res = runner.invoke(app, ["fit", SLEEP, SF])
    assert res.exit_code == 130 and res.stderr == "error: interrupted\n" and res.stdout == ""


def _lmm(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "lmmcli.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, **kw)


def test_closed_pipe_gives_no_traceback():
    """`lmm fit ... | head -1`: the reader goes away before lmm writes."""
    p = _lmm("predict", SLEEP, SF)
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert p.returncode != 0


def _wait_for_cpu(pid: int, seconds: float, timeout: float = 60.0) -> None:
    """Wait until the process has used this much CPU time (Linux /proc), or has ended."""
    tick, start = os.sysconf("SC_CLK_TCK"), time.time()
    while time.time() - start < timeout:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            return
        if (int(fields[11]) + int(fields[12])) / tick >= seconds or fields[0] == "Z":
            return
        time.sleep(0.05)


@pytest.mark.slow   # a real SIGINT to a real process: about 5-10 s
def test_sigint_while_fitting_gives_no_traceback(tmp_path):
    rng = np.random.default_rng(1)
    n = 40000
    g = rng.integers(0, 400, n)
    pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n), "g": g, "h": rng.integers(0, 300, n)}) \
        .to_csv(tmp_path / "big.csv", index=False)
    out = tmp_path / "out.json"
    p = _lmm("fit", str(tmp_path / "big.csv"), "y ~ x + (x|g) + (1|h)", "-o", str(out))
    _wait_for_cpu(p.pid, seconds=2.5)     # past the imports (on a loaded machine wall time says little)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert "Traceback" not in err.decode()
    if p.returncode != 0:        # the fit may, on a fast machine, have finished first
        assert p.returncode == 130 and err.decode().strip().endswith("error: interrupted")
        assert not out.exists()
    assert [f for f in os.listdir(tmp_path) if f.endswith(".part")] == []


# -- issue 13: nothing silently wrong --------------------------------------------------------------
def _long_ids_csv(path):
    """20 groups with 16-digit IDs; one missing ID makes the column floating point."""
    rng = np.random.default_rng(1)
    g = np.repeat(1234567890123400.0 + np.arange(20), 10)
    x = np.tile(np.arange(10.0), 20)
    df = pd.DataFrame({"y": rng.normal(size=200) + np.repeat(rng.normal(size=20), 10) + x, "x": x, "g": g})
    df.loc[5, "g"] = np.nan
    df.to_csv(path, index=False)


def test_long_numeric_ids_stay_distinct_in_fit_ranef_and_predict(tmp_path):
    import json

    _long_ids_csv(tmp_path / "ids.csv")
    args = [str(tmp_path / "ids.csv"), "y ~ x + (1|g)"]
    fit = json.loads(runner.invoke(app, ["fit", *args, "-f", "json"]).stdout)
    assert fit["ngroups"] == {"g": 20}
    ranef = runner.invoke(app, ["ranef", *args, "-f", "csv"]).stdout.splitlines()
    levels = [line.split(",")[1] for line in ranef[1:]]
    assert len(levels) == 20 and len(set(levels)) == 20 and "1234567890123419" in levels
    pred = json.loads(runner.invoke(app, ["predict", *args, "-f", "json"]).stdout)["predictions"]
    assert [p["new_level"] for p in pred].count(False) == 199
    fitted = json.loads(runner.invoke(app, ["predict", *args, "-f", "json", "--newdata", args[0]]).stdout)
    assert fitted["predictions"] == pred


# -- input dialects (issue 16) ---------------------------------------------------------------------
def test_a_dot_in_days_is_a_warning_naming_the_column(tmp_path):
    text = open(SLEEP).read().splitlines()
    text[5] = text[5].replace(",4,", ",.,")       # one Days value written as '.'
    (tmp_path / "dot.csv").write_text("\n".join(text) + "\n")
    res = runner.invoke(app, ["fit", str(tmp_path / "dot.csv"), SF])
    assert "warning: column 'Days' of dot.csv looks numeric, but values such as '.' are not numbers" in res.stderr
    args = ["fit", str(tmp_path / "dot.csv"), "Reaction ~ Days + (1|Subject)"]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, args + ["--strict"]).exit_code == 3                # a data warning counts
    assert runner.invoke(app, ["fit", SLEEP, SF, "--strict"]).exit_code == 0     # nothing carried over


@pytest.mark.parametrize("args", [
    ["--delimiter", ";", "--decimal", ","],
    ["--decimal", ","],                          # the delimiter sniffed
    ["--delimiter", "semicolon", "--decimal", ","],
])
def test_semicolon_and_decimal_comma_options(tmp_path, args):
    import json

    (tmp_path / "eu.csv").write_text(open(SLEEP).read().replace(",", ";").replace(".", ","))
    res = runner.invoke(app, ["fit", str(tmp_path / "eu.csv"), SF, "-f", "json", *args])
    ref = runner.invoke(app, ["fit", SLEEP, SF, "-f", "json"])
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["fixed_effects"] == json.loads(ref.stdout)["fixed_effects"]


@pytest.mark.parametrize("args, fragment", [
    (["--delimiter", "ab"], "give one character"),
    (["--decimal", ";"], "the decimal mark is '.' or ','"),
])
def test_bad_dialect_options_are_usage_errors(args, fragment):
    res = runner.invoke(app, ["fit", SLEEP, SF, *args])
    assert res.exit_code == 2 and fragment in res.stderr


@pytest.mark.slow   # real signals to a real process: about 5-10 s each
@pytest.mark.parametrize("signum, code, line", [(signal.SIGTERM, 143, "error: terminated"),
                                                (signal.SIGHUP, 129, "error: hung up")])
def test_sigterm_and_sighup_during_predict_clean_up(tmp_path, signum, code, line):
    rng = np.random.default_rng(2)
    n = 40000
    pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n), "g": rng.integers(0, 400, n),
                  "h": rng.integers(0, 300, n)}).to_csv(tmp_path / "big.csv", index=False)
    out = tmp_path / "out.csv"
    p = _lmm("predict", str(tmp_path / "big.csv"), "y ~ x + (x|g) + (1|h)", "-o", str(out))
    _wait_for_cpu(p.pid, seconds=2.5)
    p.send_signal(signum)
    _, err = p.communicate(timeout=60)
    assert "Traceback" not in err.decode()
    if p.returncode != 0:
        assert p.returncode == code and err.decode().strip().endswith(line)
        assert not out.exists()
    assert [f for f in os.listdir(tmp_path) if f.endswith(".part")] == []


# -- issue 13: tracebacks and hangs become one error line --------------------------------------------
NP0 = "y,x,z,g\n1,1,4,a\n2,3,1,a\n3,2,5,b\n"
CASES_13 = [
    ("REML with n = p", NP0, ["fit", "{tmp}/d.csv", "y ~ x + z + (1|g)"], 1, "REML needs more observations"),
    ("lm with n = p", "y,x\n1,1\n2,3\n", ["fit", "{tmp}/d.csv", "y ~ x"], 1, "no residual degrees of freedom"),
    ("5,000 minus signs", None, ["fit", SLEEP, "Reaction ~ " + "-" * 5000 + "Days + (1|Subject)"], 1,
     "nests too deeply"),
    ("I(x^x^...)", None, ["fit", SLEEP, "Reaction ~ I(" + "^".join(["Days"] * 2000) + ") + (1|Subject)"], 1,
     "nests too deeply"),
    ("(a0+...+a19)^20", None, ["fit", SLEEP, "Reaction ~ (" + "+".join(f"a{i}" for i in range(20)) + ")^20"], 1,
     "more than 10,000 terms"),
    ("a0*...*a19", None, ["fit", SLEEP, "Reaction ~ " + "*".join(f"a{i}" for i in range(20)) + " + (1|g)"], 1,
     "more than 10,000 terms"),
    ("-o name of 300 characters", None, ["fit", SLEEP, SF, "-o", "{tmp}/" + "o" * 300 + ".json"], 2,
     "longer than the 255"),
    ("DATA name of 300 characters", None, ["fit", "{tmp}/" + "d" * 300 + ".csv", SF], 1, "File name too long"),
    ("--model name of 300 characters", None, ["predict", "--model", "{tmp}/" + "m" * 300 + ".json", "--newdata",
                                              SLEEP], 1, "File name too long"),
    ("damaged gzip", gzip.compress(b"y,x,g\n1,2,a\n" * 50)[:-10], ["fit", "{tmp}/d.csv.gz", TOY], 1,
     "cannot decompress d.csv.gz"),
]


@pytest.mark.parametrize("cid, content, args, code, fragment", CASES_13, ids=[c[0] for c in CASES_13])
def test_bad_input_13(tmp_path, cid, content, args, code, fragment):
    if content is not None:
        name = "d.csv.gz" if isinstance(content, bytes) else "d.csv"
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    res = invoke(args, tmp_path)
    assert res.exit_code == code, (res.stdout, res.stderr)
    assert res.stdout == "" and fragment in res.stderr and "Traceback" not in res.stderr
    assert res.stderr.startswith("error: ")
    assert [ln for ln in res.stderr.splitlines()[1:] if not ln.startswith(("  ", "hint: "))] == []


def test_1000_terms_fit():
    res = runner.invoke(app, ["fit", SLEEP, "Reaction ~ " + " + ".join(["Days"] * 1000) + " + (1|Subject)"])
    assert res.exit_code == 0 and "Days" in res.stdout


def test_closed_stdin_is_one_error_line():
    """`lmm fit - F <&-`: no standard input at all."""
    p = subprocess.run([sys.executable, "-m", "lmmcli.cli", "fit", "-", SF], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120, preexec_fn=lambda: os.close(0))
    err = p.stderr.decode()
    assert p.returncode == 1 and err.startswith("error: standard input is closed") and "Traceback" not in err


def test_fifo_named_csv_does_not_hang(tmp_path):
    fifo = tmp_path / "x.csv"
    os.mkfifo(fifo)
    p = subprocess.Popen([sys.executable, "-m", "lmmcli.cli", "fit", str(fifo), SF, "-f", "json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with open(fifo, "wb") as fh:            # one writer, once: a second open by lmm would wait forever
        fh.write(open(SLEEP, "rb").read())
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    assert b'"nobs": 180' in out


def test_a_predictor_times_1e_200_is_not_aliased_and_never_gets_t_0_p_1(tmp_path):
    """Not dropped as aliased; its variance (~6e399) is no float: the fit refuses cleanly or warns, and
    never prints t = 0, p = 1."""
    import json

    df = pd.read_csv(SLEEP)
    df["t"] = df["Days"] * 1e-200
    df.to_csv(tmp_path / "tiny.csv", index=False)
    res = runner.invoke(app, ["fit", str(tmp_path / "tiny.csv"), "Reaction ~ t + (1|Subject)", "-f", "json"])
    assert "rank deficient" not in res.stderr and "Traceback" not in res.stderr
    if res.exit_code == 1:
        assert res.stderr.startswith("error: ") and "'t'" in res.stderr
        return
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    t = next(fe for fe in out["fixed_effects"] if fe["term"] == "t")
    assert t["statistic"] is None and t["p_value"] is None
    assert any("beyond floating point" in w for w in out["warnings"])
