"""glmm.hessian: the difference Hessian (central in theta pairs, forward in beta pairs) and the polishing step."""

from __future__ import annotations

import numpy as np
import pytest

from lmmcli.glmm.hessian import derivatives, polish, se_derivatives

A = np.array([[3.0, 0.4, 0.2, 0.1], [0.4, 2.0, 0.3, -0.2], [0.2, 0.3, 2.5, 0.5], [0.1, -0.2, 0.5, 1.5]])
K = 2            # the first two parameters are thetas


def quartic_in_theta(x):
    """A quadratic plus cubic and quartic terms in the thetas only (the beta part is exactly quadratic)."""
    t = x[:K]
    return float(0.5 * x @ A @ x + 0.3 * t[0] ** 3 + 0.2 * t[0] * t[1] ** 2 + 0.1 * t[1] ** 4 + x[2] * t[0] ** 2)


def exact_hessian(x):
    t0, t1 = x[0], x[1]
    H = A.copy()
    H[0, 0] += 1.8 * t0 + 2 * x[2]
    H[1, 1] += 0.4 * t0 + 1.2 * t1 ** 2
    H[0, 1] += 0.4 * t1
    H[1, 0] += 0.4 * t1
    H[0, 2] += 2 * t0
    H[2, 0] += 2 * t0
    return H


def test_se_hessian_is_second_order_where_the_beta_part_is_quadratic():
    x = np.array([0.7, 1.1, 0.3, -0.4])
    g, H = se_derivatives(quartic_in_theta, x, K, quartic_in_theta(x))
    np.testing.assert_allclose(H, exact_hessian(x), atol=1e-5)
    g_exact = A @ x + np.array([0.9 * x[0] ** 2 + 0.2 * x[1] ** 2 + 2 * x[2] * x[0],
                                0.4 * x[0] * x[1] + 0.4 * x[1] ** 3, x[0] ** 2, 0.0])
    np.testing.assert_allclose(g, g_exact, atol=1e-6)


def test_forward_cross_terms_are_first_order_only():
    """A cubic term in beta shows the forward differences' O(h) error, which central differences avoid."""
    def f(x):
        return float(0.5 * x @ A @ x + x[2] ** 2 * x[3])
    x = np.array([0.7, 1.1, 0.3, -0.4])
    h = np.full(4, 1e-3)
    _, H_forward = derivatives(f, x, h, f(x), central=K)
    _, H_central = derivatives(f, x, h, f(x), central=4)
    exact = A[2, 3] + 2 * x[2]
    assert abs(H_central[2, 3] - exact) < 1e-6
    assert 1e-4 < abs(H_forward[2, 3] - exact) < 2e-3


def test_polish_takes_the_newton_step_only_within_bounds_and_downhill():
    b = np.array([1.0, -2.0, 0.5, 0.3])

    def f(x):
        return float(0.5 * x @ A @ x - b @ x)
    x_min = np.linalg.solve(A, b)
    x0 = x_min + np.array([0.01, -0.02, 0.03, 0.01])
    x, fx, H = polish(f, x0, f(x0), K, np.full(K, -np.inf))
    np.testing.assert_allclose(x, x_min, atol=1e-6)
    assert fx == pytest.approx(f(x_min))
    np.testing.assert_allclose(H, A, atol=1e-6)
    bounded = np.array([x_min[0] + 0.005, -np.inf])     # the step would cross theta_1's bound: not taken
    x, fx, _ = polish(f, x0, f(x0), K, bounded)
    np.testing.assert_array_equal(x, x0)
