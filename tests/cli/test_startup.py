"""Start-up cost: `lmm --help` loads no numerical library; `lmm fit` loads none of the slow optional ones.

Import time dominates a small fit (scipy.stats alone cost 0.5 s, scipy.interpolate 0.2 s, pandas 0.25 s), so these
imports stay behind the options that need them.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REF

PROBE = """
import json, sys
sys.argv = ["lmm"] + {args!r}
from lmmcli.cli import main
try:
    main()
except SystemExit:
    pass
sys.stdout.flush()
sys.stderr.write(json.dumps(sorted(m for m in sys.modules)))
"""


def loaded_modules(*args) -> set[str]:
    """Modules loaded by running `lmm ARGS` in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))], capture_output=True, text=True,
                         timeout=120)
    return set(json.loads(out.stderr.strip().splitlines()[-1]))


def test_help_loads_no_numerics():
    mods = loaded_modules("--help")
    assert not {"numpy", "pandas", "scipy", "pyarrow"} & mods


def test_fit_skips_slow_optional_imports():
    mods = loaded_modules("fit", str(REF / "data" / "sleepstudy.csv"), "Reaction ~ Days + (Days|Subject)")
    assert "lmmcli.inference.satterthwaite" in mods          # the probe really ran a fit
    assert not {"scipy", "pandas", "matplotlib"} & mods   # a one-term fit and its t tests need neither


def test_small_fits_skip_arrow_compute_and_masked_arrays():
    """pyarrow.compute (~25 ms of import) and numpy.ma (~7 ms, np.unique's and np.quantile's first call)
    are not needed to read a small CSV with text columns, code its factors and summarise the residuals."""
    glmm = loaded_modules("fit", str(REF / "glmm" / "data" / "verbagg.csv"),
                          "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", "--family", "binomial")
    assert "lmmcli.glmm.pirls" in glmm
    linear = loaded_modules("fit", str(REF / "data" / "sleepstudy.csv"), "Reaction ~ Days + (Days|Subject)")
    for mods in (glmm, linear):
        assert not {"pyarrow.compute", "numpy.ma", "scipy", "pandas"} & mods


def test_only_the_invoked_command_is_built():
    """main() registers only the command its first argument names: that command's help and usage errors
    read as with every command registered; --help and an unknown name keep them all."""
    from typer.testing import CliRunner

    from lmmcli.cli import _only_invoked, app

    runner = CliRunner()
    for args in (["fit", "--help"], ["plot", "--help"], ["predict", "--bogus"]):
        only = _only_invoked(app, args[:1])
        assert len(only.registered_commands) == 1
        full, fast = runner.invoke(app, args, prog_name="lmm"), runner.invoke(only, args, prog_name="lmm")
        assert fast.output == full.output and fast.exit_code == full.exit_code
    for first in ([], ["--help"], ["fitt"]):
        assert _only_invoked(app, first) is app
