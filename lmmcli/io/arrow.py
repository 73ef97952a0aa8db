"""pyarrow tables (from CSV, Parquet or Arrow IPC) as Frames of numpy columns, without pandas where possible.

Types map as pyarrow's own to_pandas maps them (integers with nulls and all-missing columns become float,
booleans with nulls objects, text objects with None), with three exceptions that keep values exact:
integers with nulls beyond 2^53 (IDs) stay Python integers, unsigned integers beyond int64 become float,
and decimals (decimal128/256) are numbers, not text. A column that cannot be converted at all is left out
and named in attrs["unreadable"], so an unused odd column never makes a file unreadable.
"""

from __future__ import annotations

import numpy as np

from lmmcli.io.frame import Frame, as_frame

EXACT_INTEGER = 2 ** 53       # integers beyond this are not all exactly floats
COMPUTE_WORTH = 100_000       # values from which pyarrow.compute's kernels repay its import (~25 ms)


def to_frame(table, text_dictionaries: bool = False) -> Frame:
    """A pyarrow table as a Frame; other types (dates, times, dictionaries) take pandas' mapping,
    categories keeping their order. text_dictionaries: dictionary-encoded text is plain text (the CSV
    reader encodes text columns so, to read each distinct value once; they carry no category order)."""
    cols, orders, unreadable = {}, {}, {}
    for i, f in enumerate(table.schema):
        try:
            col = _column(table.column(i), f.type, text_dictionaries)
            if col is None:
                sub = as_frame({f.name: table.column(i).to_pandas()})
                col, orders = sub[f.name], {**orders, **sub.orders}
        except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:   # pyarrow's errors derive from these
            unreadable[f.name] = f"{f.type}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            continue
        cols[f.name] = col
    frame = Frame(cols, orders=orders)
    if unreadable:
        frame.attrs["unreadable"] = unreadable
    return frame


def _column(col, t, text_dictionaries: bool = False):
    """One arrow column as numpy, or None for types pandas should map. Read from the arrow buffers:
    pyarrow's own numpy conversion imports pandas."""
    import pyarrow as pa

    types = pa.types
    if text_dictionaries and is_text_dictionary(t):
        return _chunks(col, _dictionary_texts, object)
    if types.is_null(t):
        return np.full(len(col), np.nan)
    if types.is_dictionary(t) and (types.is_integer(t.value_type) or types.is_floating(t.value_type)):
        return _column(col.cast(t.value_type), t.value_type)
    if types.is_decimal(t):
        return _chunks(col.cast(pa.float64(), safe=False), _numbers, np.float64)
    if types.is_unsigned_integer(t) and t.bit_width == 64 and _beyond(col, 2 ** 63 - 1):
        return _chunks(col.cast(pa.float64(), safe=False), _numbers, np.float64)   # as pandas: rounded
    if types.is_integer(t) and not col.null_count:
        return _chunks(_as(pa, col, t, pa.int64()), _numbers, np.int64)
    if types.is_integer(t) and _beyond(col, EXACT_INTEGER):
        return np.array(col.to_pylist(), dtype=object)      # exact IDs with missing values: ints and None
    if types.is_integer(t) or types.is_floating(t):
        return _chunks(_as(pa, col, t, pa.float64()), _numbers, np.float64)
    if types.is_boolean(t):
        return _chunks(col, _booleans, object if col.null_count else bool)
    if types.is_string(t) or types.is_large_string(t):
        return _chunks(col, _texts, object)
    return None


def _as(pa, col, t, target):
    """col cast to target; as it is when it has that type already (a cast imports pyarrow.compute, ~25 ms)."""
    return col if t == target else col.cast(target)


def _beyond(col, limit: int) -> bool:
    """Whether any value's magnitude exceeds limit (judged in floats: pyarrow.compute costs 0.4 s to import)."""
    import pyarrow as pa

    if len(col) == col.null_count:
        return False
    values = _chunks(col.cast(pa.float64(), safe=False), _numbers, np.float64)
    return bool(np.nanmax(np.abs(values)) > limit)


def _chunks(col, convert, dtype):
    """The chunks of an arrow column converted one by one and joined (a new, writable array)."""
    parts = [convert(chunk, dtype) for chunk in col.chunks]
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)


def _bits(buf, offset: int, n: int):
    """An arrow bitmap (validity or boolean values) as a bool array."""
    return np.unpackbits(np.frombuffer(buf, dtype=np.uint8), bitorder="little")[offset:offset + n].astype(bool)


def _valid(arr):
    """Which entries of an arrow array are not null."""
    buf = arr.buffers()[0]
    return np.ones(len(arr), dtype=bool) if buf is None or not arr.null_count else _bits(buf, arr.offset, len(arr))


def _numbers(arr, dtype):
    """An int64 or float64 arrow array; nulls (float only) become NaN."""
    values = np.frombuffer(arr.buffers()[1], dtype=dtype)[arr.offset:arr.offset + len(arr)]
    if arr.null_count:
        values = np.where(_valid(arr), values, np.nan)
    return values


def _booleans(arr, dtype):
    """A boolean arrow array; with nulls an object array of True/False/None."""
    values = _bits(arr.buffers()[1], arr.offset, len(arr))
    if dtype is bool:
        return values
    out = values.astype(object)
    out[~_valid(arr)] = None
    return out


def is_text_dictionary(t) -> bool:
    """A dictionary type with text values."""
    import pyarrow as pa

    return pa.types.is_dictionary(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type))


def _texts(arr, dtype):
    """A string arrow array as objects (None for null), decoding each distinct value once; short ones
    value by value (dictionary_encode imports pyarrow.compute, ~25 ms, more than 1e5 values take)."""
    if len(arr) < COMPUTE_WORTH:
        return np.array(arr.to_pylist(), dtype=object)
    return _dictionary_texts(arr.dictionary_encode(), dtype)


def _dictionary_texts(arr, dtype):
    """A dictionary array of text as objects (None for null): each distinct value decoded once."""
    labels = np.array(arr.dictionary.to_pylist() + [None], dtype=object)
    codes = arr.indices
    idx = np.frombuffer(codes.buffers()[1], dtype=codes.type.to_pandas_dtype())[codes.offset:codes.offset + len(codes)]
    return labels[np.where(_valid(codes), idx, len(labels) - 1)]
