"""Parametric bootstrap of a fitted model (lme4's bootMer with simulate()), percentile intervals.

Each replicate draws y* = X beta + Z b* + e*, b* = Lambda(theta) u*, u* ~ N(0, sigma^2 I), e* ~ N(0, sigma^2 I)
from the fitted parameters, refits the same criterion (REML or ML) starting from the fitted theta,
and records the sds, correlations, sigma (lme4's profile scale) and beta. The design never changes,
so each refit only recomputes the cross-products with y* (CrossProducts.with_response).

Reproducibility: replicate i draws from SeedSequence(seed).spawn(nsim)[i], so the results do not
depend on how replicates are spread over worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from lmmcli.distributions import norm_ppf

from lmmcli.engine.blas import set_threads, single_threaded
from lmmcli.engine.fit import REFIT_TOL
from lmmcli.engine.fit import fit as engine_fit
from lmmcli.engine.pls import split_theta
from lmmcli.engine.scaling import response_units
from lmmcli.errors import NumericalError
from lmmcli.inference.profile import sdcor_of, var_params

CHUNK = 25              # replicates per task: progress is reported per chunk; larger chunks send fewer tasks
_STATE: dict = {}       # a worker process's setup and params, set once by _init_worker


@dataclass
class BootSample:
    """The replicates' statistics: one row per replicate, NaN rows for failed refits."""

    names: list[str]
    estimates: np.ndarray      # (nsim, nstat)

    @property
    def succeeded(self) -> np.ndarray:
        """The rows of the refits that succeeded."""
        return self.estimates[np.all(np.isfinite(self.estimates), axis=1)]

    @property
    def failed(self) -> int:
        """How many refits failed."""
        return len(self.estimates) - len(self.succeeded)


@dataclass
class _Setup:
    """What a worker needs: the design's rows, its cross-products and fitted model, and the fitted parameters."""

    X: np.ndarray
    blocks: list               # the design's random-effects blocks of rows (codes, Z)
    cp: object                 # the fit's CrossProducts (stored units)
    inner: object              # the fit's stored-units PlsModel (its fill-in structure is shared)
    reml: bool
    theta: np.ndarray          # original units, to simulate from
    theta_stored: np.ndarray   # the same in stored units, the refits' start
    beta: np.ndarray
    sigma: float


def simulate(setup: _Setup, rng) -> np.ndarray:
    """One response vector from the fitted model."""
    n = len(setup.X)
    y = setup.X @ setup.beta + setup.sigma * rng.standard_normal(n)
    for blk, T in zip(setup.blocks, split_theta(setup.blocks, setup.theta)):
        b = setup.sigma * rng.standard_normal((blk.nlevels, blk.p)) @ T.T
        y += np.einsum("ij,ij->i", blk.Z, b[blk.codes])
    return y


def refit_stats(setup: _Setup, y, params) -> np.ndarray:
    """sds, correlations, sigma and beta of the model refitted to y (through engine.fit: scale-free)."""
    fit = engine_fit(setup.cp.with_response(y, setup.X, setup.blocks), setup.reml, start=setup.theta_stored,
                     like=setup.inner, tol=REFIT_TOL, polish=True)
    sol = fit.solution(cond_var=False)
    return np.concatenate([sdcor_of(setup.blocks, params, sol.theta, sol.sigma), sol.beta])


def refit_record(cp, X, y, blocks):
    """The record the refits start from: cp, or for a plain record the same with y stored standardized
    (scaling.response_units), so that the refits stop alike whatever y's units."""
    if cp.units is not None:
        return cp
    return replace(cp, units=response_units(X, y, cp.terms)).with_response(y, X, blocks)


def _replicates(setup: _Setup, seeds, params) -> list[np.ndarray]:
    """The statistics of one replicate per seed; a row of NaN where the refit failed."""
    out = []
    nstat = len(params) + len(setup.beta)
    for ss in seeds:
        try:
            out.append(refit_stats(setup, simulate(setup, np.random.default_rng(ss)), params))
        except (ArithmeticError, ValueError, np.linalg.LinAlgError, NumericalError):
            out.append(np.full(nstat, np.nan))
    return out


def _init_worker(setup: _Setup, params) -> None:
    """Keep the setup in a new worker process, so that each task sends only its seeds."""
    # one BLAS thread per worker: the refits are small-matrix work (see blas.py)
    set_threads(1)
    _STATE["setup"], _STATE["params"] = setup, params


def _run_chunk(start: int, seeds) -> tuple[int, list[np.ndarray]]:
    """A worker's task: the replicates of a chunk, with the chunk's first index."""
    return start, _replicates(_STATE["setup"], seeds, _STATE["params"])


def bootstrap(fm, nsim: int = 1000, seed: int | None = None, workers: int = 2, progress=None) -> BootSample:
    """nsim parametric-bootstrap refits of fm; progress(done, total) is called as replicates finish."""
    X, y, blocks = fm.inputs()        # the rows as the engine fitted them (weights, offset applied)
    setup = _Setup(X, list(blocks), refit_record(fm.cp, X, y, blocks), fm.engine.inner, fm.reml, fm.sol.theta.copy(),
                   fm.engine.theta_stored.copy(), fm.sol.beta.copy(), fm.sol.sigma)
    params = var_params(fm.blocks)
    names = [prm.name for prm in params] + list(fm.design.fixed_names)
    seeds = np.random.SeedSequence(seed).spawn(nsim)
    chunks = [(i, seeds[i:i + CHUNK]) for i in range(0, nsim, CHUNK)]
    rows: list = [None] * nsim
    done = 0
    for start, stats in _map_chunks(chunks, setup, params, workers):
        rows[start:start + len(stats)] = stats
        done += len(stats)
        if progress is not None:
            progress(done, nsim)
    return BootSample(names, np.array(rows, dtype=float).reshape(nsim, len(names)))


def _map_chunks(chunks, setup, params, workers):
    """(start, stats) per chunk as they finish: in this process, or in a pool of worker processes."""
    if workers <= 1 or len(chunks) <= 1:
        for start, seeds in chunks:
            with single_threaded():
                stats = _replicates(setup, seeds, params)
            yield start, stats
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(setup, params)) as pool:
        futures = [pool.submit(_run_chunk, start, seeds) for start, seeds in chunks]
        for fut in as_completed(futures):
            yield fut.result()


def norm_inter(t, alpha: float) -> float:
    """The alpha quantile of t as boot's percentile interval takes it (Davison & Hinkley 1997, eq. 5.8):
    order statistic (R+1) alpha, interpolated between neighbours on the normal-quantile scale."""
    t = np.sort(t)
    R = len(t)
    rk = (R + 1) * alpha
    k = int(np.floor(rk))
    if k == rk and 1 <= k <= R:
        return float(t[k - 1])
    if k < 1 or k >= R:                      # beyond the extreme order statistics: use them
        return float(t[0] if k < 1 else t[-1])
    zk, zk1 = norm_ppf(k / (R + 1)), norm_ppf((k + 1) / (R + 1))
    return float(t[k - 1] + (norm_ppf(alpha) - zk) / (zk1 - zk) * (t[k] - t[k - 1]))


def percentile_intervals(sample: BootSample, level: float = 0.95) -> dict[str, tuple[float, float]]:
    """{name: (lower, upper)}: boot's percentile interval (as lme4's confint(method = "boot")) from the
    successful replicates."""
    a = (1 - level) / 2
    ok = sample.succeeded
    if len(ok) == 0:
        return {n: (np.nan, np.nan) for n in sample.names}
    return {n: (norm_inter(ok[:, k], a), norm_inter(ok[:, k], 1 - a)) for k, n in enumerate(sample.names)}
