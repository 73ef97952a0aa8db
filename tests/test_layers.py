"""The layering holds: each module imports only modules of its own or earlier layers.

formula -> data -> design -> engine (pls, optimize) -> results -> fit -> features -> render -> cli.
Only cli imports typer; only render modules and cli import rich; nothing imports cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "lmmcli"

LAYERS = [
    {"__init__", "errors", "blas", "distributions", "backspline"},
    {"formula"},
    {"data", "frame"},
    {"levels"},
    {"checks"},
    {"design"},
    {"pls_kernels"},
    {"pls"},
    {"optimize"},
    {"scaling"},
    {"results"},
    {"fit"},
    {"inference", "kenward_roger", "vc", "confint", "profile", "bootstrap", "predict", "ranef",
     "model_io", "lm", "compare", "simulate", "plotdata"},
    {"summary"},
    {"output"},
    {"render", "render_plot", "plot"},
    {"cli"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
MODULES = sorted(p.stem for p in PKG.glob("*.py"))


def imports_of(name: str) -> set[str]:
    """Top-level package names and lmmcli modules imported anywhere in a module (lazy imports count)."""
    tree = ast.parse((PKG / f"{name}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = node.module or ""
                out.update(f"lmmcli.{base or a.name}".rstrip(".") for a in node.names)
            else:
                out.add(node.module)
    return out


def test_every_module_has_a_layer():
    assert set(MODULES) <= set(RANK), set(MODULES) - set(RANK)


@pytest.mark.parametrize("name", MODULES)
def test_imports_only_earlier_layers(name):
    for imp in imports_of(name):
        if imp.startswith("lmmcli."):
            other = imp.split(".")[1]
            other = other if (PKG / f"{other}.py").exists() else "__init__"   # from . import __version__
            assert RANK[other] <= RANK[name], f"{name} imports {other}, a later layer"


@pytest.mark.parametrize("name", MODULES)
def test_ui_libraries_stay_in_their_layers(name):
    roots = {imp.split(".")[0] for imp in imports_of(name)}
    if name != "cli":
        assert "typer" not in roots and "click" not in roots
    if name not in ("cli", "render", "render_plot"):
        assert "rich" not in roots
