"""Fit a linear mixed model the way lmer() does: parse, build the design, optimise theta, assemble results."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmmcli.design.design import Design, build_design
from lmmcli.distributions import quartiles
from lmmcli.errors import DataError
from lmmcli.formula import Formula, parse_formula
from lmmcli.engine.crossprod import CrossProducts
from lmmcli.engine.fit import EngineFit
from lmmcli.engine.fit import fit as engine_fit
from lmmcli.engine.optimize import OptSummary
from lmmcli.engine.pls import PlsSolution, split_theta, unscaled_vcov
from lmmcli.engine.scaling import choose_scaling
from lmmcli.engine.wide import WIDE_MIN_P
from lmmcli.errors import NumericalError
from lmmcli.results import SINGULAR_WARNING, Correlation, FitResult, FixedEffect, RandomEffect, VarianceComponent

SINGULAR_TOL = 1e-4


@dataclass
class FittedModel:
    """A fitted model: its design, the engine's fit of its cross-products (optimizer summary and solution)."""

    formula: Formula
    design: Design
    engine: EngineFit
    _result: FitResult | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def cp(self) -> CrossProducts:
        """The cross-products the engine fitted (in its stored units)."""
        return self.engine.cp

    @property
    def model(self):
        """The objective, solve and deviance parts in original units (a PlsModel or ScaledModel)."""
        return self.engine.model

    @property
    def opt(self) -> OptSummary:
        return self.engine.opt

    @property
    def sol(self) -> PlsSolution:
        return self.engine.sol

    @property
    def theta_scaled(self) -> np.ndarray | None:
        """theta in the rescaled units, when scaling.py rescaled the fit."""
        return self.engine.theta_stored if self.engine.scaled else None

    @property
    def reml(self) -> bool:
        return self.model.reml

    @property
    def blocks(self):
        return self.design.blocks

    def vcov(self) -> np.ndarray:
        """Covariance of beta-hat: sigma^2 (RX' RX)^{-1} (formed once per solution: O(p^3))."""
        cached = self.__dict__.get("_vcov")
        if cached is None or cached[0] is not self.sol:
            cached = self._vcov = (self.sol, self.sol.sigma ** 2 * self._unscaled_vcov())
        return cached[1]

    def _unscaled_vcov(self) -> np.ndarray:
        """(RX'RX)^{-1}: for a wide model whose X'X splits (engine.wide) in O(p^2 q), else from RX in O(p^3)."""
        if len(self.sol.beta) >= WIDE_MIN_P:
            from lmmcli.inference.satterthwaite import wide_solves

            solve = wide_solves(self.model)
            if solve is not None and solve.wide.splits:
                return solve.vcov(self.sol.theta)
        return unscaled_vcov(self.sol.RX)

    def fitted(self) -> np.ndarray:
        """X beta + Z b (+ the offset) for the fitting rows."""
        return self.design.X @ self.sol.beta + self.z_times_b() + self.offset()

    def offset(self) -> np.ndarray | float:
        """The offset() terms' sum for the fitting rows (0 without)."""
        return 0.0 if self.design.offset is None else self.design.offset

    def inputs(self):
        """(X, y, blocks) of the rows as the engine fitted them (see engine_inputs)."""
        return engine_inputs(self.design)

    def z_times_b(self) -> np.ndarray:
        """Z b, block by block, without forming Z."""
        out = np.zeros(self.design.n)
        for blk, b in zip(self.blocks, self.sol.b):
            out += np.einsum("ij,ij->i", blk.Z, b[blk.codes])
        return out

    def residual_quantiles(self) -> dict[str, float]:
        """Min, quartiles and max of the scaled residuals (an aggregated fit computes them in a second pass)."""
        return _scaled_residuals(self)

    def covariances(self) -> list[np.ndarray]:
        """Each random term's covariance matrix, sigma^2 T T'."""
        Ts = split_theta(self.blocks, self.sol.theta)
        return [self.sol.sigma ** 2 * T @ T.T for T in Ts]

    def is_singular(self, tol: float = SINGULAR_TOL) -> bool:
        """lme4's isSingular: a theta on its lower bound of 0 (within tol)."""
        lower = self.model.lower
        # judged in the rescaled units when there are some: a slope of a 1e9-sized covariate is not 'near 0'
        theta = self.sol.theta if self.theta_scaled is None else self.theta_scaled
        return bool(np.any((lower == 0) & (theta < tol)))

    def npar(self) -> int:
        return len(self.sol.theta) + len(self.sol.beta) + 1

    def loglik(self) -> float:
        return -0.5 * self.sol.objective

    def result(self) -> FitResult:
        """The FitResult that every renderer shows, assembled once (callers may extend it, e.g. with df)."""
        if self._result is None:
            self._result = assemble(self)
        return self._result


def engine_inputs(design: Design):
    """(X, y, blocks) as the engine fits them (Design.engine_inputs: y less the offset, rows times sqrt(w))."""
    return design.engine_inputs()


def log_det_weights(design: Design) -> float:
    """log |W| = sum(log w), which lme4's criterion subtracts (0 without weights)."""
    return design.log_det_weights()


def fit_design(formula: Formula, design: Design, reml: bool = True) -> FittedModel:
    """Optimise theta for a built design and solve at the optimum."""
    _check_residual_df(design, reml)
    # the weighted model's criterion is the engine's value for the sqrt(w)-scaled rows - log|W|
    fit = engine_fit(crossproducts(design), reml, shift=-log_det_weights(design))
    fm = FittedModel(formula, design, fit)
    check_representable(fm)
    return fm


def _representable(fm: FittedModel) -> bool:
    """Whether sigma^2, Var(beta) and the random-effect covariances are finite, and Var(beta_j) > 0."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        s2 = np.float64(fm.sol.sigma) ** 2
        if not (np.isfinite(s2) and (s2 > 0 or fm.sol.sigma == 0)):
            return False
        V = fm.vcov()
        covs = fm.covariances()
    nonzero = (np.diag(V) > 0) | (np.asarray(fm.sol.beta) == 0)
    return bool(np.all(np.isfinite(V)) and np.all(nonzero) and all(np.all(np.isfinite(C)) for C in covs))


def check_representable(fm: FittedModel) -> None:
    """Refuse, as one clear error, a fit whose variances do not fit in double precision.

    The engine fits any finite data (it works in rescaled units), but the answer's variances are the
    squares of the data's scales: a response of 1e300 has a residual variance of ~1e600 (overflow),
    a covariate of 1e200 gives coefficient variances of ~1e-400 (underflow to 0).
    """
    if _representable(fm):
        return
    d = fm.design
    cols = [(d.response, d.y)] + [(n, d.X[:, j]) for j, n in enumerate(d.fixed_names) if n != "(Intercept)"]
    name, v = max(cols, key=lambda c: abs(np.log10(max(np.max(np.abs(c[1])), 1e-308))) if len(c[1]) else 0.0)
    top = float(np.max(np.abs(v))) if len(v) else float("nan")
    raise NumericalError(f"the fit's variances cannot be represented in double precision: '{name}' has "
                         f"values of magnitude {top:.3g}, whose squares overflow or underflow",
                         hint=f"rescale '{name}' (e.g. divide or multiply it by a power of ten) and refit")


def crossproducts(design: Design) -> CrossProducts:
    """The cross-products of the design's engine inputs, in the units scaling.py chooses for them."""
    X, y, blocks = engine_inputs(design)
    units = choose_scaling(X, y, blocks)
    return CrossProducts.from_rows(X, y, blocks, (*design.fixed_names, design.response), units)


def _check_residual_df(design: Design, reml: bool) -> None:
    """REML (and a model without random terms) needs n > p: its residual variance divides by n - p."""
    n, p = design.n, design.X.shape[1]
    if n <= p and (reml or not design.blocks):
        what = "REML" if design.blocks else "a model without random terms"
        raise DataError(f"{what} needs more observations than fixed effects, but there are {n} "
                        f"observation{'s' if n != 1 else ''} and {p} fixed effect{'s' if p != 1 else ''} "
                        "(no residual degrees of freedom)",
                        hint="use fewer fixed effects" + (", or fit by ML (--ml)" if design.blocks else ""))


def fit(text: str, df, reml: bool = True, factors=(), refs=None, source: str = "the data",
        weights: str | None = None, contrasts: dict | None = None) -> FittedModel:
    """lmer(): parse the formula, build the design from the data frame, fit."""
    formula = parse_formula(text)
    design = build_design(formula, df, factors, refs, source, weights=weights, contrasts=contrasts)
    return fit_design(formula, design, reml)


# -- assembling the result -----------------------------------------------------------------------
def _fixed_effects(fm: FittedModel) -> list[FixedEffect]:
    se = np.sqrt(np.diag(fm.vcov()))
    return [FixedEffect(t, float(b), float(s), float(b / s) if 0 < s < np.inf else float("nan"))
            for t, b, s in zip(fm.design.fixed_names, fm.sol.beta, se)]


def _variance_components(fm: FittedModel):
    """Variances and sds per random term, correlations within each term, then the residual."""
    vcs, cors = [], []
    for blk, C in zip(fm.blocks, fm.covariances()):
        sd = np.sqrt(np.diag(C))
        name = blk.name or blk.group      # lme4's VarCorr name: Subject, Subject.1, ...
        for i, term in enumerate(blk.terms):
            vcs.append(VarianceComponent(name, term, float(C[i, i]), float(sd[i])))
        if blk.correlated:
            for j in range(blk.p):
                for i in range(j + 1, blk.p):
                    r = C[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else float("nan")
                    cors.append(Correlation(name, blk.terms[j], blk.terms[i], float(r)))
    s = fm.sol.sigma
    vcs.append(VarianceComponent("Residual", None, s * s, s))
    return vcs, cors


def _random_effects(fm: FittedModel) -> list[RandomEffect]:
    rows = []
    for blk, b, V in zip(fm.blocks, fm.sol.b, fm.sol.cond_var or []):
        sd = np.sqrt(np.maximum(np.diagonal(V, axis1=1, axis2=2), 0.0))
        for j, term in enumerate(blk.terms):
            rows.extend(RandomEffect(blk.group, lev, term, float(b[g, j]), float(sd[g, j]))
                        for g, lev in enumerate(blk.levels))
    return rows


def _scaled_residuals(fm: FittedModel) -> dict[str, float]:
    r = (fm.design.y - fm.fitted()) / fm.sol.sigma
    if fm.design.weights is not None:   # Pearson residuals: sqrt(w) (y - fitted) / sigma
        r = r * np.sqrt(fm.design.weights)
    return quartiles(r)


def _warnings(fm: FittedModel, singular: bool) -> list[str]:
    out = list(fm.design.warnings) + list(fm.opt.messages)
    if not fm.opt.converged and (fm.opt.check is None or fm.opt.check.converged):   # else the check said why
        out.append(f"the optimizer did not converge ({fm.opt.return_code}); estimates may be unreliable")
    if singular:
        out.append(SINGULAR_WARNING)
    out += _overflow_warnings(fm)
    return out


def _overflow_warnings(fm: FittedModel) -> list[str]:
    """A coefficient whose variance is beyond floating point (a column scaled by 1e-200, say) has no usable
    standard error, t value or df: say so rather than print t = 0, p = 1."""
    var = np.diag(fm.vcov())
    bad = [name for name, v in zip(fm.design.fixed_names, var) if not np.isfinite(v)]
    if not bad:
        return []
    return [f"the variance of the estimate of {', '.join(map(repr, bad))} is beyond floating point (the "
            "column's scale is extreme), so its standard error, t value and p-value are not available; "
            "rescale the column (e.g. I(x * 1e200))"]


def _optimizer_summary(opt: OptSummary) -> dict:
    """What the optimizer did, for every format: total evaluations, each run, and the convergence check."""
    out = {"name": opt.optimizer, "evaluations": opt.feval, "return_code": opt.return_code}
    if opt.runs:
        out["runs"] = [{"kind": r.kind, "evaluations": r.feval, "objective": r.fmin, "return_code": r.return_code}
                       for r in opt.runs]
    if opt.newton is not None:
        out["newton"] = {"steps": opt.newton.steps, "gradient_solutions": opt.newton.solutions,
                         "objective_gain": opt.newton.gain}
    if opt.check is not None:
        out["max_grad"] = opt.check.max_grad
    return out


def assemble(fm: FittedModel) -> FitResult:
    """The FitResult of a fitted model (lme4's summary)."""
    n = fm.design.n
    npar, ll = fm.npar(), fm.loglik()
    singular = fm.is_singular()
    vcs, cors = _variance_components(fm)
    return FitResult(
        formula=str(fm.formula.text), method="REML" if fm.reml else "ML", nobs=n,
        n_dropped=fm.design.n_dropped, ngroups={b.group: b.nlevels for b in fm.blocks},
        reml_criterion=fm.sol.objective if fm.reml else None,
        deviance=None if fm.reml else fm.sol.objective,
        loglik=ll, aic=-2 * ll + 2 * npar, bic=-2 * ll + np.log(n) * npar, npar=npar, df_resid=n - npar,
        sigma=fm.sol.sigma, theta=[float(t) for t in fm.sol.theta], converged=fm.opt.converged,
        singular=singular,
        optimizer=_optimizer_summary(fm.opt),
        warnings=_warnings(fm, singular), fixed_effects=_fixed_effects(fm), vcov=fm.vcov(),
        variance_components=vcs, correlations=cors, random_effects=_random_effects(fm),
        scaled_residuals=fm.residual_quantiles(),
    )


# -- the report of a formula: lmer's summary, or lm's when there is no random term ---------------
CI_WITHOUT_RANDOM_NOTE = "--ci is for mixed models; this formula has no random terms, so no intervals are computed"


@dataclass
class Analysis:
    """What `lmm fit` reports: the fitted model, its report (FitResult, or lm.LmResult for a formula
    without random terms) and notes on how it was made."""

    fitted: FittedModel
    report: object
    notes: list[str]

    @property
    def mixed(self) -> bool:
        return bool(self.fitted.blocks)


def analyze(fm: FittedModel, df_method: str = "satterthwaite", ci: str | None = None, level: float = 0.95,
            nsim: int = 1000, seed: int | None = None, progress=None) -> Analysis:
    """lmer + lmerTest's summary of a mixed model (with intervals when ci is given), or summary(lm())
    when the formula has no random terms; progress(done, total) follows a bootstrap."""
    if not fm.blocks:
        from lmmcli.lm import fit_lm

        notes = [CI_WITHOUT_RANDOM_NOTE] if ci is not None else []
        return Analysis(fm, fit_lm(fm.formula, fm.design), notes)
    from lmmcli.inference.summary import summarize

    return Analysis(fm, summarize(fm, df_method, ci, level, nsim, seed, progress), [])
