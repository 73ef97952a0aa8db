"""The penalized least-squares engine: sufficient statistics in, the REML/ML optimum out.

    crossprod    CrossProducts: the engine's only input (no rows); from rows, merged, or derived
    scaling      the units records are stored in (rescaled, centred) and the exact map back
    pls          PlsModel: the profiled objective of theta and the solution (blocked Cholesky)
    kernels      per-level cross-products, batched small factors, the crossed fill-in pattern
    optimize     BOBYQA, its start, restarts;  convergence: lme4's checkConv
    fit          fit(cp, reml) -> EngineFit: the one entry point (main fit, profile, bootstrap)
    blas         BLAS thread control
"""
