"""The layering holds: each package imports only packages of its own or earlier layers.

errors, distributions, linalg -> formula, results -> io -> design -> engine -> aggregate -> inference -> predict
-> fit, lm, compare, glmm, analysis, batch -> render -> cli.
The engine never imports formula or design (it sees sufficient statistics, not formulas).
Only cli imports typer; only render and cli import rich; nothing imports cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "lmmcli"

LAYERS = [
    {"__init__", "errors", "distributions", "linalg"},
    {"formula", "results"},
    {"io"},
    {"design"},
    {"engine"},
    {"aggregate"},
    {"inference"},
    {"predict"},
    {"fit", "fit_scale", "lm", "compare", "glmm", "analysis", "batch"},
    {"render"},
    {"cli"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
MODULES = sorted(str(p.relative_to(PKG).with_suffix("")) for p in PKG.rglob("*.py"))


def unit_of(module: str) -> str:
    """The layer unit of a module path inside lmmcli: its package, or the module itself at the top."""
    return module.split("/")[0] if "/" in module else module


def imports_of(module: str) -> set[str]:
    """Absolute lmmcli module names and top-level packages imported anywhere in a module (lazy imports count)."""
    tree = ast.parse((PKG / f"{module}.py").read_text())
    here = ["lmmcli", *module.split("/")[:-1]]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                out.update(f"{mod}.{a.name}" for a in node.names)
            else:
                out.add(node.module)
                if node.module == "lmmcli":
                    out.update(f"lmmcli.{a.name}" for a in node.names)
    return out


def test_every_module_has_a_layer():
    units = {unit_of(m) for m in MODULES}
    assert units <= set(RANK), units - set(RANK)


@pytest.mark.parametrize("module", MODULES)
def test_imports_only_earlier_layers(module):
    mine = unit_of(module)
    for imp in imports_of(module):
        if imp.startswith("lmmcli."):
            other = imp.split(".")[1]
            other = other if other in RANK else "__init__"   # from lmmcli import __version__
            assert RANK[other] <= RANK[mine], f"{module} imports {imp}, a later layer"


@pytest.mark.parametrize("module", [m for m in MODULES if unit_of(m) == "engine"])
def test_engine_sees_no_formula(module):
    for imp in imports_of(module):
        assert not imp.startswith(("lmmcli.formula", "lmmcli.design")), f"{module} imports {imp}"


@pytest.mark.parametrize("module", MODULES)
def test_ui_libraries_stay_in_their_layers(module):
    roots = {imp.split(".")[0] for imp in imports_of(module)}
    if unit_of(module) != "cli":
        assert "typer" not in roots and "click" not in roots
    if unit_of(module) not in ("cli", "render"):
        assert "rich" not in roots
