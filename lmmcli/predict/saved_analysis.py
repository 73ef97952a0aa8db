"""The "analysis" section of a saved model: what `lmm anova|emmeans --model FILE` need (inference/basis.py),
written by `lmm fit --save` for mixed models and read back without the data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lmmcli.errors import DataError, LmmError
from lmmcli.inference.basis import basis_from_fit, from_section, to_section
from lmmcli.predict.saved_model import load


def analysis_section(fm, data) -> dict:
    """{"analysis": section} for a mixed model fitted to `data`; {} for a model without random terms, or
    when a piece cannot be computed (the saved model then serves predictions, and anova asks for DATA)."""
    if not fm.blocks:
        return {}
    try:
        return {"analysis": to_section(basis_from_fit(fm, data))}
    except (LmmError, ValueError, ArithmeticError, np.linalg.LinAlgError):
        return {}


def load_basis(path: str):
    """The AnalysisBasis of a saved model file; a DataError when it has no analysis section."""
    state = load(path)
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    section = doc.get("analysis")
    if not isinstance(section, dict):
        raise DataError(f"'{Path(path).name}' has no analysis section (a model without random terms, or saved "
                        "by an older lmm)", hint="give DATA FORMULA, or save it again with lmm fit --save")
    try:
        return from_section(state, section)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DataError(f"malformed analysis section in '{Path(path).name}': {exc}",
                        hint="save it again with `lmm fit ... --save FILE`") from exc
