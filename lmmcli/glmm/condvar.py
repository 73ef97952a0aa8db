"""Conditional variances of the random effects at a PIRLS factor: the diagonal blocks of Lambda M^{-1} Lambda'
(glmer's condVar), from the blocks of glmm.system's factor of M."""

from __future__ import annotations

import numpy as np

from lmmcli.engine import kernels as kern
from lmmcli.glmm.system import Factor, WeightedSystem, tri_solve

CHUNK = 2048          # columns of L21 turned dense at a time (a sparse L21: large crossed models)


def _dense_g2(system: WeightedSystem, F: Factor, Li):
    """sum_r G_rgi G_rgj per level g, G = L22^{-1} L21 blockdiag(L11^{-1})."""
    G = tri_solve(F.L22, system.first_right(F.L21, Li))
    Gb = G.reshape(system.q_r, system.l1, system.p1)
    return np.einsum("rgi,rgj->gij", Gb, Gb)


def _sparse_g2(system: WeightedSystem, F: Factor, Li):
    """_dense_g2 for a sparse L21 (scalar first term), CHUNK columns of G at a time."""
    L21s = F.L21.multiply(Li[:, 0, 0][None, :]).tocsc()
    out = np.empty(system.q1)
    for start in range(0, system.q1, CHUNK):
        G = tri_solve(F.L22, L21s[:, start:start + CHUNK].toarray())
        out[start:start + G.shape[1]] = np.einsum("rg,rg->g", G, G)
    return out[:, None, None]


def cond_var(system: WeightedSystem, F: Factor) -> list[np.ndarray]:
    """Per block, (levels, p, p): the diagonal blocks of Lambda M^{-1} Lambda' (glmer's condVar)."""
    Li = kern.inv_lower(F.L11)
    V1 = Li.transpose(0, 2, 1) @ Li
    out = []
    if system.rest:
        # M^{-1} = [[L11^-T (I + L21' S^-1 L21) L11^-1, ...], [..., S^-1]],  S = L22 L22'
        V1 = V1 + (_sparse_g2(system, F, Li) if system.sparse else _dense_g2(system, F, Li))
        H = tri_solve(F.L22, np.eye(system.q_r))
        P = H.T @ H
        lam = np.diag(F.lam_r) if isinstance(F.lam_r, np.ndarray) else F.lam_r.toarray()
        Vr = lam @ P @ lam.T
        pos = 0
        for blk in system.rest:
            k = blk.nlevels * blk.p
            sub = Vr[pos:pos + k, pos:pos + k].reshape(blk.nlevels, blk.p, blk.nlevels, blk.p)
            out.append(np.einsum("gigj->gij", sub))
            pos += k
    T1 = F.Ts[0]
    return [T1[None] @ V1 @ T1.T[None]] + out
