"""Formatting results as tables, JSON, CSV and figures: formats only, computes nothing."""
