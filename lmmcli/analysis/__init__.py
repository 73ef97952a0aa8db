"""Analyses that refit models: tests of random terms (ranova), the side-by-side model table."""
