"""Fixed-effects df and p-values (lmmcli.inference.satterthwaite): Satterthwaite against lmerTest 3.1-3, residual, none, CLI.

Reference numbers: `fixef.df_satterthwaite` and `fixef.p_satterthwaite` in tests/reference/expected/*.json
(lmerTest 3.1-3 on lme4 1.1-31). check_reference.py allows 2% on df and 1e-3 on p; we hold 1e-3 and 1e-4.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from conftest import CASE_IDS, REF
from lmmcli.cli import app
from lmmcli.distributions import t_two_sided_p
from lmmcli.errors import UsageError
from lmmcli.fit import fit
from lmmcli.inference.satterthwaite import (RICHARDSON, Solves, check_method, deviance_varpar, fixed_inference, hessian, infer,
                              jacobian, varpar_covariance, vcov_gradients)

SLEEP = str(REF / "data" / "sleepstudy.csv")
runner = CliRunner()


# -- Satterthwaite against lmerTest -------------------------------------------------------------
@pytest.mark.parametrize("cid", CASE_IDS)
def test_satterthwaite_df_and_p_match_lmertest(fits, cases, cid):
    exp = cases[cid]["expected"]["fixef"]
    result = infer(fits[cid], fits[cid].result(), "satterthwaite")
    df = np.array([fe.df for fe in result.fixed_effects])
    p = np.array([fe.p_value for fe in result.fixed_effects])
    np.testing.assert_allclose(df, exp["df_satterthwaite"], rtol=1e-3)
    np.testing.assert_allclose(p, exp["p_satterthwaite"], atol=1e-4)
    assert result.extra["df_method"] == "satterthwaite"


@pytest.mark.parametrize("cid", CASE_IDS)
def test_unprofiled_deviance_equals_the_objective_at_the_optimum(fits, cid):
    fm = fits[cid]
    varpar = np.append(fm.sol.theta, fm.sol.sigma)
    assert deviance_varpar(fm.model, varpar) == pytest.approx(fm.sol.objective, abs=1e-8)
    # and sigma-hat minimises it over sigma (the profiled sigma)
    for factor in (0.9, 1.1):
        assert deviance_varpar(fm.model, np.append(fm.sol.theta, factor * fm.sol.sigma)) > fm.sol.objective


@pytest.mark.parametrize("cid", ["sleepstudy_slope", "penicillin_crossed"])
def test_each_theta_is_solved_once(fits, cid):
    """The Hessian's and the Jacobian's points share their thetas; sigma alone never needs a new solve."""
    fm = fits[cid]
    solve = Solves(fm.model)
    varpar_covariance(fm.model, fm.sol.theta, fm.sol.sigma, solve)
    after_hessian = solve.count
    vcov_gradients(fm.model, fm.sol.theta, fm.sol.sigma, solve)
    k = len(fm.sol.theta)
    assert after_hessian == 1 + 2 * RICHARDSON * k + 2 * RICHARDSON * k * (k - 1) // 2
    assert solve.count == after_hessian


# -- the finite-difference helpers ------------------------------------------------------------------
def _f(x):
    return x[0] ** 2 * x[1] + np.exp(x[1]) + np.sin(x[0] * x[2])


def _hess_f(x):
    a, b, c = x
    return np.array([[2 * b - c * c * np.sin(a * c), 2 * a, np.cos(a * c) - a * c * np.sin(a * c)],
                     [2 * a, np.exp(b), 0.0],
                     [np.cos(a * c) - a * c * np.sin(a * c), 0.0, -a * a * np.sin(a * c)]])


@pytest.mark.parametrize("x", [[1.0, 0.5, 2.0], [0.0, 0.0, 0.0], [-3.0, 1e-6, 0.3]])
def test_hessian_of_a_known_function(x):
    """Near 0 the step is the floor MIN_STEP, and rounding (~eps f / h^2) limits the accuracy to ~1e-5."""
    np.testing.assert_allclose(hessian(_f, x), _hess_f(np.array(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x", [[1.0, 2.0], [0.0, -1.5]])
def test_jacobian_of_a_known_function(x):
    g = lambda v: np.array([[v[0] * v[1], np.exp(v[0])], [v[1] ** 3, 1.0]])  # noqa: E731
    J = jacobian(g, x, rel=1e-4)        # numDeriv's jacobian default step
    np.testing.assert_allclose(J[0], [[x[1], np.exp(x[0])], [0, 0]], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(J[1], [[x[0], 0], [3 * x[1] ** 2, 0]], rtol=1e-8, atol=1e-8)


# -- the other methods -------------------------------------------------------------------------------
@pytest.mark.parametrize("cid", ["sleepstudy_slope", "gpa_job", "dyestuff"])
def test_residual_df_is_n_minus_p(fits, cid):
    fm = fits[cid]
    n, p = fm.design.X.shape
    result = infer(fm, fm.result(), "residual")
    for fe in result.fixed_effects:
        assert fe.df == n - p
        assert fe.p_value == pytest.approx(2 * stats.t.sf(abs(fe.statistic), n - p), rel=1e-12)
    assert result.extra["df_method"] == "residual"


def test_none_gives_lme4s_plain_t_values(fits):
    fm = fits["sleepstudy_slope"]
    plain = fm.result()
    result = infer(fm, plain, "none")
    for a, b in zip(result.fixed_effects, plain.fixed_effects):
        assert (a.df, a.p_value) == (None, None)
        assert a.statistic == pytest.approx(b.statistic, rel=1e-12)
    doc = result.to_dict()
    assert doc["df_method"] == "none" and doc["fixed_effects"][0]["p_value"] is None


@pytest.mark.parametrize("name, expected", [("satterthwaite", "satterthwaite"), ("Kenward_Roger", "kenward-roger"),
                                            (" residual", "residual"), ("NONE", "none")])
def test_method_names(name, expected):
    assert check_method(name) == expected


@pytest.mark.parametrize("name", ["satterwhaite", "kr", ""])
def test_unknown_method_is_a_usage_error(name):
    with pytest.raises(UsageError):
        check_method(name)


def test_p_values_with_infinite_df_are_normal():
    assert t_two_sided_p(np.array([1.96]), np.array([np.inf]))[0] == pytest.approx(2 * stats.norm.sf(1.96))


@pytest.mark.parametrize("method, df", [("satterthwaite", (0,)), ("kenward-roger", (0,)), ("residual", (0,)),
                                       ("none", None)])
def test_a_model_without_fixed_effects_has_no_rows(sleepstudy, method, df):
    """y ~ 0 + (1|g): X has no columns, so there is nothing to differentiate and no row to report."""
    fm = fit("Reaction ~ 0 + (1|Subject)", sleepstudy)
    inf = fixed_inference(fm, method)
    assert (None if inf.df is None else inf.df.shape) == df and inf.std_error.shape == (0,)
    assert infer(fm, fm.result(), method).fixed_effects == []


# -- the CLI --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, has_p", [("satterthwaite", True), ("kenward-roger", True), ("residual", True),
                                           ("none", False)])
def test_cli_json_carries_df_p_and_the_method(method, has_p):
    res = runner.invoke(app, ["fit", SLEEP, "Reaction ~ Days + (Days|Subject)", "--df", method, "--format", "json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["df_method"] == method
    for row in doc["fixed_effects"]:
        assert (row["p_value"] is not None) == has_p
        assert (row["df"] is not None) == has_p


def test_cli_default_is_satterthwaite_and_the_table_names_it():
    res = runner.invoke(app, ["fit", SLEEP, "Reaction ~ Days + (Days|Subject)"])
    assert res.exit_code == 0, res.stderr
    assert "Pr(>|t|)" in res.stdout and "Satterthwaite" in res.stdout


def test_cli_none_table_has_no_p_column():
    res = runner.invoke(app, ["fit", SLEEP, "Reaction ~ Days + (Days|Subject)", "--df", "none"])
    assert res.exit_code == 0 and "Pr(>|t|)" not in res.stdout and "t value" in res.stdout


@pytest.mark.parametrize("args, code, text", [
    (["--df", "kenward-roger", "--ml"], 2, "REML"),
    (["--df", "bogus"], 2, "bogus"),
])
def test_cli_bad_df_options(args, code, text):
    res = runner.invoke(app, ["fit", SLEEP, "Reaction ~ Days + (Days|Subject)", *args])
    assert res.exit_code == code
    assert res.stdout == ""
    assert text in res.stderr and "Traceback" not in res.stderr


# -- units: df do not depend on the units of y or of a covariate ---------------------------------------
@pytest.mark.parametrize("method", ["satterthwaite", "kenward-roger"])
@pytest.mark.parametrize("y_unit, x_unit", [(1.0, 1e6), (1.0, 1e-6), (1e-7, 1.0), (1e6, 1e6)])
def test_df_and_t_do_not_depend_on_units(fits, sleepstudy, method, y_unit, x_unit):
    """Steps near theta = 0, the Hessian's eigenvalue cut-off and KR's information inverse are all scale-free."""
    base_fm = fits["sleepstudy_slope"]
    base = fixed_inference(base_fm, method)
    d = sleepstudy.assign(R=sleepstudy["Reaction"] * y_unit, D=sleepstudy["Days"] * x_unit)
    fm = fit("R ~ D + (D|Subject)", d)
    inf = fixed_inference(fm, method)
    np.testing.assert_allclose(inf.df, base.df, rtol=1e-3)
    np.testing.assert_allclose(fm.sol.beta / inf.std_error, base_fm.sol.beta / base.std_error, rtol=1e-4)


@pytest.mark.parametrize("df_range", [(-0.5, 2.0), (2.0, 4.0), (4.0, 7.0)])
def test_t_two_sided_p_matches_scipy(df_range):
    """Our continued-fraction t tail (df <= 1e4) and scipy's (above) against scipy.special.stdtr."""
    from scipy import special

    rng = np.random.default_rng(7)
    df = 10 ** rng.uniform(*df_range, 500)
    t = 10 ** rng.uniform(-6, 3, 500)
    ref = 2 * special.stdtr(df, -t)
    got = t_two_sided_p(t, df)
    keep = ref > 1e-290
    np.testing.assert_allclose(got[keep], ref[keep], rtol=1e-11, atol=0)


def test_far_tails_at_large_df_are_scipys_zero():
    """Above LARGE_DF, a t whose tail is below double precision is 0 without scipy, as scipy says; nearer
    ones still come from scipy."""
    from scipy import special

    df = np.repeat([1.0001e4, 1e5, 981052.4, 1e7, 1e9], 400)
    t = np.tile(np.linspace(1.0, 400.0, 400), 5)
    np.testing.assert_array_equal(t_two_sided_p(t, df), 2 * special.stdtr(df, -t))
    assert t_two_sided_p(np.array([297.4]), np.array([981052.4]))[0] == 0.0
