"""Any finite data fit or fail cleanly (issue 13): exact fits are reported, unrepresentable variances refused.

Before: y or x at 1e300 / 1e200 and one y = 1e300 raised LinAlgError (a traceback); a response constant
within each group fitted 'converged' with sigma 1e-6 and no warning.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lmmcli.cli import app
from lmmcli.errors import NumericalError
from lmmcli.fit import fit

F = "Reaction ~ Days + (Days|Subject)"


def test_an_exact_fit_is_reported_and_not_converged(sleepstudy):
    exact = sleepstudy.assign(Reaction=sleepstudy.Subject.astype(float))     # constant within each Subject
    fm = fit(F, exact)
    r = fm.result()
    assert not r.converged
    assert any("fit the response exactly" in w and "unbounded" in w for w in r.warnings)


def test_an_ordinary_fit_is_not_called_exact(fits):
    assert not any("exactly" in w for fm in fits.values() for w in fm.result().warnings)


def _extremes(df):
    big_y = df.assign(Reaction=df.Reaction * 1e300)
    big_x = df.assign(Days=df.Days * 1e200)
    outlier = df.copy()
    outlier.loc[5, "Reaction"] = 1e300
    return {"y at 1e300": (big_y, "Reaction"), "x at 1e200": (big_x, "Days"), "one y of 1e300": (outlier, "Reaction")}


@pytest.mark.parametrize("case", ["y at 1e300", "x at 1e200", "one y of 1e300"])
def test_unrepresentable_variances_fail_cleanly(sleepstudy, case, tmp_path):
    df, column = _extremes(sleepstudy)[case]
    with pytest.raises(NumericalError, match=f"'{column}' has values of magnitude"):
        fit(F, df)
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    res = CliRunner().invoke(app, ["fit", str(path), F])
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.startswith("error: the fit's variances cannot be represented") and "Traceback" not in res.stderr


def test_large_but_representable_numbers_fit(sleepstudy):
    fm = fit(F, sleepstudy.assign(Reaction=sleepstudy.Reaction * 1e100, Days=sleepstudy.Days * 1e50))
    base = fit(F, sleepstudy)
    assert fm.sol.sigma / 1e100 == pytest.approx(base.sol.sigma, rel=1e-5)
    assert fm.sol.beta[1] / 1e50 == pytest.approx(base.sol.beta[1], rel=1e-5)
