"""The PLS engine at fixed theta, against lme4 1.1-31 (tests/reference/expected/*.json) and against itself.

At lme4's own theta our objective must equal lme4's reml_criterion / deviance: these JSON values
were computed by lme4 at exactly that theta (printed to 15 digits), so the tolerance is tight
(1e-6 absolute). beta, sigma and the conditional modes and sds of b are compared at the same theta.
The closed-form 1x1/2x2 kernels are checked against the general np.linalg path on random stacks, and
the crossed-term machinery (fixed fill-in pattern, in-place potrf) against a dense brute-force
objective written straight from BMBW (2015) eqs. (34) and (41).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import CASE_IDS, CASES, REF, read_case_data
from lmmcli.engine import pls
from lmmcli.engine import kernels as kern
from lmmcli.design.design import build_design
from lmmcli.formula import parse_formula

OBJ_ABS = 1e-6      # objective at lme4's theta vs lme4's value
EST_REL = 1e-6      # beta, sigma at lme4's theta
RANEF_REL = 1e-5    # conditional modes / sds, relative to the largest of that (group, term)


def _model(case, reml=None):
    design = build_design(parse_formula(case["formula"]), read_case_data(case), case["factors"])
    return design, pls.PlsModel.from_rows(design.X, design.y, design.blocks, case["reml"] if reml is None else reml)


@pytest.fixture(scope="module")
def models():
    return {c["id"]: _model(c) for c in CASES}


def _case(cid):
    return next(c for c in CASES if c["id"] == cid)


@pytest.mark.parametrize("cid", CASE_IDS)
def test_objective_at_lme4_theta(models, cid):
    exp = _case(cid)["expected"]
    _, model = models[cid]
    want = exp["reml_criterion"] if exp["reml"] else exp["deviance"]
    assert model.objective(np.array(exp["theta"], dtype=float)) == pytest.approx(want, abs=OBJ_ABS)


@pytest.mark.parametrize("cid", CASE_IDS)
def test_solution_at_lme4_theta(models, cid):
    exp = _case(cid)["expected"]
    _, model = models[cid]
    sol = model.solve(np.array(exp["theta"], dtype=float))
    np.testing.assert_allclose(sol.beta, exp["fixef"]["estimate"], rtol=EST_REL, atol=1e-9)
    assert sol.sigma == pytest.approx(exp["sigma"], rel=EST_REL)


def _ranef_by_group(exp):
    """lme4's condval and condsd sorted, per (grouping factor with sorted parts, term)."""
    out = {}
    r = exp["ranef"]
    for g, t, v, s in zip(r["grpvar"], r["term"], r["condval"], r["condsd"]):
        out.setdefault((":".join(sorted(g.split(":"))), t), []).append((v, s))
    return {k: (np.sort([v for v, _ in vs]), np.sort([s for _, s in vs])) for k, vs in out.items()}


@pytest.mark.parametrize("cid", CASE_IDS)
def test_random_effects_at_lme4_theta(models, cid):
    exp = _case(cid)["expected"]
    design, model = models[cid]
    sol = model.solve(np.array(exp["theta"], dtype=float))
    want = _ranef_by_group(exp)
    for blk, b, V in zip(design.blocks, sol.b, sol.cond_var):
        for j, term in enumerate(blk.terms):
            vals, sds = want[(":".join(sorted(blk.group.split(":"))), term)]
            scale = max(np.abs(vals).max(), 1e-8)
            np.testing.assert_allclose(np.sort(b[:, j]), vals, atol=RANEF_REL * scale)
            np.testing.assert_allclose(np.sort(np.sqrt(V[:, j, j])), sds, rtol=RANEF_REL)


# -- the closed-form kernels agree with the general path ------------------------------------------
def _spd_stack(rng, l, p):
    A = rng.standard_normal((l, p, p))
    return A @ A.transpose(0, 2, 1) + p * np.eye(p)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_small_kernels_match_numpy(p):
    rng = np.random.default_rng(p)
    M = _spd_stack(rng, 50, p)
    R = rng.standard_normal((50, p, 4))
    L = kern.chol(M)
    np.testing.assert_allclose(L, np.linalg.cholesky(M), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(kern.fsolve(L, R), np.linalg.solve(L, R), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(kern.bsolve(L, R), np.linalg.solve(L.transpose(0, 2, 1), R), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(kern.inv_lower(L), np.linalg.inv(L), rtol=1e-10, atol=1e-12)
    assert kern.logdet(L) == pytest.approx(np.linalg.slogdet(M)[1].sum(), rel=1e-12)
    T = np.tril(rng.standard_normal((p, p)))
    np.testing.assert_allclose(kern.congruence(T, M), T.T[None] @ M @ T[None], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(kern.left_mult_t(T, R), T.T[None] @ R, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(kern.stack_mult(M, R), M @ R, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("p", [1, 2])
def test_first_block_closed_form_matches_general(p):
    """log|M|, sum_g Z_g' S_g Z_g and S_g = T M_g^{-1} T' in closed form vs via L11 and C1."""
    rng = np.random.default_rng(10 + p)
    D = _spd_stack(rng, 40, p) - p * np.eye(p)       # a Gram matrix may be singular: M = T'DT + I is not
    Z = rng.standard_normal((40, p, 3))
    T = np.tril(rng.standard_normal((p, p)))
    T[np.diag_indices(p)] = np.abs(T[np.diag_indices(p)])
    ld, CtC, S = kern.first_block(T, *kern.soa(D, Z))
    M = T.T[None] @ D @ T[None] + np.eye(p)
    C1 = np.linalg.solve(np.linalg.cholesky(M), T.T[None] @ Z).reshape(-1, 3)
    assert ld == pytest.approx(np.linalg.slogdet(M)[1].sum(), rel=1e-12)
    np.testing.assert_allclose(CtC, C1.T @ C1, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(S, T[None] @ np.linalg.inv(M) @ T.T[None], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cid", CASE_IDS)
def test_fast_objective_matches_full_factor(models, cid):
    _, model = models[cid]
    theta = model.theta0 * 0.8 + np.where(model.lower == 0, 0.05, 0.1)
    full = model._criterion(model._factor(theta, full=True))[0]
    assert model.objective(theta) == pytest.approx(full, rel=1e-11)


@pytest.mark.parametrize("p", [1, 2])
def test_chol_rejects_indefinite(p):
    M = -np.ones((3, p, p))
    with pytest.raises(np.linalg.LinAlgError):
        kern.chol(M)


def test_pair_sums_match_loops():
    rng = np.random.default_rng(0)
    n, nlev = 200, 7
    codes = rng.integers(0, nlev, n)
    x = rng.standard_normal(n)
    Z = np.column_stack([np.ones(n), x])                       # intercept and a slope...
    Xy = np.column_stack([np.ones(n), x, rng.standard_normal((n, 2))])  # ...that are also in X
    D, ZX = kern.level_cross(codes, nlev, Z, [Z, Xy])
    for out, B in ((D, Z), (ZX, Xy)):
        want = np.zeros((nlev, 2, B.shape[1]))
        for r in range(n):
            want[codes[r]] += np.outer(Z[r], B[r])
        np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


def test_pair_sums_of_many_columns_are_the_same_to_the_last_bit():
    """level_cross's sparse product for a wide [X y] sums each level's rows in row order, as the
    bincount per column does: the same numbers exactly, so wide fits are unchanged by it."""
    rng = np.random.default_rng(1)
    n, nlev = 900, 30
    codes = rng.integers(0, nlev, n)
    x = rng.standard_normal(n)
    Z = np.column_stack([np.ones(n), x])
    Xy = np.column_stack([np.ones(n), (rng.integers(0, 4, (n, kern.SPARSE_GRAM_MIN)) == 0).astype(float),
                          x, rng.standard_normal(n)])
    D, ZX = kern.level_cross(codes, nlev, Z, [Z, Xy])
    for out, B in ((D, Z), (ZX, Xy)):
        want = np.empty_like(out)
        for i in range(2):
            for j in range(B.shape[1]):
                want[:, i, j] = kern._level_sum(codes, nlev, (Z[:, i], kern._is_ones(Z[:, i])),
                                                (B[:, j], kern._is_ones(B[:, j])))
        np.testing.assert_array_equal(out, want)


def test_deviance_parts_of_a_wide_model_come_from_the_kept_solve(monkeypatch):
    """With many fixed effects the p x p Cholesky is the cost: deviance_parts solves once and the
    solution at the same theta (engine.fit's exact-fit check, then the fit's solution) reuses it."""
    rng = np.random.default_rng(2)
    n, levels = 900, 260
    f = np.concatenate([np.arange(levels), rng.integers(0, levels, n - levels)])
    g = rng.integers(0, 20, n)
    df = pd.DataFrame({"y": rng.normal(size=levels)[f] + rng.normal(size=20)[g] + rng.normal(size=n),
                       "f": [f"f{i:03d}" for i in f], "g": [f"g{i}" for i in g]})
    design = build_design(parse_formula("y ~ f + (1|g)"), df)
    model = pls.PlsModel.from_rows(design.X, design.y, design.blocks)
    fresh = pls.PlsModel.from_rows(design.X, design.y, design.blocks).solve(np.array([0.7]), cond_var=False)
    calls = []
    factor = model._factor
    monkeypatch.setattr(model, "_factor", lambda theta, full=False: calls.append(full) or factor(theta, full))
    parts = model.deviance_parts(np.array([0.7]))
    again = model.solve(np.array([0.7]), cond_var=False)
    assert calls == [True]                                        # one factor for both
    assert parts == (fresh.logdet_L, fresh.pwrss, fresh.logdet_RX)
    np.testing.assert_array_equal(again.beta, fresh.beta)
    np.testing.assert_array_equal(again.RX, fresh.RX)
    assert model.solve(np.array([0.3]), cond_var=False).pwrss != fresh.pwrss    # another theta: afresh
    assert calls == [True, True]


# -- crossed and nested terms: fixed pattern vs fallback vs brute force ------------------------------
def _dense_ZLambda(design, theta):
    """Z Lambda as a dense matrix (small data only)."""
    Zs, Ls = [], []
    for blk, T in zip(design.blocks, pls.split_theta(design.blocks, theta)):
        Zk = np.zeros((design.n, blk.nlevels * blk.p))
        for j in range(blk.p):
            Zk[np.arange(design.n), blk.codes * blk.p + j] = blk.Z[:, j]
        Zs.append(Zk)
        Ls.append(np.kron(np.eye(blk.nlevels), T))
    return np.hstack(Zs) @ _block_diag(Ls)


def _dense_objective(design, theta, reml):
    """BMBW (34)/(41) from dense matrices: Lambda, Z, and the full Cholesky factor (small data only)."""
    ZL = _dense_ZLambda(design, theta)
    X, y, n, p = design.X, design.y, design.n, design.X.shape[1]
    A = np.block([[ZL.T @ ZL + np.eye(ZL.shape[1]), ZL.T @ X], [X.T @ ZL, X.T @ X]])
    sol = np.linalg.solve(A, np.concatenate([ZL.T @ y, X.T @ y]))
    u, beta = sol[:ZL.shape[1]], sol[ZL.shape[1]:]
    pwrss = np.sum((y - X @ beta - ZL @ u) ** 2) + u @ u
    ld_L = np.linalg.slogdet(ZL.T @ ZL + np.eye(ZL.shape[1]))[1]
    if reml:
        ld_RX = np.linalg.slogdet(A)[1] - ld_L
        return ld_L + ld_RX + (n - p) * (1 + np.log(2 * np.pi * pwrss / (n - p)))
    return ld_L + n * (1 + np.log(2 * np.pi * pwrss / n))


def _block_diag(mats):
    q = sum(m.shape[0] for m in mats)
    out, pos = np.zeros((q, q)), 0
    for m in mats:
        out[pos:pos + m.shape[0], pos:pos + m.shape[0]] = m
        pos += m.shape[0]
    return out


CROSSED = [
    ("penicillin.csv", "diameter ~ 1 + (1|plate) + (1|sample)"),
    ("pastes.csv", "strength ~ 1 + (1|batch/cask)"),
    ("sleepstudy.csv", "Reaction ~ Days + (1|Subject) + (Days|Days)"),          # p = 2 in the rest part
    ("sleepstudy.csv", "Reaction ~ Days + (Days|Subject) + (1|Days)"),          # p = 2 first, scalar rest
    ("gpa.csv", "gpa ~ occasion + (occasion|student) + (1|job) + (1|sex)"),     # two rest terms
    ("gpa.csv", "gpa ~ occasion + (1|student) + (1|job) + (1|sex)"),            # the same, p = 1 first (K in CSC)
]


@pytest.mark.parametrize("csv,text", CROSSED)
@pytest.mark.parametrize("reml", [True, False])
def test_crossed_objective_matches_brute_force(csv, text, reml):
    df = pd.read_csv(REF / "data" / csv)
    design = build_design(parse_formula(text), df)
    model = pls.PlsModel.from_rows(design.X, design.y, design.blocks, reml)
    # a different scale for each term (rest_part.lambda_schur scales K's products block pair by block pair)
    theta = model.theta0 * 0.6 + np.where(model.lower == 0, 0.1, 0.05) + 0.07 * np.arange(len(model.theta0))
    want = _dense_objective(design, theta, reml)
    assert model.objective(theta) == pytest.approx(want, rel=1e-10)
    model.rest_part.K = None       # the per-evaluation sparse product used when the pattern is too big
    assert model.objective(theta) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("csv,text", CROSSED)
def test_crossed_solution_matches_dense(csv, text):
    df = pd.read_csv(REF / "data" / csv)
    design = build_design(parse_formula(text), df)
    model = pls.PlsModel.from_rows(design.X, design.y, design.blocks, True)
    theta = model.theta0 * 0.6 + np.where(model.lower == 0, 0.1, 0.05)
    sol = model.solve(theta)
    # dense: u solves (Lambda'Z'Z Lambda + I) u = Lambda'Z'(y - X beta)
    ZL = _dense_ZLambda(design, theta)
    u = np.linalg.solve(ZL.T @ ZL + np.eye(ZL.shape[1]), ZL.T @ (design.y - design.X @ sol.beta))
    np.testing.assert_allclose(np.concatenate([x.ravel() for x in sol.u]), u, rtol=1e-8, atol=1e-10)


def test_single_term_needs_no_scipy():
    code = ("import sys, numpy as np; from lmmcli.engine import pls; from lmmcli.design.design import ReBlock;"
            "b = ReBlock('g', ('(Intercept)',), ('a', 'b'), np.array([0, 1, 0, 1]), np.ones((4, 1)));"
            "m = pls.PlsModel.from_rows(np.ones((4, 1)), np.array([1., 2., 3., 5.]), [b]); m.objective(np.array([1.]));"
            "print('scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("csv,text", [("penicillin.csv", "diameter ~ 1 + (1|plate) + (1|sample)"),
                                      ("gpa.csv", "gpa ~ occasion + (1|student) + (1|job) + (1|sex)")])
def test_term_model_is_the_one_term_model(csv, text):
    """term_model(k), built from the cross-products, has the objective and solution of a fresh one-term model."""
    design = build_design(parse_formula(text), pd.read_csv(REF / "data" / csv))
    model = pls.PlsModel.from_rows(design.X, design.y, design.blocks, True)
    for k, blk in enumerate(design.blocks):
        alone, fresh = model.term_model(k), pls.PlsModel.from_rows(design.X, design.y, [blk], True)
        for theta in (np.array([0.3]), np.array([1.7])):
            assert alone.objective(theta) == pytest.approx(fresh.objective(theta), rel=1e-12)
        np.testing.assert_allclose(alone.solve(theta).u[0], fresh.solve(theta).u[0], rtol=1e-10)
    # and the model it came from is unchanged
    assert model.objective(model.theta0) == pytest.approx(pls.PlsModel.from_rows(design.X, design.y, design.blocks,
                                                                       True).objective(model.theta0))
