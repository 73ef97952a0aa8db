"""The FitResult of a fitted GLMM, laid out as summary(glmer): z tests, no residual variance.

The deviance is always a complete -2 log-likelihood. glmer prints the same number for the Laplace
approximation, but for nAGQ > 1 its deviance leaves out -2 * the saturated model's log-likelihood
(a constant of the data); `extra["glmer_deviance"]` is glmer's printed value and the note says so.
"""

from __future__ import annotations

from math import erfc, sqrt

import numpy as np

from lmmcli.distributions import chi2_sf, quartiles
from lmmcli.engine.pls import split_theta
from lmmcli.glmm.fit import GlmmFit
from lmmcli.results import SINGULAR_WARNING, Correlation, FitResult, FixedEffect, RandomEffect, VarianceComponent

APPROXIMATION = {0: "PQL-like (nAGQ = 0)", 1: "Laplace Approximation"}


def approximation(nagq: int) -> str:
    return APPROXIMATION.get(nagq, f"Adaptive Gauss-Hermite Quadrature, nAGQ = {nagq}")


def z_p_value(z: float) -> float:
    """Two-sided normal p-value, 2 * pnorm(-|z|)."""
    return erfc(abs(z) / sqrt(2.0))


def fixed_effects(fm: GlmmFit) -> list[FixedEffect]:
    se = np.sqrt(np.diag(fm.vcov))
    out = []
    for t, b, s in zip(fm.design.fixed_names, fm.beta, se):
        z = float(b / s) if s > 0 else float("nan")
        out.append(FixedEffect(t, float(b), float(s), z, None, z_p_value(z) if np.isfinite(z) else None))
    return out


def covariances(fm: GlmmFit) -> list[np.ndarray]:
    """Each random term's covariance matrix T T' (glmer's sigma is 1 for binomial and Poisson)."""
    return [T @ T.T for T in split_theta(fm.blocks, fm.theta)]


def variance_components(fm: GlmmFit):
    vcs, cors = [], []
    for blk, C in zip(fm.blocks, covariances(fm)):
        sd = np.sqrt(np.diag(C))
        name = blk.name or blk.group          # lme4's VarCorr name: g, then g.1 for (x || g)'s second term
        for i, term in enumerate(blk.terms):
            vcs.append(VarianceComponent(name, term, float(C[i, i]), float(sd[i])))
        if blk.correlated:
            for j in range(blk.p):
                for i in range(j + 1, blk.p):
                    r = C[i, j] / (sd[i] * sd[j]) if sd[i] * sd[j] > 0 else float("nan")
                    cors.append(Correlation(name, blk.terms[j], blk.terms[i], float(r)))
    return vcs, cors


def random_effects(fm: GlmmFit) -> list[RandomEffect]:
    rows = []
    for blk, b, V in zip(fm.blocks, fm.b(), fm.cond_var()):
        sd = np.sqrt(np.maximum(np.diagonal(V, axis1=1, axis2=2), 0.0))
        for j, term in enumerate(blk.terms):
            rows.extend(RandomEffect(blk.group, lev, term, float(b[g, j]), float(sd[g, j]))
                        for g, lev in enumerate(blk.levels))
    return rows


def pearson_residuals(fm: GlmmFit) -> np.ndarray:
    """(y - mu) sqrt(prior weight) / sqrt(V(mu)), as residuals(glmer, 'pearson')."""
    m, mu = fm.model, fm.state.mu
    return (m.y - mu) * np.sqrt(m.wt) / np.sqrt(m.family.variance(mu))


def overdispersion(fm: GlmmFit, df_resid: int) -> dict:
    """performance::check_overdispersion: Pearson chi^2 / residual df, and the chi^2 test of it."""
    chisq = float(np.sum(pearson_residuals(fm) ** 2))
    return {"chisq": chisq, "df": df_resid, "ratio": chisq / df_resid if df_resid > 0 else None,
            "p_value": float(chi2_sf(chisq, df_resid)) if df_resid > 0 else None}


def warnings(fm: GlmmFit, singular: bool) -> list[str]:
    out = list(fm.design.warnings) + list(fm.gd.warnings) + list(fm.warnings)
    if not fm.state.converged:
        out.append("PIRLS did not converge at the optimum; estimates may be unreliable")
    if singular:
        out.append(SINGULAR_WARNING)
    out += separation_warnings(fm)
    return out


def separation_warnings(fm: GlmmFit) -> list[str]:
    """Complete separation: fitted probabilities at 0 or 1, or a coefficient beyond any finite estimate."""
    if fm.model.family.name != "binomial":
        return []
    mu = fm.state.mu
    extreme = (mu < 1e-8) | (mu > 1 - 1e-8)
    big = [fe for fe, s in zip(fm.design.fixed_names, np.sqrt(np.diag(fm.vcov))) if not np.isfinite(s) or s > 1e3]
    if extreme.any() or big:
        what = f"{int(extreme.sum())} fitted probabilities are numerically 0 or 1" if extreme.any() else \
            f"the standard error of {big[0]} is huge"
        return [f"complete or quasi-complete separation: {what}; the fixed effects may be infinite"]
    return []


def assemble(fm: GlmmFit) -> FitResult:
    """The FitResult of a fitted GLMM (summary(glmer))."""
    n = fm.design.n
    npar, ll = fm.npar(), fm.loglik()
    singular = fm.is_singular()
    vcs, cors = variance_components(fm)
    opt = fm.opt2 or fm.opt1
    family = fm.model.family
    extra = {"family": family.name, "link": family.link.name, "nagq": fm.nagq,
             "approximation": approximation(fm.nagq), "glmer_deviance": fm.glmer_deviance()}
    if fm.nagq > 1:
        extra["deviance_note"] = (f"glmer prints deviance {fm.glmer_deviance():.4f} = this one minus the "
                                  f"saturated model's -2 logLik ({fm.model.const:.4f})")
    if family.name == "poisson":
        extra["overdispersion"] = overdispersion(fm, n - npar)
    return FitResult(
        formula=str(fm.formula.text), method="ML", nobs=n, n_dropped=fm.design.n_dropped,
        ngroups={b.group: b.nlevels for b in fm.blocks}, reml_criterion=None, deviance=fm.objective,
        loglik=ll, aic=-2 * ll + 2 * npar, bic=-2 * ll + np.log(n) * npar, npar=npar, df_resid=n - npar,
        sigma=1.0, theta=[float(t) for t in fm.theta], converged=fm.opt1.converged and opt.converged,
        singular=singular,
        optimizer={"name": opt.optimizer, "evaluations": fm.opt1.feval + (fm.opt2.feval if fm.opt2 else 0),
                   "return_code": opt.return_code},
        warnings=warnings(fm, singular), fixed_effects=fixed_effects(fm), vcov=fm.vcov.tolist(),
        variance_components=vcs, correlations=cors, random_effects=random_effects(fm),
        scaled_residuals=quartiles(pearson_residuals(fm)), extra=extra,
    )


def attach_wald(result: FitResult, level: float = 0.95) -> FitResult:
    """Wald intervals estimate +/- z * se for the fixed effects (lme4's confint(method = 'Wald'));
    none for the variance parameters, as lme4."""
    from lmmcli.distributions import interval_z

    z = interval_z(level)
    for fe in result.fixed_effects:
        fe.conf_low, fe.conf_high = fe.estimate - z * fe.std_error, fe.estimate + z * fe.std_error
    result.extra.update(ci_method="wald", ci_level=level)
    return result


def diagnostics(fm: GlmmFit):
    """plot resid for a GLMM: Pearson residuals against fitted means (residuals(glmer, 'pearson')), and
    normal QQ data of the Pearson residuals and of each term's conditional modes."""
    from lmmcli.predict.plotdata import Diagnostics, normal_qq

    pres = pearson_residuals(fm)
    qq = [normal_qq(pres, "Pearson residuals")]
    for blk, b in zip(fm.blocks, fm.b()):
        qq.extend(normal_qq(b[:, j], f"{blk.group}: {term}") for j, term in enumerate(blk.terms))
    return Diagnostics(fm.design.response, fm.state.mu, pres, qq)
