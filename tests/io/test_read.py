"""data.read_table: values typed as R's read.csv types them, through pyarrow or the pandas fallback alike,
into a Frame of numpy columns (float64 with NaN, int64, bool, or objects with None).

The CLI messages for unreadable files are tested in test_bad_input.py; here, what a readable file becomes.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from conftest import REF
from lmmcli.io import read as data
from lmmcli.io.read import read_csv_source, read_table
from lmmcli.errors import DataError
from lmmcli.io.frame import Frame, frames_equal


def read_bytes(tmp_path, content: bytes, name="d.csv"):
    path = tmp_path / name
    path.write_bytes(content)
    return read_table(str(path))


# (id, csv text, column, expected dtype kind, expected values); dtype kinds: i int, f float, b bool, O/str text
TYPING = [
    ("quoted numbers are numbers", 'a\n"308"\n"309"\n', "a", "i", [308, 309]),
    ("decimals", "a\n1.5\n2\n", "a", "f", [1.5, 2.0]),
    ("exponent", "a\n1e3\n-2.5E-2\n", "a", "f", [1000.0, -0.025]),
    ("leading zeros are numbers (as R)", "a\n007\n010\n", "a", "i", [7, 10]),
    ("Inf and -Inf", "a\nInf\n-Inf\n1\n", "a", "f", [np.inf, -np.inf, 1.0]),
    ("TRUE/FALSE are booleans", "a\nTRUE\nFALSE\n", "a", "b", [True, False]),
    ("T/F and true/false are booleans (as R)", "a\nT\nfalse\nTrue\n", "a", "b", [True, False, True]),
    ("0/1 stay integers", "a\n0\n1\n", "a", "i", [0, 1]),
    ("text stays text", "a\nx\n12\n", "a", "str", ["x", "12"]),
    ("dates stay text (read.csv does not parse them)", "a\n2020-01-01\n2020-01-02\n", "a", "str",
     ["2020-01-01", "2020-01-02"]),
    ("times stay text", "a\n12:00:00\n13:30:00\n", "a", "str", ["12:00:00", "13:30:00"]),
    ("NA and empty are missing in numbers", "a,b\n1,x\nNA,y\n,z\n", "a", "f", [1.0, np.nan, np.nan]),
    # read.csv: only NA is missing in a text column; an empty field is the value "" (quoted or not)
    ("NA is missing in text, empty is text", "a,b\n1,x\n2,NA\n3,\n4,\"\"\n", "b", "str", ["x", np.nan, "", ""]),
    ("'null' is text, not missing (as R)", "a\nnull\nx\n", "a", "str", ["null", "x"]),
    ("an all-missing column is float", "a,b\nNA,1\n,2\n", "a", "f", [np.nan, np.nan]),
    ("spaces around numbers", "a,b\n1, 2\n3, 4.5\n", "b", "f", [2.0, 4.5]),
]


def _kind(col: np.ndarray) -> str:
    return {np.dtype(bool): "b", np.dtype(np.int64): "i", np.dtype(np.float64): "f"}.get(col.dtype, "str")


@pytest.mark.parametrize("cid, text, col, kind, values", TYPING, ids=[t[0] for t in TYPING])
@pytest.mark.parametrize("reader", ["arrow", "pandas"])
def test_r_typing(tmp_path, monkeypatch, reader, cid, text, col, kind, values):
    if reader == "pandas":   # the fallback must type the same way
        monkeypatch.setattr(data, "_arrow_read", _arrow_fails)
    df = read_bytes(tmp_path, text.encode())
    assert isinstance(df, Frame)
    assert _kind(df[col]) == kind
    got = df[col].tolist()
    assert len(got) == len(values)
    for g, v in zip(got, values):
        assert (pd.isna(g) and pd.isna(v)) or g == v


def _arrow_fails(*a, **k):
    import pyarrow as pa

    raise pa.ArrowInvalid("In CSV column #0: CSV conversion error to int64: invalid value 'x'")


def test_arrow_and_pandas_readers_agree_on_sleepstudy(monkeypatch):
    path = str(REF / "data" / "sleepstudy.csv")
    a = read_table(path)
    monkeypatch.setattr(data, "_arrow_read", _arrow_fails)
    b = read_table(path)
    assert frames_equal(a, b)
    assert [_kind(a[c]) for c in a.columns] == ["f", "i", "i"]   # Reaction, Days, Subject ("308" quoted: a number)


def test_type_change_after_the_first_block_falls_back_to_pandas(tmp_path, monkeypatch):
    """pyarrow guesses a column's type from its first block; a later text value must not be an error."""
    monkeypatch.setattr(data, "BLOCK_BYTES", 256)
    rows = [f"{i},{i}" for i in range(200)] + ["200,abc"]
    df = read_bytes(tmp_path, ("y,g\n" + "\n".join(rows) + "\n").encode())
    assert _kind(df["y"]) == "i" and _kind(df["g"]) == "str" and df["g"][-1] == "abc"


def test_quoted_newlines_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "BLOCK_BYTES", 256)
    rows = [f'{i},"line one\nline two {i}"' for i in range(100)]
    df = read_bytes(tmp_path, ("y,note\n" + "\n".join(rows) + "\n").encode())
    assert len(df) == 100 and df["note"][99] == "line one\nline two 99"


@pytest.mark.parametrize("header, names", [
    ("y,y,x", ["y", "y.1", "x"]),              # R's make.unique
    ("y,,x", ["y", "X", "x"]),                 # R names an empty header X
    ('"a,b",c,"my col"', ["a,b", "c", "my col"]),  # quoted names keep their text (formulas backquote them)
])
def test_column_names(tmp_path, header, names):
    df = read_bytes(tmp_path, (header + "\n1,2,3\n").encode())
    assert list(df.columns) == names


def test_utf8_byte_order_mark_is_dropped(tmp_path):
    df = read_bytes(tmp_path, b'\xef\xbb\xbf"y",x\n1,2\n')
    assert list(df.columns) == ["y", "x"]


@pytest.mark.parametrize("late", [False, True])
def test_latin1_is_read_and_noted(tmp_path, late):
    """Non-UTF-8 text, in the first bytes or only after the part read to guess the encoding."""
    filler = "".join(f"{i},2,plain\n" for i in range(20000)) if late else ""
    text = "y,x,g\n" + filler + "1,2,café\n3,4,naïve\n"
    df = read_bytes(tmp_path, text.encode("latin-1"))
    assert df["g"][-2:].tolist() == ["café", "naïve"]
    assert df.attrs["encoding_note"] == "d.csv is not UTF-8; read it as latin-1"


def test_utf8_is_not_noted(tmp_path):
    df = read_bytes(tmp_path, "y,g\n1,café\n".encode())
    assert df["g"].tolist() == ["café"] and "encoding_note" not in df.attrs


@pytest.mark.parametrize("name, text", [
    ("d.tsv", "y\tx\n1\t2\n3\t4\n"),
    ("d.tab", "y\tx\n1\t2\n3\t4\n"),
    ("d.txt", "y;x\n1;2\n3;4\n"),
    ("d.txt", "y\tx\n1\t2\n3\t4\n"),
    ("d.txt", "y,x\n1,2\n3,4\n"),
    ("d.CSV", "y,x\n1,2\n3,4\n"),
])
def test_delimiters(tmp_path, name, text):
    df = read_bytes(tmp_path, text.encode(), name)
    assert list(df.columns) == ["y", "x"] and df["x"].tolist() == [2, 4]


def test_parquet_and_stdin(tmp_path, monkeypatch):
    ref = read_table(str(REF / "data" / "dyestuff.csv"))
    ref.to_pandas().to_parquet(tmp_path / "d.parquet")
    assert frames_equal(read_table(str(tmp_path / "d.parquet")), ref)
    raw = (REF / "data" / "dyestuff.csv").read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw)))
    assert frames_equal(read_table("-"), ref)


def test_columns_subset(tmp_path):
    df = read_bytes(tmp_path, b"a,b,c\n1,2,3\n")
    assert list(read_table(str(tmp_path / "d.csv"), columns={"a", "c"}).columns) == ["a", "c"]
    assert list(df.columns) == ["a", "b", "c"]


@pytest.mark.parametrize("content, fragment", [
    (b"", "is empty"),
    (b"y,x\n", "has a header but no data rows"),
    (b"y,x\n1,2\n3\n", "line 3 has 1 fields, but the header has 2"),
    (b"y,x\n1,2\n3,4,5\n", "line 3 has 3 fields"),
    (b"\x00\x01\x02binary", "not a text data file"),
])
def test_read_errors(tmp_path, content, fragment):
    with pytest.raises(DataError, match=fragment):
        read_bytes(tmp_path, content)


def test_stream_source_matches_file(tmp_path):
    content = b"y,g\n1,a\n2,b\n"
    a = read_bytes(tmp_path, content)
    b = read_csv_source(io.BytesIO(content), ",", "standard input")
    assert frames_equal(a, b)


def test_large_file_uses_several_blocks(tmp_path):
    """A file of several pyarrow blocks reads completely and with the right types."""
    n = 300_000
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.normal(size=n), "g": rng.integers(0, 100, n).astype(str), "b": rng.random(n) < 0.5})
    df.to_csv(tmp_path / "big.csv", index=False)
    got = read_table(str(tmp_path / "big.csv"))
    assert len(got) == n and _kind(got["y"]) == "f" and _kind(got["g"]) == "i" and _kind(got["b"]) == "b"
    np.testing.assert_allclose(got["y"], df["y"].to_numpy(), rtol=1e-15)


def test_parquet_index_stored_by_pandas_is_not_a_column(tmp_path):
    """pandas writes a named index as a column; reading it back (as pandas did) it is no column of the data."""
    df = pd.DataFrame({"y": [1.0, 2.0]}, index=pd.Index(["r1", "r2"], name="rid"))
    df.to_parquet(tmp_path / "d.parquet")
    assert read_table(str(tmp_path / "d.parquet")).columns == ["y"]
