"""lmm: linear mixed models from the command line, with lme4's formulas and numbers."""

__version__ = "0.1.0"
