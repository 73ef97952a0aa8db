"""Hypothesis properties of issue 7 that test_formula.py does not already cover.

Already in tests/test_formula.py (not repeated here): text over the formula alphabet parses or raises
FormulaSyntaxError (test_any_text_parses_or_raises_formula_error), and parse -> print -> parse is stable
(test_str_round_trip, test_structured_formulas_round_trip).
Here: arbitrary Unicode text, through the parser and through `lmm fit`; and equivalent data give the
equivalent fit: shuffled rows, relabelled groups, a shifted or rescaled response. Small data (dyestuff,
30 rows; sleepstudy, 180) and few examples keep this fast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from typer.testing import CliRunner

from conftest import REF
from lmmcli.cli import app
from lmmcli.errors import FormulaSyntaxError, LmmError
from lmmcli.fit import fit
from lmmcli.formula import parse_formula

DYE = pd.read_csv(REF / "data" / "dyestuff.csv")
SLEEP = pd.read_csv(REF / "data" / "sleepstudy.csv")
FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=100, deadline=None)   # 300 took 4.7 s (review timing); test_formula adds 800 ASCII cases
@given(st.text(max_size=60))
def test_any_unicode_text_parses_or_raises_formula_syntax_error(text):
    try:
        parse_formula(text)
    except FormulaSyntaxError as err:
        assert 0 <= err.span[0] <= err.span[1] <= len(text)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("YieldBatch~+-*/^:|()` 01.,$log(I")) | st.characters(), max_size=30))
def test_cli_formula_text_is_a_fit_or_one_clean_error(text):
    """Whatever the formula, `lmm fit` exits 0 or 1 with 'error: ...' and no traceback."""
    # '--': a formula may start with '-', which would otherwise read as an option (exit 2, click's usage error)
    res = CliRunner().invoke(app, ["fit", "--", str(REF / "data" / "dyestuff.csv"), text])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code in (0, 1)
    if res.exit_code == 1:
        assert res.stderr.startswith("error: ") and res.stdout == ""


def fingerprint(fm) -> dict:
    """What an equivalent fit must reproduce: criterion, fixed effects and their se, variance components."""
    r = fm.result()
    return {"objective": fm.sol.objective, "beta": np.array([fe.estimate for fe in r.fixed_effects]),
            "se": np.array([fe.std_error for fe in r.fixed_effects]),
            "sd": np.array([vc.sd for vc in r.variance_components])}


def close(a: dict, b: dict, rel=1e-5):
    assert a["objective"] == pytest.approx(b["objective"], abs=1e-6 * max(1.0, abs(b["objective"])))
    for k in ("beta", "se", "sd"):
        np.testing.assert_allclose(a[k], b[k], rtol=rel, atol=1e-8 * max(1.0, np.abs(b[k]).max()), err_msg=k)


MODELS = [(DYE, "Yield ~ 1 + (1|Batch)"), (SLEEP, "Reaction ~ Days + (Days|Subject)")]
BASE = [fingerprint(fit(f, d)) for d, f in MODELS]


@FAST
@given(which=st.integers(0, 1), seed=st.integers(0, 2**32 - 1))
def test_shuffling_rows_gives_the_same_fit(which, seed):
    df, formula = MODELS[which]
    shuffled = df.sample(frac=1.0, random_state=np.random.RandomState(seed)).reset_index(drop=True)
    close(fingerprint(fit(formula, shuffled)), BASE[which])


@FAST
@given(which=st.integers(0, 1), seed=st.integers(0, 2**32 - 1),
       style=st.sampled_from(["text", "numbers", "unicode"]))
def test_relabelling_groups_gives_the_same_fit(which, seed, style):
    df, formula = MODELS[which]
    col = "Batch" if which == 0 else "Subject"
    old = sorted(df[col].unique())
    perm = np.random.default_rng(seed).permutation(len(old))
    new = {"text": [f"grp_{k}" for k in perm], "numbers": [int(1000 + 7 * k) for k in perm],
           "unicode": [f"gruppe-ä{k}" for k in perm]}[style]
    relabelled = df.assign(**{col: df[col].map(dict(zip(old, new)))})
    close(fingerprint(fit(formula, relabelled)), BASE[which])


@FAST
@example(which=1, log_scale=0.0, negative=False, log_shift=6.0, shift_sign=1.0)    # y + 3e8: cancellation
@example(which=1, log_scale=9.0, negative=True, log_shift=0.0, shift_sign=0.0)     # y * -1e9
@example(which=0, log_scale=-9.0, negative=False, log_shift=5.0, shift_sign=-1.0)  # y * 1e-9 - 1.5e-4
@given(which=st.integers(0, 1), log_scale=st.floats(-9, 9), negative=st.booleans(),
       log_shift=st.floats(-3, 6), shift_sign=st.sampled_from([-1.0, 0.0, 1.0]))
def test_shifting_and_scaling_the_response_gives_the_equivalent_fit(which, log_scale, negative, log_shift,
                                                                    shift_sign):
    """y -> a*y + b: beta0 -> a*beta0 + b, other beta -> a*beta, se and sds -> |a| times, theta unchanged,
    REML criterion -> + 2 (n - p) log|a| (BMBW eq. 41 with pwrss scaled by a^2).
    The shift b is up to 1e6 times the scaled response's mean (beyond that the CSV's own 16 digits
    no longer hold the data)."""
    df, formula = MODELS[which]
    a = (-1.0 if negative else 1.0) * 10.0 ** log_scale
    resp = "Yield" if which == 0 else "Reaction"
    shift = shift_sign * 10.0 ** log_shift * abs(a) * float(df[resp].mean())
    fm = fit(formula, df.assign(**{resp: df[resp] * a + shift}))
    got, base = fingerprint(fm), BASE[which]
    n, p = fm.design.n, fm.design.X.shape[1]
    mapped = {"objective": got["objective"] - 2 * (n - p) * np.log(abs(a)),
              "beta": np.concatenate([[(got["beta"][0] - shift) / a], got["beta"][1:] / a]),
              "se": got["se"] / abs(a), "sd": got["sd"] / abs(a)}
    close(mapped, base, rel=2e-4)
