"""Small dense/sparse linear-algebra helpers shared by the design and the engine (both need A'A)."""

from __future__ import annotations

import numpy as np

SPARSE_GRAM_MIN, SPARSE_GRAM_FILL = 200, 0.05   # a sparse A'A for this many columns, at most this fill


def gram(A: np.ndarray) -> np.ndarray:
    """A'A; through a sparse product when A is mostly zeros (indicator columns of a factor with many
    levels: at 15,000 x 5,000 the dense product is 4e11 flops, the sparse one milliseconds)."""
    n, m = A.shape
    if m < SPARSE_GRAM_MIN or np.count_nonzero(A[:min(n, 1000)]) > SPARSE_GRAM_FILL * min(n, 1000) * m:
        return A.T @ A
    import scipy.sparse as sp

    S = sp.csc_matrix(A)
    return (S.T @ S).toarray()
