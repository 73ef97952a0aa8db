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
from lmmcli.io import text as textio
from lmmcli.io.read import read_table
from lmmcli.io.text import Dialect, read_csv_source
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
        monkeypatch.setattr(textio, "_arrow_read", _arrow_fails)
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
    monkeypatch.setattr(textio, "_arrow_read", _arrow_fails)
    b = read_table(path)
    assert frames_equal(a, b)
    assert [_kind(a[c]) for c in a.columns] == ["f", "i", "i"]   # Reaction, Days, Subject ("308" quoted: a number)


def test_type_change_after_the_first_block_falls_back_to_pandas(tmp_path, monkeypatch):
    """pyarrow guesses a column's type from its first block; a later text value must not be an error."""
    monkeypatch.setattr(textio, "BLOCK_BYTES", 256)
    rows = [f"{i},{i}" for i in range(200)] + ["200,abc"]
    df = read_bytes(tmp_path, ("y,g\n" + "\n".join(rows) + "\n").encode())
    assert _kind(df["y"]) == "i" and _kind(df["g"]) == "str" and df["g"][-1] == "abc"


def test_quoted_newlines_across_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(textio, "BLOCK_BYTES", 256)
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
    b = read_csv_source(io.BytesIO(content), Dialect(","), "standard input")
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


def test_text_of_several_blocks_with_missing_and_empty_values(tmp_path):
    """Text columns come from the CSV reader dictionary-encoded per block: every block's values are
    decoded by its own dictionary, NA stays missing and an empty field stays "" in each."""
    n = 600_000                 # ~6 MB: two of pyarrow's 4 MB blocks
    words = np.array(["a", "b", "NA", "", "c d"], dtype=object)[np.arange(n) % 5]
    expected = np.where(words == "NA", None, words)
    path = tmp_path / "text.csv"
    path.write_text("w,x\n" + "".join(f"{w},{i}\n" for i, w in enumerate(words)))
    got = read_table(str(path))
    assert got["w"].dtype == object and list(got["w"]) == list(expected)


@pytest.mark.parametrize("n", [5, 120_000])
def test_parquet_text_short_and_long(tmp_path, n):
    """Plain (not dictionary) text from Parquet: value by value when short, by dictionary_encode when long."""
    values = (["x", None, "", "y"] * n)[:n]
    pd.DataFrame({"t": pd.Series(values, dtype=object)}).to_parquet(tmp_path / "t.parquet")
    assert list(read_table(str(tmp_path / "t.parquet"))["t"]) == values


def test_parquet_index_stored_by_pandas_is_not_a_column(tmp_path):
    """pandas writes a named index as a column; reading it back (as pandas did) it is no column of the data."""
    df = pd.DataFrame({"y": [1.0, 2.0]}, index=pd.Index(["r1", "r2"], name="rid"))
    df.to_parquet(tmp_path / "d.parquet")
    assert read_table(str(tmp_path / "d.parquet")).columns == ["y"]


# -- input dialects (issue 16) ---------------------------------------------------------------------
SLEEP = REF / "data" / "sleepstudy.csv"


def _sleep_as(sep: str, decimal: str = ".") -> bytes:
    return SLEEP.read_text().replace(",", sep).replace(".", decimal).encode()


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
@pytest.mark.parametrize("name", ["d.csv", "d.txt", "-"])
def test_delimiter_is_sniffed(tmp_path, monkeypatch, sep, name):
    raw = _sleep_as(sep)
    if name == "-":
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw)))
        df = read_table("-")
    else:
        df = read_bytes(tmp_path, raw, name)
    assert frames_equal(df, read_table(str(SLEEP)))
    assert df.attrs["delimiter"] == sep


@pytest.mark.parametrize("text, sep", [
    ("y\n1\n2\n", ","),                                 # one column: the default
    ('y,g\n1,"a;b"\n2,"c;d"\n', ","),                   # quoted delimiters do not count
    ("y;x\n1,5;2,5\n3,5;4\n", ";"),                     # decimal commas in a semicolon file
    ("a,b;c\n1,2;3\n4,5;6\n", ","),                     # a tie goes to the comma
    ("a|b|c\n1|2|3\n", "|"),
])
def test_sniff_delimiter(text, sep):
    assert textio.sniff_delimiter(text) == sep


def test_delimiter_and_decimal_given(tmp_path):
    raw = _sleep_as(";", decimal=",")
    path = tmp_path / "d.csv"
    path.write_bytes(raw)
    df = read_table(str(path), dialect=Dialect(";", ","))
    assert frames_equal(df, read_table(str(SLEEP)))
    sniffed = read_table(str(path), dialect=Dialect(None, ","))
    assert frames_equal(sniffed, df)


def test_decimal_comma_without_the_option_is_text_and_flagged(tmp_path):
    df = read_bytes(tmp_path, b"y;x\n1,5;2\n2,5;3\n3,5;4\n")
    assert df["y"].dtype == object and df.attrs["numeric_text"] == {"y": ["1,5", "2,5", "3,5"]}


def test_delimiter_equal_to_decimal_is_refused(tmp_path):
    (tmp_path / "d.csv").write_bytes(b"y,x\n1,2\n")
    with pytest.raises(DataError, match="both ','"):
        read_table(str(tmp_path / "d.csv"), dialect=Dialect(",", ","))


def _compress(kind: str, raw: bytes) -> bytes:
    import bz2
    import gzip
    import lzma

    import pyarrow as pa

    if kind == "zst":
        return pa.compress(raw, codec="zstd", asbytes=True)
    return {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[kind](raw)


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz", "zst"])
def test_compressed_files_and_stdin(tmp_path, monkeypatch, kind):
    packed = _compress(kind, SLEEP.read_bytes())
    ref = read_table(str(SLEEP))
    assert frames_equal(read_bytes(tmp_path, packed, f"d.csv.{kind}"), ref)
    assert frames_equal(read_bytes(tmp_path, packed, "d.csv"), ref)      # by its magic bytes
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(packed)))
    assert frames_equal(read_table("-"), ref)


@pytest.mark.parametrize("name, content", [
    ("d.csv.gz", lambda: _compress("gz", b"y,x\n1,2\n")[:-6]),       # truncated
    ("d.csv.gz", b"y,x\n1,2\n"),                                 # named compressed, but plain
    ("d.csv.zst", b"garbage"),
    ("d.csv.xz", lambda: _compress("xz", b"y,x\n1,2\n")[:-3]),
    ("d.csv.bz2", b"BZh9 not really"),
])
def test_damaged_compressed_file(tmp_path, name, content):
    with pytest.raises(DataError, match=f"cannot decompress {name}"):
        read_bytes(tmp_path, content() if callable(content) else content, name)


def test_arrow_ipc_feather_and_stdin_parquet(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    ref = read_table(str(SLEEP))
    table = pa.Table.from_pandas(ref.to_pandas(), preserve_index=False)
    feather.write_feather(table, tmp_path / "d.feather")
    assert frames_equal(read_table(str(tmp_path / "d.feather")), ref)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    assert frames_equal(read_bytes(tmp_path, sink.getvalue(), "d.arrows"), ref)
    for raw in (sink.getvalue(), (tmp_path / "d.feather").read_bytes()):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw)))
        assert frames_equal(read_table("-"), ref)
    pq.write_table(table, tmp_path / "d.parquet")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO((tmp_path / "d.parquet").read_bytes())))
    assert frames_equal(read_table("-"), ref)


def test_closed_stdin_is_an_error(monkeypatch):
    monkeypatch.setattr("sys.stdin", None)
    with pytest.raises(DataError, match="standard input is closed"):
        read_table("-")


def test_fifo_is_read_once(tmp_path):
    """A named pipe called x.csv: opening it twice would wait for a second writer forever."""
    import os
    import threading

    fifo = tmp_path / "x.csv"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(SLEEP.read_bytes()), daemon=True)
    writer.start()
    df = read_table(str(fifo))
    writer.join(timeout=10)
    assert frames_equal(df, read_table(str(SLEEP)))


# -- numbers stay numbers, IDs stay exact (issue 13) -----------------------------------------------
def test_parquet_decimals_are_numbers_and_unused_odd_columns_do_not_matter(tmp_path):
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"y": [1.0, 2.0, 3.0],
                      "dec": pa.array([decimal.Decimal(v) for v in ("1.00", "2.50", "3.25")], pa.decimal128(10, 2)),
                      "big": pa.array([2 ** 63 + 1, 2 ** 64 - 1, 0], pa.uint64())})
    pq.write_table(table, tmp_path / "d.parquet")
    df = read_table(str(tmp_path / "d.parquet"))
    assert df["dec"].tolist() == [1.0, 2.5, 3.25]
    assert df["big"].dtype == np.float64
    assert read_table(str(tmp_path / "d.parquet"), columns={"y", "dec"}).columns == ["y", "dec"]


def test_long_integer_ids_with_missing_values_stay_exact(tmp_path):
    ids = [12345678901234567, 12345678901234568, None]
    text = "y,g\n" + "\n".join(f"1,{'' if g is None else g}" for g in ids) + "\n"
    df = read_bytes(tmp_path, text.encode())
    assert df["g"].tolist() == ids
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"g": pa.array(ids, pa.int64())}), tmp_path / "d.parquet")
    assert read_table(str(tmp_path / "d.parquet"))["g"].tolist() == ids


@pytest.mark.parametrize("text, flagged", [
    ("Days\n0\n1\n.\n3\n4\n5\n", {"Days": ["."]}),
    ("x\n1\n2\nn/a\n4\n?\n6\n7\n8\n9\n10\n", {"x": ["n/a", "?"]}),
    ("g\na\nb\n1\n", None),                  # a text column with a number among its values: no warning
    ("x\n1\n2\n3\n", None),
])
def test_numbers_made_text_by_a_few_values_are_flagged(tmp_path, text, flagged):
    assert read_bytes(tmp_path, text.encode()).attrs.get("numeric_text") == flagged


def test_a_parquet_column_pyarrow_cannot_read_is_left_out(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"y": [1.0, 2.0], "bad": [1, 2], "g": ["a", "b"]}), tmp_path / "d.parquet")
    real = pq.read_table

    def fussy(src, columns=None, **kw):     # as pyarrow does for a type it does not implement
        if columns is None or "bad" in columns:
            raise pa.ArrowNotImplementedError("unsupported logical type in column 'bad'")
        return real(src, columns=columns, **kw)

    monkeypatch.setattr(pq, "read_table", fussy)
    df = read_table(str(tmp_path / "d.parquet"))
    assert df.columns == ["y", "g"] and "bad" in df.attrs["unreadable"]


@pytest.mark.parametrize("values, kind", [
    (["1234567890123456789012", "1234567890123456789013"], "str"),     # IDs beyond int64: their text
    (["2.4956e+302", "1e300"], "f"),                                   # whole as floats, but numbers
    (["6.02e23", "1.2e24"], "f"),
    (["100000000000000000000000.0", "3"], "f"),
])
def test_whole_numbers_beyond_2_53_are_text_only_when_written_as_digits(tmp_path, values, kind):
    df = read_bytes(tmp_path, ("v\n" + "\n".join(values) + "\n").encode())
    assert _kind(df["v"]) == kind
    if kind == "str":
        assert df["v"].tolist() == values
