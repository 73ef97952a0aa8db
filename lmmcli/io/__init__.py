"""Reading tables (CSV, TSV, Parquet, stdin) into a Frame, and writing outputs atomically."""
