"""Aggregation engines: one plan of sums (grouping keys and product columns) from a formula and a data
schema, rendered by DuckDB or Spark into the sufficient statistics (CrossProducts) the engine fits."""
