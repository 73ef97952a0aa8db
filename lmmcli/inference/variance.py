"""Variance components with their shares (mixedup's extract_vc), ICC (performance::icc) and
Nakagawa's R^2 (performance::r2_nakagawa) for a fitted linear mixed model.

The variance decomposition (Nakagawa, Johnson & Schielzeth 2017, J R Soc Interface 14):
    var_fixed    = var(X beta) over the fitting rows (n - 1 denominator, as performance)
    var_random   = sum over random terms of mean over rows of diag(Z_k Sigma_k Z_k')
                   (the intercept variance for a random intercept; random slopes weighted by the
                   covariates' values, as insight::get_variance_random does)
    var_residual = sigma^2
    ICC adjusted   = var_random / (var_random + var_residual)
    ICC unadjusted = var_random / (var_fixed + var_random + var_residual)
    R2 marginal    = var_fixed / total,  R2 conditional = (var_fixed + var_random) / total
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from lmmcli.results import FitResult, VarianceComponent


@dataclass
class VarianceDecomposition:
    """The three variances of Nakagawa's R^2 and the ratios made of them."""

    var_fixed: float
    var_random: float
    var_residual: float

    @property
    def total(self) -> float:
        """fixed + random + residual."""
        return self.var_fixed + self.var_random + self.var_residual

    def icc(self) -> dict[str, float | None]:
        """performance::icc: adjusted (random / random + residual) and unadjusted (random / total)."""
        return {"adjusted": _ratio(self.var_random, self.var_random + self.var_residual),
                "unadjusted": _ratio(self.var_random, self.total)}

    def r2(self) -> dict[str, float | None]:
        """performance::r2_nakagawa: marginal (fixed / total) and conditional (fixed + random / total)."""
        return {"r2_marginal": _ratio(self.var_fixed, self.total),
                "r2_conditional": _ratio(self.var_fixed + self.var_random, self.total)}


def _ratio(a: float, b: float) -> float | None:
    """a / b, or None where b is not positive (no variance to share)."""
    return float(a / b) if b > 0 else None


def random_variance(blocks, covariances) -> float:
    """Sum over terms of the mean over rows of z_i' Sigma_k z_i (z_i: the term's columns of row i)."""
    total = 0.0
    for blk, S in zip(blocks, covariances):
        total += float(np.mean(np.einsum("ij,jk,ik->i", blk.Z, S, blk.Z))) if len(blk.Z) else 0.0
    return total


def decompose(fm) -> VarianceDecomposition:
    """The variance decomposition of a FittedModel."""
    parts = getattr(fm, "variance_parts", None)
    if parts is not None:        # a fit from sufficient statistics: the same two variances from its sums
        return VarianceDecomposition(*parts(), fm.sol.sigma ** 2)
    eta = fm.design.X @ fm.sol.beta
    var_fixed = float(np.var(eta, ddof=1)) if len(eta) > 1 else 0.0
    return VarianceDecomposition(var_fixed, random_variance(fm.blocks, fm.covariances()), fm.sol.sigma ** 2)


def with_shares(components: list[VarianceComponent]) -> list[VarianceComponent]:
    """Each component's variance as a share of the sum of all of them (mixedup's var_prop)."""
    total = sum(vc.variance for vc in components)
    return [dataclasses.replace(vc, share=vc.variance / total if total > 0 else None) for vc in components]


def with_variance_summary(fm, result: FitResult) -> FitResult:
    """A copy of the FitResult with shares on its variance components and `icc`, `r2_*` in extra."""
    d = decompose(fm)
    extra = dict(result.extra, icc=d.icc(), **d.r2(),
                 variance_decomposition={"fixed": d.var_fixed, "random": d.var_random,
                                         "residual": d.var_residual})
    return dataclasses.replace(result, variance_components=with_shares(result.variance_components), extra=extra)
