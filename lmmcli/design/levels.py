"""Factor levels and their labels as R orders and prints them (308 not 308.0, TRUE/FALSE, numbers in
numeric order), and the codes of grouping factors and of their interactions (a:b).

Labels round-trip: an integral number prints as an integer, any other number as its shortest repr, so
two distinct values never share a label (R's 15 significant digits merge 16-digit IDs)."""

from __future__ import annotations

import numpy as np

from lmmcli.errors import DataError
from lmmcli.io.arrow import COMPUTE_WORTH
from lmmcli.io.frame import as_frame, column_array, missing


def value_labels(values) -> np.ndarray:
    """Text labels for a column's values, as R prints them (308 not 308.0, TRUE/FALSE)."""
    v = column_array(values)
    kind = v.dtype.kind
    if kind == "b":
        return np.where(v, "TRUE", "FALSE").astype(object)
    if kind in "iu":
        return v.astype(str).astype(object)
    if kind == "f":
        return np.array([number_label(x) for x in v.tolist()], dtype=object)
    values = v.tolist()
    if all(type(x) is str for x in values):         # text is its own label
        return np.array(values, dtype=object)
    return np.array([number_label(x) if isinstance(x, float) else str(x) for x in values], dtype=object)


EXACT_INTEGER = 2.0 ** 53     # every integer up to here is exactly a float


def number_label(x: float) -> str:
    """A float's label that reads back as the same float: 308 (not 308.0), 0.1, 1e-200, Inf."""
    if x != x:
        return "NA"
    if x in (float("inf"), float("-inf")):
        return "Inf" if x > 0 else "-Inf"
    if x.is_integer() and abs(x) < EXACT_INTEGER:
        return str(int(x))
    text = repr(x)
    return text[:-2] if text.endswith(".0") else text


def sorted_levels(values) -> tuple[str, ...]:
    """Distinct values in R's order: numeric order for numbers, FALSE<TRUE, text order for text."""
    v = column_array(values)
    v = v[~missing(v)]
    if v.dtype != object:
        return tuple(value_labels(np.unique(v)))
    uniq = sorted(dict.fromkeys(v.tolist()), key=text_order)
    return tuple(value_labels(np.array(uniq, dtype=object)))


def text_order(value) -> tuple[str, str]:
    """Sort key for text levels as R sorts them in an English UTF-8 locale (factor(), read.csv):
    case-insensitive first ("apple" < "Banana"), and on a tie lower case before upper ("a" < "A").
    Plain code-point order, R's C locale, would put every capital first."""
    text = str(value)
    return text.casefold(), text.swapcase()


def is_factor_column(series, forced: bool) -> bool:
    """Text, boolean and categorical columns are factors; numbers only when --factor names them."""
    return forced or not is_number(series)


def is_number(col) -> bool:
    """Integers and floats (not booleans, text or other objects)."""
    return col.dtype.kind in "iufc"



def group_codes(df, group: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes and labels of a grouping factor, or of the interaction a:b of several (levels present only)."""
    df = as_frame(df)
    codes, labels = None, None
    for col in group:
        c, uniq = _factorize(df[col], df.orders.get(col))
        lab = value_labels(uniq)
        if codes is None:
            codes, labels = c.astype(np.int64), lab
        else:
            combo = codes * len(lab) + c
            u, inv = np.unique(combo, return_inverse=True)
            labels = np.array([f"{labels[k // len(lab)]}:{lab[k % len(lab)]}" for k in u], dtype=object)
            codes = inv.astype(np.int64)
    _check_distinct(group, labels)
    return codes, tuple(labels)


def _check_distinct(group, labels) -> None:
    """Two levels that print alike would be merged by every report and prediction: refuse them
    (an interaction's ':' can join two different pairs into one label: "a:b" + "c" and "a" + "b:c")."""
    if len(set(labels)) == len(labels):
        return
    seen, dup = set(), None
    for lab in labels:
        if lab in seen:
            dup = lab
            break
        seen.add(lab)
    raise DataError(f"two levels of the grouping factor {':'.join(group)} are both labelled '{dup}'",
                    hint="rename the levels so that each has its own label")


def _factorize(v: np.ndarray, order=None):
    """(codes, sorted distinct values): numeric order for numbers, R's text order for text (text_order);
    a categorical column's present categories in their own order."""
    if order is not None:
        present = set(v.tolist())
        uniq = np.array([c for c in order if c in present], dtype=object)
        index = {u: i for i, u in enumerate(uniq.tolist())}
        return np.array([index[x] for x in v.tolist()], dtype=np.int64), uniq
    if v.dtype.kind in "iu" and len(v):
        return _factorize_ints(v)
    if v.dtype != object:
        uniq, inv = np.unique(v, return_inverse=True)
        return inv.reshape(-1).astype(np.int64), uniq
    encoded = _dictionary_encode(v)
    if encoded is not None:
        inv, uniq = encoded
    else:
        try:
            uniq, inv = np.unique(v, return_inverse=True)     # in code-point order; sorted below
        except TypeError:
            uniq = np.array(list(dict.fromkeys(v.tolist())), dtype=object)
            index = {u: i for i, u in enumerate(uniq.tolist())}
            inv = np.array([index[x] for x in v.tolist()], dtype=np.int64)
    # only the (small) set of distinct values is put in R's order
    order = sorted(range(len(uniq)), key=lambda i: text_order(uniq[i]))
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    return rank[inv.reshape(-1)], uniq[order]


def _dictionary_encode(v: np.ndarray):
    """(codes, distinct values in order of appearance) of a text column by pyarrow's dictionary_encode
    (C, no sort: 1e6 ids in ~0.1 s, where np.unique's sort of Python strings took over a second);
    None when the column holds anything but text.

    The arrow array is built from one joined UTF-8 buffer: pa.array() and to_numpy() would import
    pandas (0.3-0.7 s of start-up) for a numpy object array. Below COMPUTE_WORTH values a dict does it
    (as fast there, and pyarrow.compute's import, ~25 ms, is not paid)."""
    if len(v) < COMPUTE_WORTH:
        return _dict_encode(v)
    import pyarrow as pa

    try:
        data = "\x00".join(v).encode("utf-8")
    except (TypeError, UnicodeError):
        return None
    raw = np.frombuffer(data, dtype=np.uint8)
    seps = np.flatnonzero(raw == 0)
    if len(seps) != len(v) - 1:          # a value holds a NUL itself
        return None
    offsets = np.empty(len(v) + 1, dtype=np.int64)
    offsets[0], offsets[1:-1], offsets[-1] = 0, seps - np.arange(len(seps)), len(raw) - len(seps)
    arr = pa.LargeStringArray.from_buffers(len(v), pa.py_buffer(offsets), pa.py_buffer(np.delete(raw, seps)))
    enc = arr.dictionary_encode()
    idx = enc.indices
    codes = np.frombuffer(idx.buffers()[1], dtype=idx.type.to_pandas_dtype())[idx.offset:idx.offset + len(idx)]
    return codes.astype(np.int64), np.array(enc.dictionary.to_pylist(), dtype=object)


def _dict_encode(v: np.ndarray):
    """_dictionary_encode by a dict, value by value; None when the column holds anything but text."""
    values = v.tolist()
    if not all(isinstance(x, str) for x in values):
        return None
    index: dict = {}
    first = index.setdefault
    codes = np.array([first(x, len(index)) for x in values], dtype=np.int64)
    return codes, np.array(list(index), dtype=object)


def _factorize_ints(v: np.ndarray):
    """_factorize for integers: by counting when their range is not much wider than their number
    (O(n); np.unique's sort took 1.6 s of a 1e7-row design), else by sorting."""
    lo, hi = int(v.min()), int(v.max())
    if hi - lo > 4 * len(v) + 1024:
        uniq, inv = np.unique(v, return_inverse=True)
        return inv.reshape(-1).astype(np.int64), uniq
    offset = (v - lo).astype(np.intp)
    present = np.zeros(hi - lo + 1, dtype=bool)
    present[offset] = True
    rank = np.cumsum(present) - 1
    return rank[offset].astype(np.int64), (np.flatnonzero(present) + lo).astype(v.dtype)
