"""lmm table writes through output.write like every command: each format, on stdout and in a file, is
exactly what render.model_table lays out for the library's ModelTable (JSON: the document)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from conftest import REF
from lmmcli.analysis.model_table import model_table
from lmmcli.cli import app
from lmmcli.io.read import read_table
from lmmcli.render import model_table as render
from lmmcli.render.text import to_json

GPA = str(REF / "analysis" / "data" / "gpa.csv")
FORMULAS = ["gpa ~ occasion + (1|student)", "gpa ~ job + sex + highgpa + (1 | student)"]
LAYOUT = {"table": lambda t: render.as_table(t, 100, False), "markdown": render.as_markdown, "html": render.as_html,
          "csv": render.as_csv, "json": lambda t: to_json(t.to_dict())}
EXTENSIONS = {"table": "txt", "markdown": "md", "html": "html", "csv": "csv", "json": "json"}


@pytest.fixture(scope="module")
def result():
    return model_table(FORMULAS, read_table(GPA), source="gpa.csv")


@pytest.mark.parametrize("fmt", LAYOUT)
def test_stdout_is_the_renderers_text(result, fmt):
    res = CliRunner().invoke(app, ["table", GPA, *FORMULAS, "-f", fmt])
    assert res.exit_code == 0, res.stderr
    assert res.stdout == LAYOUT[fmt](result)


@pytest.mark.parametrize("fmt", LAYOUT)
def test_file_is_the_renderers_text(result, fmt, tmp_path):
    out = tmp_path / f"models.{EXTENSIONS[fmt]}"
    res = CliRunner().invoke(app, ["table", GPA, *FORMULAS, "-o", str(out)])
    assert res.exit_code == 0 and res.stdout == "", res.stderr
    assert out.read_text() == LAYOUT[fmt](result)
