"""Sums of the weights into fixed slots: what a PIRLS step re-forms of Z'WZ, with the slots formed once.

Every row adds W_i a_i b_i to the same entries of Z'WZ at every step (a_i, b_i: its values in two columns
of Z), so the entry each (row, pair) touches and the product a_i b_i are found once from Z, and a step's
sums are one bincount over the rows (O(n), no Python loop over rows or groups).
"""

from __future__ import annotations

import numpy as np


def level_values(x: np.ndarray, codes: np.ndarray, nlevels: int):
    """x's value per level when x is constant within every level, else None."""
    vals = np.zeros(nlevels)
    vals[codes] = x
    return vals if np.array_equal(vals[codes], x) else None


class PairSums:
    """sum_i W_i a_i b_i into fixed slots: the slot of each (row, pair) and the product a_i b_i, formed once."""

    def __init__(self, slots: list[np.ndarray], products: list[np.ndarray]):
        self.keys = np.concatenate(slots) if slots else np.zeros(0, dtype=np.int64)
        self.unique, self.inverse = np.unique(self.keys, return_inverse=True)
        self.products = np.concatenate(products) if products else np.zeros(0)
        self.ones = all(bool(np.all(p == 1.0)) for p in products)
        self.npairs = len(slots)
        # one row per slot (a fully crossed design with one observation per cell): the sums are W itself,
        # scattered into the slots, without a bincount
        self.scatter = self.npairs == 1 and self.ones and len(self.unique) == len(self.keys)

    def _weights(self, W: np.ndarray) -> np.ndarray:
        w = np.tile(W, self.npairs) if self.npairs > 1 else W
        return w if self.ones else w * self.products

    def __call__(self, W: np.ndarray) -> np.ndarray:
        """The sums at the used slots (self.unique, sorted)."""
        return np.bincount(self.inverse, weights=self._weights(W), minlength=len(self.unique))

    def dense(self, W: np.ndarray, size: int) -> np.ndarray:
        """The sums at every slot 0..size-1 (the slots are flat indices into a dense matrix): the same
        sums, in the same order, as __call__, without its scatter into the matrix afterwards."""
        if self.scatter:
            out = np.zeros(size)
            out[self.keys] = W
            return out
        return np.bincount(self.keys, weights=self._weights(W), minlength=size)
