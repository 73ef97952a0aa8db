"""simulate: --fixed parsing, simulation from a specification (recovered by a fit), and lme4's simulate().

Recovery tolerances are sampling error: 4 standard errors, where the fixed effects' SEs come from
the fit's vcov and the sds' SEs from the large-sample approximations SE(sd) ~ sd / sqrt(2 G) for a
group-level sd (G groups), sigma / sqrt(2 (n - G p)) for the residual sd, (1 - rho^2) / sqrt(G)
for a correlation.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import REF
from lmmcli.cli import app
from lmmcli.errors import UsageError
from lmmcli.fit import fit
from lmmcli.predict.simulate import (FixedSpec, FixedSpecError, SimSpec, parse_fixed, sim_columns, simulate_model,
                             simulate_spec)

runner = CliRunner()
SLEEP = str(REF / "data" / "sleepstudy.csv")
FORMULA = "Reaction ~ Days + (Days|Subject)"


@pytest.mark.parametrize("text, intercept, coefs", [
    ("2 + 0.5*x", 2.0, {"x": 0.5}),
    ("2 - 0.3*x + z*1.5", 2.0, {"x": -0.3, "z": 1.5}),
    ("x", 0.0, {"x": 1.0}),
    ("-x + 1", 1.0, {"x": -1.0}),
    ("-1e-1*x + 3 + 2", 5.0, {"x": -0.1}),
    ("  .5 +2.5E1 * time_2 ", 0.5, {"time_2": 25.0}),
    ("7", 7.0, {}),
])
def test_parse_fixed(text, intercept, coefs):
    assert parse_fixed(text) == FixedSpec(intercept, coefs)


@pytest.mark.parametrize("text, message, span", [
    ("2 + ", "ends where a term", (4, 5)),
    ("2 x", "expected '+' or '-'", (2, 3)),
    ("x*y", "number times a name", (0, 3)),
    ("2*3", "number times a name", (0, 3)),
    ("2 + 0.5*x + x", "appears twice", (10, 11)),
    ("2 + exp(x)", "unexpected character '('", (7, 7)),
    ("__import__('os')", "unexpected character '('", (10, 10)),
    ("", "empty", (0, 1)),
    ("2 ** x", "number times a name", (0, 4)),
])
def test_parse_fixed_errors_point_at_the_problem(text, message, span):
    with pytest.raises(FixedSpecError) as err:
        parse_fixed(text)
    assert message in err.value.message and err.value.span == span and err.value.exit_code == 2


def spec(**kw):
    base = dict(groups=100, per_group=3, fixed=parse_fixed("2 + 0.5*x"), sd_group=0.5, sd_resid=0.25)
    return SimSpec(**{**base, **kw})


def test_simulate_spec_columns_and_seed():
    a = simulate_spec(spec(), seed=1234)
    assert list(a) == ["x", "y", "group"]
    assert all(len(v) == 300 for v in a.values())
    np.testing.assert_array_equal(a["group"], np.repeat(np.arange(1, 101), 3))
    b = simulate_spec(spec(), seed=1234)
    c = simulate_spec(spec(), seed=1235)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["y"], c["y"])


@pytest.mark.parametrize("kw, message", [
    (dict(groups=0), "--groups"),
    (dict(per_group=0), "--per-group"),
    (dict(sd_group=-1.0), "--sd-group"),
    (dict(sd_resid=float("nan")), "--sd-resid"),
    (dict(sd_slope=0.2, cor=1.5), "--cor"),
    (dict(cor=0.3), "--cor needs"),
    (dict(sd_slope=0.3, fixed=parse_fixed("2")), "--sd-slope needs"),
    (dict(fixed=parse_fixed("1 + 2*group")), "'group'"),
])
def test_spec_errors(kw, message):
    with pytest.raises(UsageError) as err:
        simulate_spec(spec(**kw), seed=1)
    assert message in err.value.message


def sd_se(sd, m):
    return sd / np.sqrt(2 * m)


@pytest.mark.parametrize("kw, formula", [
    (dict(per_group=3), "y ~ x + (1 | group)"),
    (dict(per_group=10, fixed=parse_fixed("1 - 0.8*x + 0.3*z"), sd_slope=0.4, cor=0.5, sd_group=0.7),
     "y ~ x + z + (x | group)"),
])
def test_fit_of_400_groups_recovers_the_parameters(kw, formula):
    s = spec(groups=400, **kw)
    df = pd.DataFrame(simulate_spec(s, seed=20240601))
    fm = fit(formula, df)
    res = fm.result()
    truth = [s.fixed.intercept] + list(s.fixed.coefs.values())
    est = np.array([fe.estimate for fe in res.fixed_effects])
    se = np.array([fe.std_error for fe in res.fixed_effects])
    assert np.all(np.abs(est - truth) < 4 * se), (est, truth, se)
    sds = {vc.term: vc.sd for vc in res.variance_components}
    n, G = len(df), s.groups
    assert abs(sds["(Intercept)"] - s.sd_group) < 4 * sd_se(s.sd_group, G)
    assert abs(sds[None] - s.sd_resid) < 4 * sd_se(s.sd_resid, n - G * len(fm.blocks[0].terms))
    if s.sd_slope:
        assert abs(sds["x"] - s.sd_slope) < 4 * sd_se(s.sd_slope, G)
        (cor,) = res.correlations
        assert abs(cor.correlation - s.cor) < 4 * (1 - s.cor ** 2) / np.sqrt(G)


def test_perfect_correlation_is_exact():
    cols = simulate_spec(spec(groups=50, per_group=4, sd_slope=0.5, cor=1.0, sd_resid=0.0), seed=5)
    df = pd.DataFrame(cols)
    resid = df["y"] - 2 - 0.5 * df["x"]
    # with cor = 1 the slope deviation is exactly sd_slope/sd_group times the intercept deviation
    per_group = df.assign(r=resid).groupby("group")
    for _, g in list(per_group)[:5]:
        b0, b1 = np.polyfit(g["x"], g["r"], 1)[::-1]
        assert b1 == pytest.approx(b0 * 0.5 / 0.5, abs=1e-9)


# -- from a fitted model -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sleep_fit():
    df = pd.read_csv(SLEEP)
    return fit(FORMULA, df), df


def test_simulate_model_moments_match_the_model(sleep_fit):
    """Mean X beta; covariance Z Sigma Z' + sigma^2 I within a subject, 0 across subjects."""
    fm, df = sleep_fit
    nsim = 4000
    sims = simulate_model(fm, nsim, seed=11)
    assert sims.shape == (180, nsim)
    (Sigma,) = fm.covariances()
    s2 = fm.sol.sigma ** 2
    mu = fm.design.X @ fm.sol.beta
    sd = np.sqrt(Sigma[0, 0] + 81 * Sigma[1, 1] + s2)
    assert np.all(np.abs(sims.mean(axis=1) - mu) < 4.5 * sd / np.sqrt(nsim))
    C = np.cov(sims)
    Z = fm.blocks[0].Z
    same = fm.blocks[0].codes[:, None] == fm.blocks[0].codes[None, :]
    expect = np.where(same, Z @ Sigma @ Z.T, 0.0) + s2 * np.eye(180)
    scale = np.sqrt(np.outer(np.diag(expect), np.diag(expect)))
    assert np.max(np.abs(C - expect) / scale) < 0.12                # ~5 SEs of a correlation from 4000 draws


def test_use_u_keeps_the_fitted_random_effects(sleep_fit):
    fm, _ = sleep_fit
    sims = simulate_model(fm, 3000, seed=2, use_u=True)
    assert np.all(np.abs(sims.mean(axis=1) - fm.fitted()) < 4.5 * fm.sol.sigma / np.sqrt(3000))
    np.testing.assert_allclose(sims.std(axis=1).mean(), fm.sol.sigma, rtol=0.03)


def test_simulate_model_is_seeded(sleep_fit):
    fm, _ = sleep_fit
    a, b, c = (simulate_model(fm, 2, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_sim_columns_leave_dropped_rows_empty():
    cols = sim_columns(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0, 2]), 3)
    assert list(cols) == ["sim_1", "sim_2"]
    np.testing.assert_array_equal(cols["sim_2"], [2.0, np.nan, 4.0])
    with pytest.raises(UsageError):
        sim_columns(np.zeros((1, 1)), np.array([0]), 1, taken={"sim_1"})


# -- the command line --------------------------------------------------------------------------
SPEC_ARGS = ["simulate", "--groups", "100", "--per-group", "3", "--fixed", "2 + 0.5*x", "--sd-group", "0.5",
             "--sd-resid", "0.25", "--seed", "1234"]


def test_cli_spec_writes_csv(tmp_path):
    out = tmp_path / "sim.csv"
    res = runner.invoke(app, SPEC_ARGS + ["-o", str(out)])
    assert res.exit_code == 0, res.stderr
    df = pd.read_csv(out)
    assert list(df.columns) == ["x", "y", "group"] and len(df) == 300
    again = runner.invoke(app, SPEC_ARGS)
    assert again.stdout == out.read_text()
    np.testing.assert_array_equal(df["y"], simulate_spec(spec(), seed=1234)["y"])


def test_cli_model_adds_sim_columns():
    res = runner.invoke(app, ["simulate", SLEEP, FORMULA, "--nsim", "3", "--seed", "4"])
    assert res.exit_code == 0, res.stderr
    df = pd.read_csv(io.StringIO(res.stdout))
    assert list(df.columns) == ["Reaction", "Days", "Subject", "sim_1", "sim_2", "sim_3"]
    assert len(df) == 180 and df.notna().all().all()


@pytest.mark.parametrize("args, message", [
    (["simulate"], "--groups"),
    (["simulate", SLEEP], "FORMULA"),
    (["simulate", SLEEP, FORMULA, "--groups", "3"], "not both"),
    (SPEC_ARGS[:-2] + ["--fixed", "2 + sin(x)"], "unexpected character"),
    (["simulate", SLEEP, FORMULA, "--nsim", "0"], "--nsim"),
    (SPEC_ARGS + ["--ml"], "for simulating from DATA FORMULA"),
    (SPEC_ARGS + ["--nsim", "3"], "for simulating from DATA FORMULA"),
    (SPEC_ARGS + ["--factor", "x"], "for simulating from DATA FORMULA"),
])
def test_cli_usage_errors(args, message):
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert message in res.stderr and res.stdout == ""
