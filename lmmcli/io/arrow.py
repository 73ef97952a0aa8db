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


def to_frame(table) -> Frame:
    """A pyarrow table as a Frame; other types (dates, times, dictionaries) take pandas' mapping,
    categories keeping their order."""
    cols, orders, unreadable = {}, {}, {}
    for i, f in enumerate(table.schema):
        try:
            col = _column(table.column(i), f.type)
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


def _column(col, t):
    """One arrow column as numpy, or None for types pandas should map. Read from the arrow buffers:
    pyarrow's own numpy conversion imports pandas."""
    import pyarrow as pa

    types = pa.types
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


def _texts(arr, dtype):
    """A string arrow array as objects (None for null), decoding each distinct value once."""
    import pyarrow as pa

    enc = arr.dictionary_encode()
    labels = np.array(enc.dictionary.to_pylist() + [None], dtype=object)
    codes = enc.indices.cast(pa.int64())
    idx = np.frombuffer(codes.buffers()[1], dtype=np.int64)[codes.offset:codes.offset + len(codes)]
    return labels[np.where(_valid(codes), idx, len(labels) - 1)]
