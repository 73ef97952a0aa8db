"""What still needs rows after an aggregated fit, streamed batch by batch and never loaded whole:
predictions written to CSV or Parquet as each batch is predicted, and random effects of 1e6+ levels
as one columnar table (Parquet) instead of one object per row."""

from __future__ import annotations

import numpy as np

from lmmcli.distributions import interval_z
from lmmcli.predict.predict import ModelState, predict
from lmmcli.predict.ranef import merged_groups

BATCH_ROWS = 1 << 20


def prediction_batches(state: ModelState, batches, population=False, interval=None, level=0.95, keep=(),
                       source="the data", counts=None):
    """pyarrow Tables of predictions, one per input batch (pyarrow RecordBatches in input order);
    `row` counts on across batches. counts (a dict) collects n_missing and n_new_level."""
    import pyarrow as pa

    from lmmcli.io.arrow import to_frame as _to_frame

    offset = 0
    for batch in batches:
        frame = _to_frame(pa.Table.from_batches([batch]))
        p = predict(state, frame, population=population, interval=interval, level=level, keep=keep, source=source)
        n = len(p.prediction)
        cols = {"row": np.arange(offset + 1, offset + n + 1, dtype=np.int64)}
        cols.update({k: pa.array(v) for k, v in p.kept.items()})
        cols["prediction"] = pa.array(p.prediction, type=pa.float64())
        if interval:
            low, high = ("conf_low", "conf_high") if interval == "confidence" else ("pred_low", "pred_high")
            cols[low], cols[high] = pa.array(p.lower, type=pa.float64()), pa.array(p.upper, type=pa.float64())
        if p.new_level is not None:
            cols["new_level"] = pa.array(p.new_level, type=pa.bool_())
        if counts is not None:
            counts["n_missing"] = counts.get("n_missing", 0) + p.n_missing
            counts["n_new_level"] = counts.get("n_new_level", 0) + p.n_new_level
        offset += n
        yield pa.table(cols)


def counted(tables, report):
    """The same tables, calling report(rows so far) after each (progress on a terminal)."""
    n = 0
    for t in tables:
        yield t
        n += t.num_rows
        report(n)


def write_tables(tables, fh, parquet: bool) -> int:
    """Write a stream of same-schema tables to a binary file as Parquet or CSV; returns the rows written."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    writer, n = None, 0
    for t in tables:
        if writer is None:
            writer = pq.ParquetWriter(fh, t.schema) if parquet else pacsv.CSVWriter(fh, t.schema)
        writer.write_table(t)
        n += t.num_rows
    if writer is not None:
        writer.close()
    return n


def ranef_table(state: ModelState, level: float = 0.95):
    """lme4's ranef(condVar = TRUE) as one pyarrow Table (ranef.ranef_rows' columns and order), vectorised."""
    import pyarrow as pa

    q = interval_z(level)
    parts = []
    for g in merged_groups(state):
        nl, nt = g.b.shape
        est = g.b.ravel()
        se = np.sqrt(np.maximum(g.var.ravel(), 0.0))
        parts.append({"group": np.full(nl * nt, g.name, dtype=object),
                      "level": np.repeat(np.asarray(g.levels, dtype=object), nt),
                      "term": np.tile(np.asarray(g.terms, dtype=object), nl),
                      "estimate": est, "std_error": se, "conf_low": est - q * se, "conf_high": est + q * se})
    names = ["group", "level", "term", "estimate", "std_error", "conf_low", "conf_high"]
    return pa.table({k: np.concatenate([p[k] for p in parts]) for k in names})
