"""A saved model's analysis section: `anova|emmeans --model` give what the fit with its data gives."""

from __future__ import annotations

import json

import pytest

from lmmcli.errors import DataError, UsageError
from lmmcli.inference.anova import anova, anova_of
from lmmcli.inference.emmeans import emmeans, emmeans_of
from lmmcli.predict.predict import state_from_fit
from lmmcli.predict.saved_analysis import analysis_section, load_basis
from lmmcli.predict.saved_model import dumps
from tests.inference.analysis_reference import expected, fitted


def saved(case, tmp_path):
    fm, df = fitted(case)
    path = tmp_path / f"{case}.json"
    path.write_text(dumps(state_from_fit(fm), analysis_section(fm, df)))
    return load_basis(str(path)), fm, df


def _as_list(v):
    return [] if v is None else [v] if isinstance(v, str) else list(v)


@pytest.mark.parametrize("case", ["twoway_AxB", "twoway_functions", "twoway_missing", "twoway_ml", "gpa_jobsex",
                                  "twoway_sum", "twoway_weights"])
def test_saved_model_gives_the_same_tables(case, tmp_path):
    basis, fm, df = saved(case, tmp_path)
    for key in expected(case)["anova"]:
        type_, method = key.split("_")
        assert anova_of(basis, type_, method).to_dict() == anova(fm, df, type_, method).to_dict()
    for e in expected(case)["emmeans"]:
        args = (_as_list(e["specs"]), _as_list(e["by"]), True, e["adjust"], e["df"], e["level"])
        assert emmeans_of(basis, *args).to_dict() == emmeans(fm, df, *args).to_dict()


def test_ml_fit_has_no_kenward_roger(tmp_path):
    basis, _, _ = saved("twoway_ml", tmp_path)
    with pytest.raises(UsageError, match="REML"):
        anova_of(basis, "3", "kenward-roger")


def test_a_file_without_the_section_is_refused(tmp_path):
    fm, _ = fitted("sleep_slope")
    path = tmp_path / "plain.json"
    path.write_text(dumps(state_from_fit(fm)))
    with pytest.raises(DataError, match="no analysis section"):
        load_basis(str(path))
    doc = json.loads(dumps(state_from_fit(fm), analysis_section(fm, fitted("sleep_slope")[1])))
    del doc["analysis"]["layout"]["xtx"]
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="malformed"):
        load_basis(str(path))
