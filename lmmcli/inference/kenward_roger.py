"""Kenward-Roger: the small-sample adjusted covariance of beta and the df of each coefficient (REML fits).

Kenward & Roger (1997, Biometrics 53); the computation follows pbkrtest's vcovAdj and Lb_ddf
(Halekoh & Hojsgaard 2014, JSS 59(9)). The covariance parameters are the elements of each random
term's covariance matrix (lower triangle, on the variance scale) and the residual variance, so that
Sigma = sum_r gamma_r G_r with G_r = Z E_r Z' (E_r the pattern of one element) and G_res = I.

Never an n x n matrix: with s2 = sigma^2, W = Lambda (Lambda'Z'Z Lambda + I)^{-1} Lambda' and
F = I - Z'Z W, Woodbury gives Sigma^{-1} = (I - Z W Z') / s2, hence
    Z'S^{-1}Z = F Z'Z / s2,  Z'S^{-1}X = F Z'X / s2,  Z'S^{-2}Z = F Z'Z F' / s2^2,  Z'S^{-2}X = F F Z'X / s2^2,
    tr(S^{-2}) = (n - 2 tr(W Z'Z) + tr(W Z'Z W Z'Z)) / s2^2,
so every trace and product needs only q x q, q x p and p x p pieces. With one random term all
q x q pieces are block-diagonal (sparse); with several they are dense, up to MAX_DENSE_Q.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lmmcli.errors import ModelSpecError, UsageError
from lmmcli.inference.satterthwaite import unit_diagonal
from lmmcli.engine.pls import block_diag_pattern, lambda_matrix, sparse_Z, split_theta

MAX_DENSE_Q = 3000      # several random terms: dense q x q pieces, about a dozen of them
PINV_TOL = 1e-10        # pbkrtest: generalised inverse of the information below this eigenvalue (here of the
                        # information scaled to a unit diagonal)


# -- the q x q pieces ---------------------------------------------------------------------------
def _inverse(H, blocks):
    """H^{-1}: block by block when H is block-diagonal (one random term), else dense."""
    if len(blocks) > 1:
        return np.linalg.inv(H)
    blk = blocks[0]
    l, p = blk.nlevels, blk.p
    r, c = block_diag_pattern(l, p)
    Hb = np.asarray(H[r, c]).reshape(l, p, p)
    return sp.csr_matrix((np.linalg.inv(Hb).ravel(), (r, c)), shape=H.shape)


def _element_patterns(blocks) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rows, cols) of E_r for every covariance element (i, j) of every term: dSigma/dgamma_r = Z E_r Z'."""
    out, offset = [], 0
    for blk in blocks:
        q = blk.nlevels * blk.p
        base = offset + np.arange(blk.nlevels) * blk.p
        for i, j in blk.theta_index():
            rows, cols = (base + i, base + j) if i == j else (np.r_[base + i, base + j], np.r_[base + j, base + i])
            out.append((rows, cols))
        offset += q
    return out


def _as_matrices(patterns, q: int) -> list[sp.csr_matrix]:
    """The q x q 0/1 matrices E_r."""
    return [sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(q, q)) for r, c in patterns]


def _trace_product(P, Q) -> float:
    """tr(P Q) without forming the product."""
    if sp.issparse(P):
        return float(P.multiply(Q.T).sum())
    if sp.issparse(Q):
        return float(Q.multiply(P.T).sum())
    return float(np.einsum("ij,ji->", P, Q))


class _Pieces:
    """Sigma^{-1}-weighted cross-products of Z and X at the fit's (theta, sigma)."""

    def __init__(self, fm):
        # X and Z as pbkrtest takes them (getME): without the prior weights, which pbkrtest ignores;
        # emmeans' Kenward-Roger df come from it, and lmm agrees with both
        blocks, X = fm.blocks, fm.design.X
        self.n = X.shape[0]
        s2 = fm.sol.sigma ** 2
        Zs = sparse_Z(blocks)
        q = Zs.shape[1]
        dense = len(blocks) > 1
        A = (Zs.T @ Zs).tocsr()
        Lambda = lambda_matrix(blocks, split_theta(blocks, fm.sol.theta))
        H = (Lambda.T @ A @ Lambda + sp.identity(q)).tocsr()          # = L L' (BMBW 18)
        if dense:
            A, Lambda, H = A.toarray(), Lambda.toarray(), H.toarray()
        W = Lambda @ _inverse(H, blocks) @ Lambda.T
        AW = A @ W
        F = (np.eye(q) if dense else sp.identity(q, format="csr")) - AW
        ZX, XX = np.asarray(Zs.T @ X), X.T @ X
        WZX, FZX = np.asarray(W @ ZX), np.asarray(F @ ZX)
        YY = XX - 2 * ZX.T @ WZX + WZX.T @ np.asarray(A @ WZX)     # (X - ZWZ'X)'(X - ZWZ'X)
        self.M = F @ A / s2                                          # Z'S^-1 Z
        self.M2 = F @ A @ F.T / s2 ** 2                              # Z'S^-2 Z
        self.B = FZX / s2                                            # Z'S^-1 X
        self.B2 = np.asarray(F @ FZX) / s2 ** 2                      # Z'S^-2 X
        self.XS2X = YY / s2 ** 2                                     # X'S^-2 X
        self.XS3X = (YY - FZX.T @ np.asarray(W @ FZX)) / s2 ** 3     # X'S^-3 X
        self.trS2 = (self.n - 2 * _trace_product(W, A) + _trace_product(AW, AW)) / s2 ** 2
        self.E = _as_matrices(_element_patterns(blocks), q)


# -- pbkrtest's P, Q, K and the information ------------------------------------------------------
def _pqk(pc: _Pieces):
    """P_r = -X'S^-1 G_r S^-1 X, Q_rs = X'S^-1 G_r S^-1 G_s S^-1 X, K_rs = tr(S^-1 G_r S^-1 G_s)."""
    EB = [np.asarray(E @ pc.B) for E in pc.E]
    EM = [E @ pc.M for E in pc.E]
    m = len(pc.E) + 1
    P = [-pc.B.T @ eb for eb in EB] + [-pc.XS2X]
    Q = [[None] * m for _ in range(m)]
    K = np.empty((m, m))
    for r in range(m - 1):
        for s in range(m - 1):
            Q[r][s] = EB[r].T @ np.asarray(pc.M @ EB[s])
            K[r, s] = _trace_product(EM[r], EM[s])
        Q[r][m - 1] = EB[r].T @ pc.B2
        Q[m - 1][r] = Q[r][m - 1].T
        K[r, m - 1] = K[m - 1, r] = _trace_product(pc.E[r], pc.M2)
    Q[m - 1][m - 1] = pc.XS3X
    K[m - 1, m - 1] = pc.trS2
    return P, Q, K


def _information_inverse(P, Q, K, Phi) -> np.ndarray:
    """W = 2 I^{-1}, I_rs = K_rs - 2 tr(Phi Q_rs) + tr(Phi P_r Phi P_s) (a generalised inverse if near-singular)."""
    m = len(P)
    info = np.array([[K[r, s] - 2 * np.trace(Phi @ Q[r][s]) + np.trace(Phi @ P[r] @ Phi @ P[s])
                      for s in range(m)] for r in range(m)])
    # judged and inverted at a unit diagonal: variances of a covariate measured in 1e-6 units are ~1e24 apart
    scaled, S = unit_diagonal(info)
    if np.min(np.abs(np.linalg.eigvalsh(scaled))) > PINV_TOL:
        return 2 * S * np.linalg.inv(scaled)
    return 2 * S * np.linalg.pinv(scaled)


def adjusted_vcov(Phi, P, Q, Wc) -> np.ndarray:
    """Phi_A = Phi + 2 Phi U Phi, U = sum_rs W_rs (Q_rs - P_r Phi P_s)."""
    m = len(P)
    U = sum(Wc[r, s] * (Q[r][s] - P[r] @ Phi @ P[s]) for r in range(m) for s in range(m))
    return Phi + 2 * Phi @ U @ Phi


def a1_a2(L, Phi, P, Wc) -> tuple[float, float]:
    """Kenward & Roger's A1 and A2 for the test of L beta = 0 (pbkrtest's .KR_adjust)."""
    L = np.atleast_2d(L)
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    u = [Theta @ Phi @ Pr @ Phi for Pr in P]
    A1 = sum(Wc[i, j] * np.trace(u[i]) * np.trace(u[j]) for i in range(len(P)) for j in range(len(P)))
    A2 = sum(Wc[i, j] * np.sum(u[i] * u[j].T) for i in range(len(P)) for j in range(len(P)))
    return float(A1), float(A2)


def contrast_df(L, Phi, P, Wc) -> float:
    """pbkrtest's Lb_ddf: the Kenward-Roger denominator df of the test of L beta = 0 (L one row)."""
    A1, A2 = a1_a2(L, Phi, P, Wc)
    return _ddf(A1, A2, np.linalg.matrix_rank(np.atleast_2d(L)))


def f_test(L, beta, Phi, P, Wc, Vadj) -> dict:
    """pbkrtest's KRmodcomp of L beta = 0: q, the denominator df, the F scaling, and the Wald F with the
    adjusted covariance before (FstatU) and after (F) scaling."""
    L = np.atleast_2d(L)
    q = int(np.linalg.matrix_rank(L))
    A1, A2 = a1_a2(L, Phi, P, Wc)
    ddf = _ddf(A1, A2, q)
    scaling = 1.0 if abs(ddf - 2) < 1e-2 else ddf * (1 - A2 / q) / (ddf - 2)
    Lb = L @ beta
    FstatU = float(Lb @ np.linalg.solve(L @ Vadj @ L.T, Lb)) / q
    return {"ndf": q, "ddf": ddf, "scaling": scaling, "FstatU": FstatU, "F": scaling * FstatU}


def _ddf(A1: float, A2: float, q: int) -> float:
    """Kenward & Roger's (1997) approximation of the F statistic's denominator df from A1, A2."""
    B = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    den = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    V0, V1, V2 = 1 + c1 * B, 1 - c2 * B, 1 - c3 * B
    V0 = 0.0 if abs(V0) < 1e-10 else V0
    ratio = 1.0 if abs(1 - A2 / q) < 1e-14 and abs(V1) < 1e-14 else (1 - A2 / q) / V1
    rho = ratio ** 2 * V0 / V2 / q
    return 4 + (q + 2) / (q * rho - 1)


# -- the entry point ----------------------------------------------------------------------------
def check_feasible(fm) -> None:
    """Decline (clearly, before any large allocation) what Kenward-Roger cannot do here."""
    if not fm.reml:
        raise UsageError("Kenward-Roger's method needs a REML fit", hint="drop --ml, or use --df satterthwaite")
    q = sum(b.nlevels * b.p for b in fm.blocks)
    if len(fm.blocks) > 1 and q > MAX_DENSE_Q:
        raise ModelSpecError(
            f"Kenward-Roger with several random terms needs dense {q} x {q} matrices; "
            f"lmm computes it for at most {MAX_DENSE_Q} random effects in that case",
            hint="use --df satterthwaite (the default)")


@dataclass
class KRPieces:
    """What every Kenward-Roger test of the model needs: Phi = Var(beta), pbkrtest's P and W, Phi_A."""

    Phi: np.ndarray
    P: list
    Wc: np.ndarray
    Vadj: np.ndarray

    def df(self, L) -> float:
        """The df of the t test of one contrast L beta."""
        return contrast_df(L, self.Phi, self.P, self.Wc)

    def f_test(self, L, beta) -> dict:
        """KRmodcomp's F test of L beta = 0."""
        return f_test(L, beta, self.Phi, self.P, self.Wc, self.Vadj)


def kr_pieces(fm) -> KRPieces:
    """Phi, P, W and the adjusted covariance of a REML fit with random terms."""
    check_feasible(fm)
    Phi = fm.vcov()
    P, Q, K = _pqk(_Pieces(fm))
    Wc = _information_inverse(P, Q, K, Phi)
    return KRPieces(Phi, P, Wc, adjusted_vcov(Phi, P, Q, Wc))


def kenward_roger(fm) -> tuple[np.ndarray, np.ndarray]:
    """(adjusted covariance of beta, df of each coefficient), as lmerTest's summary(ddf = "Kenward-Roger")."""
    check_feasible(fm)
    Phi = fm.vcov()
    p = Phi.shape[0]
    if not fm.blocks:
        return Phi, np.full(p, float(fm.design.n - p))
    kr = kr_pieces(fm)
    return kr.Vadj, np.array([kr.df(np.eye(p)[j]) for j in range(p)])
