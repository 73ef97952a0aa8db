"""lmer() from sufficient statistics: a fit whose rows stayed in the files, aggregated by DuckDB or Spark.

The engine sees only CrossProducts; the result is assembled exactly as for an in-memory fit (fit.assemble),
with the few row-wise quantities computed from sums (the variance of X beta, the random-effect variance)
or by a second streamed pass over the rows (the scaled residuals' quantiles).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmmcli.aggregate.crossprod import term_blocks
from lmmcli.aggregate.scaling import engine_record
from lmmcli.aggregate.stats import Aggregated
from lmmcli.engine.fit import fit as engine_fit
from lmmcli.errors import ModelSpecError
from lmmcli.fit import FittedModel
from lmmcli.formula import Formula


@dataclass
class AggregatedDesign:
    """What a Design tells the result, without rows: names, levels, counts, warnings."""

    spec: object
    response: str
    blocks: list
    n: int
    n_input: int
    warnings: list[str] = field(default_factory=list)

    @property
    def n_dropped(self) -> int:
        return self.n_input - self.n

    @property
    def fixed_names(self) -> list[str]:
        return self.spec.fixed_names

    weights = None
    offset = None

    @property
    def X(self):
        raise ModelSpecError("this needs the model's rows, which an aggregated fit does not hold",
                             hint="use --engine memory (data that fits in memory) for it")

    y = X


class AggregatedFit(FittedModel):
    """A FittedModel from CrossProducts; `engine_name` names who aggregated them."""

    agg: Aggregated
    engine_name: str = "duckdb"
    residuals: dict | None = None      # quantiles of the scaled residuals, from a second pass

    def fitted(self) -> np.ndarray:
        return self.design.X

    def z_times_b(self) -> np.ndarray:
        return self.design.X

    def residual_quantiles(self) -> dict[str, float]:
        if self.residuals is None:
            return {k: float("nan") for k in ("min", "q1", "median", "q3", "max")}
        return self.residuals

    def variance_parts(self) -> tuple[float, float]:
        """(var(X beta), sum_k mean_i z_ik' Sigma_k z_ik), from the cross-products (variance.decompose)."""
        cp, beta, n = self.agg.cp, self.sol.beta, self.agg.cp.n
        p = len(beta)
        s1, s2 = float(cp.col_sum[:p] @ beta), float(beta @ cp.XyXy[:p, :p] @ beta)
        var_fixed = max(s2 - s1 * s1 / n, 0.0) / (n - 1) if n > 1 else 0.0
        total = 0.0
        for ZtZ, S in zip(self._term_gram(), self.covariances()):
            total += float(np.sum(ZtZ * S)) / n
        return var_fixed, total

    def _term_gram(self) -> list[np.ndarray]:
        """Each term's Z_k'Z_k summed over its levels (p_k x p_k)."""
        cp = self.agg.cp
        out = [cp.D1.sum(axis=0)]
        pos = 0
        if cp.A22 is not None:
            diag = cp.A22
            for blk in self.blocks[1:]:
                l, p = blk.nlevels, blk.p
                sub = diag[pos:pos + l * p, pos:pos + l * p]
                G = np.zeros((p, p))
                for a in range(p):
                    for b in range(p):
                        G[a, b] = sub[a::p, b::p].diagonal().sum()
                out.append(G)
                pos += l * p
        return out


def fit_aggregated(formula: Formula, agg: Aggregated, reml: bool = True, engine: str = "duckdb") -> AggregatedFit:
    """Optimise theta on the aggregated cross-products and solve at the optimum."""
    cp = agg.cp
    design = AggregatedDesign(agg.spec, agg.response, term_blocks(cp.terms), cp.n, agg.n_input, list(agg.warnings))
    fm = AggregatedFit(formula, design, engine_fit(engine_record(agg), reml))
    fm.agg, fm.engine_name = agg, engine
    return fm


def residual_quantiles(runner, fm: AggregatedFit) -> dict[str, float]:
    """The scaled residuals' quantiles by a second pass over the rows (aggregate.residuals)."""
    from lmmcli.aggregate.residuals import quantiles

    agg = fm.agg
    plan = agg.plan
    beta = np.zeros(plan.m - 1)
    kept = [j for j, (name, _) in enumerate(plan.fixed) if name in set(agg.spec.fixed_names)]
    beta[kept] = fm.sol.beta
    tables = []
    for (k, keys), b in zip(agg.term_keys, fm.sol.b):
        name = f"lmm_b{k}"
        runner.register(name, {**keys, **{f"b_{a}": b[:, a] for a in range(b.shape[1])}})
        tables.append((k, name))
    return quantiles(runner, plan, beta, fm.sol.sigma, tables)


def fit_source(text: str, runner, reml: bool = True, factors=(), refs=None, source: str = "the data",
               residuals: bool = True) -> AggregatedFit:
    """lmer() over a runner's data (DuckDB or Spark): parse, aggregate, fit, second pass for residuals."""
    from lmmcli.aggregate.stats import aggregate
    from lmmcli.formula import parse_formula

    formula = parse_formula(text)
    agg = aggregate(runner, formula, factors, refs, source)
    fm = fit_aggregated(formula, agg, reml, runner.name)
    if residuals:
        fm.residuals = residual_quantiles(runner, fm)
    return fm


def check_supported(ci: str | None, df_method: str) -> None:
    """Refuse what needs the rows of an aggregated fit, before any work is done on it."""
    if ci == "boot":
        raise ModelSpecError("--ci boot simulates new responses row by row, which an aggregated fit does not hold",
                             hint="use --ci profile or --ci wald, or --engine memory")
    if df_method == "kenward-roger":
        raise ModelSpecError("--df kenward-roger needs the model's rows, which an aggregated fit does not hold",
                             hint="use --df satterthwaite, or --engine memory")


def compare_source(texts, runner, ml: bool = False, refit: bool = True, factors=(), refs=None,
                   source: str = "the data"):
    """compare.compare (lme4's anova(m1, m2, ...)) over a runner's data: every model aggregated over the
    rows complete in the columns of all of them, each fitted by ML (or REML with refit = False)."""
    from lmmcli import compare as cmp
    from lmmcli.aggregate.stats import aggregate, check_schema, dropped_warning

    formulas = cmp.parse_all(texts)
    refs = dict(refs or {})
    kinds = runner.kinds()
    for f in formulas:
        check_schema(f, kinds, cmp.refs_for(f, refs, formulas), source)
    used = sorted(set().union(*(f.columns() for f in formulas)))
    reml = not ml and not refit
    aggs = [aggregate(runner, f, tuple(factors), cmp.refs_for(f, refs, formulas), source, require=used)
            for f in formulas]
    for agg in aggs:     # the comparison notes the rows every model left out, once
        agg.warnings = [w for w in agg.warnings if w != dropped_warning(agg.n_input - agg.cp.n)]
    fits = [fit_aggregated(f, agg, reml, runner.name) for f, agg in zip(formulas, aggs)]
    if reml:
        cmp.check_same_fixed([fm.design for fm in fits])
    return cmp.compared(formulas, fits, ml, refit, aggs[0].cp.n, aggs[0].n_input)
