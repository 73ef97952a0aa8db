"""linalg: the split factor of an X'X with a factor's indicator block equals dense linear algebra."""

from __future__ import annotations

import numpy as np
import pytest

from lmmcli.linalg import SplitGram, diagonal_block, gram, split_gram


def _arrow(levels=300, n=1200, seed=0):
    """X'X of an intercept, levels - 1 treatment indicators and two covariates (arrow-shaped)."""
    rng = np.random.default_rng(seed)
    f = np.concatenate([np.arange(levels), rng.integers(0, levels, n - levels)])
    X = np.zeros((n, levels + 2))
    X[:, 0] = 1.0
    X[np.arange(n), f] = 1.0                    # column 0 is the intercept: level 0 is the reference
    X[:, 0] = 1.0
    X[:, levels:] = rng.normal(size=(n, 2))
    return gram(X)


def test_the_indicator_block_is_found():
    A = _arrow()
    diag = diagonal_block(A)
    assert set(np.setdiff1d(np.arange(len(A)), diag)) == {0, len(A) - 2, len(A) - 1}


def test_no_split_for_a_dense_or_small_matrix():
    rng = np.random.default_rng(1)
    B = rng.normal(size=(400, 300))
    assert split_gram(B.T @ B) is None           # every column overlaps every other
    assert split_gram(_arrow(levels=50, n=300)) is None     # below SPARSE_GRAM_MIN columns


@pytest.mark.parametrize("with_w", [False, True])
def test_split_factor_equals_dense_algebra(with_w):
    A = _arrow()
    s = split_gram(A)
    assert isinstance(s, SplitGram)
    rng = np.random.default_rng(2)
    p = len(A)
    L = np.linalg.cholesky(A)
    Ainv = np.linalg.inv(A)
    assert s.logdet == pytest.approx(2.0 * np.log(np.diag(L)).sum(), rel=1e-13)
    R = rng.normal(size=(p, 3))
    np.testing.assert_allclose(s.solve(R), np.linalg.solve(A, R), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s.solve(R[:, 0]), np.linalg.solve(A, R[:, 0]), rtol=1e-10, atol=1e-12)
    K = s.whiten(R)
    np.testing.assert_allclose(K.T @ K, R.T @ Ainv @ R, rtol=1e-10)
    W = np.diag(rng.uniform(0.5, 2.0, p)) if with_w else None
    if with_w:
        W[0, 1:] = rng.normal(size=p - 1)        # a dense row: the general sparse W
    want = Ainv if W is None else W @ Ainv @ W.T
    np.testing.assert_allclose(s.inverse_diagonal(W), np.diag(want), rtol=1e-10)
    np.testing.assert_allclose(s.inverse(W), want, rtol=1e-9, atol=1e-12 * np.abs(want).max())


def test_not_positive_definite_raises():
    A = _arrow()
    A[5, 5] = 0.0
    with pytest.raises(np.linalg.LinAlgError):
        split_gram(A)
    B = _arrow()
    B[-1, -1] = 0.0                              # the Schur complement of the dense columns fails
    with pytest.raises(np.linalg.LinAlgError):
        split_gram(B)


def test_gram_with_a_divisor_is_the_gram_of_the_divided_columns():
    rng = np.random.default_rng(3)
    levels, n = 250, 900
    X = np.zeros((n, levels))
    X[np.arange(n), rng.integers(0, levels, n)] = 3.0
    d = np.exp2(rng.integers(-3, 4, levels).astype(float))
    np.testing.assert_array_equal(gram(X, d), gram(X / d))          # the sparse path
    np.testing.assert_array_equal(gram(X[:, :10], d[:10]), gram(X[:, :10] / d[:10]))   # the dense one


def test_the_sparse_rows_give_scipys_gram_to_the_last_bit():
    import scipy.sparse as sp

    rng = np.random.default_rng(4)
    n, levels = 2000, 600
    X = np.zeros((n, levels + 2))
    X[np.arange(n), rng.integers(0, levels, n)] = 1.0
    X[:, -2], X[:, -1] = 1.0, rng.normal(size=n)
    X[3, 7] = -0.0                                  # a signed zero is no entry, as in scipy
    S = sp.csc_matrix(X)
    np.testing.assert_array_equal(gram(X), (S.T @ S).toarray())
    assert gram(X).flags.c_contiguous
    np.testing.assert_array_equal(gram(np.asfortranarray(X)), (S.T @ S).toarray())
