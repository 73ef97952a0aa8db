# Reference numbers for the GLMM cases in cases.tsv, from lme4::glmer (run from this folder:
# Rscript make_reference.R [case ids]; without ids: every case and the anova). Each case's CSV is read with read.csv(stringsAsFactors = TRUE) and the
# columns in `factors` are converted with factor(), so factor levels are in sorted order.
suppressMessages({library(lme4); library(jsonlite)})
cases <- read.delim("cases.tsv", stringsAsFactors = FALSE, colClasses = "character")
versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                 Matrix = as.character(packageVersion("Matrix")), numDeriv = as.character(packageVersion("numDeriv")))
one <- function(cs) {
  d <- read.csv(cs$csv, stringsAsFactors = TRUE)
  if (nzchar(cs$factors)) for (f in strsplit(cs$factors, ",")[[1]]) d[[f]] <- factor(d[[f]])
  fam <- get(cs$family)(link = cs$link)
  args <- list(formula = as.formula(cs$formula), data = d, family = fam, nAGQ = as.integer(cs$nagq))
  if (nzchar(cs$weights)) args$weights <- d[[cs$weights]]
  t0 <- proc.time()[["elapsed"]]
  warns <- character(0)      # every warning glmer gives (convergence, singularity, non-integer counts)
  m <- withCallingHandlers(do.call(glmer, args),
                           warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
  secs <- proc.time()[["elapsed"]] - t0
  s <- summary(m)
  cf <- coef(s)
  mu <- fitted(m); y <- m@resp$y; wt <- m@resp$weights; nn <- m@resp$n
  # -2 log-likelihood of the saturated model: what glmer's nAGQ > 1 deviance leaves out
  const <- fam$aic(y, nn, mu, wt, sum(fam$dev.resids(y, mu, wt))) - sum(fam$dev.resids(y, mu, wt))
  re <- as.data.frame(ranef(m, condVar = TRUE))
  vc <- lapply(VarCorr(m), function(v) list(terms = colnames(v), sd = unname(attr(v, "stddev")),
                                                var = unname(diag(v)), corr = unname(attr(v, "correlation"))))
  devfun <- update(m, devFunOnly = TRUE)
  at <- round(c(getME(m, "theta"), fixef(m)), 2) + 0.01
  dev_at <- if (cs$nagq == "0") NA else devfun(at)
  pres <- residuals(m, "pearson")
  # where glmer warns, its finite-difference Hessian (steps of 1e-4 in raw units, where a badly
  # scaled covariate makes the Hessian nearly singular) can be far off: standard errors from
  # numDeriv's Richardson Hessian of the same deviance function, in coordinates beta = beta-hat + A z
  # with A A' = the RX-based vcov (so that every direction has about unit curvature)
  se_numderiv <- NULL
  if (length(m@optinfo$conv$lme4$messages) && cs$nagq != "0") {
    th <- getME(m, "theta"); k <- length(th)
    A <- t(chol(as.matrix(vcov(m, use.hessian = FALSE))))
    f <- function(p) devfun(c(p[seq_len(k)], fixef(m) + A %*% p[-seq_len(k)]))
    H <- numDeriv::hessian(f, c(th, rep(0, length(fixef(m)))), method.args = list(eps = 1e-2, d = 1e-2, r = 4))
    Vz <- 2 * solve(H)[-seq_len(k), -seq_len(k)]
    se_numderiv <- sqrt(diag(A %*% Vz %*% t(A)))
  }
  list(id = cs$id, versions = versions, glmer_seconds = secs,
       fixef = list(terms = rownames(cf), estimate = unname(cf[, 1]), se = unname(cf[, 2]),
                    z = unname(cf[, 3]), p = unname(cf[, 4])),
       vcov = unname(as.matrix(vcov(m))), corr_fixef = unname(as.matrix(cov2cor(vcov(m)))),
       se_rx = unname(sqrt(diag(as.matrix(vcov(m, use.hessian = FALSE))))),
       theta = unname(getME(m, "theta")), varcorr = vc,
       glmer_deviance = unname(s$AICtab[["deviance"]]), glmer_loglik = as.numeric(logLik(m)),
       AIC = unname(s$AICtab[["AIC"]]), BIC = unname(s$AICtab[["BIC"]]), df_resid = df.residual(m),
       saturated_m2loglik = const, loglik_complete = as.numeric(logLik(m)) - (if (as.integer(cs$nagq) > 1) const / 2 else 0),
       npar = attr(logLik(m), "df"), nobs = nobs(m), ngroups = as.list(ngrps(m)),
       is_singular = isSingular(m), converged = is.null(m@optinfo$conv$lme4$messages),
       messages = m@optinfo$conv$lme4$messages, warnings = warns,
       scaled_resid_quantiles = unname(quantile(pres, names = FALSE)),
       ranef = list(grpvar = as.character(re$grpvar), term = as.character(re$term), grp = as.character(re$grp),
                    condval = re$condval, condsd = re$condsd),
       fitted = unname(mu), predict_link = unname(predict(m)),
       predict_population_link = unname(predict(m, re.form = NA)),
       pearson_chisq = sum(pres^2),
       devfun_at = list(params = unname(at), value = dev_at), se_numderiv = unname(se_numderiv))
}
ids <- commandArgs(trailingOnly = TRUE)
for (i in seq_len(nrow(cases))) {
  if (length(ids) && !(cases$id[i] %in% ids)) next
  out <- one(cases[i, ])
  write_json(out, file.path("expected", paste0(cases$id[i], ".json")), digits = NA, auto_unbox = TRUE, pretty = TRUE)
  cat(cases$id[i], out$glmer_deviance, out$glmer_seconds, "\n")
}

if (length(ids)) quit(save = "no")
# anova() between two GLMMs (lmm compare --family): cbpp without and with period
d <- read.csv("data/cbpp.csv", stringsAsFactors = TRUE); d$period <- factor(d$period)
m1 <- glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), d, binomial)
m2 <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), d, binomial)
a <- anova(m1, m2)
write_json(list(versions = versions, npar = a$npar, AIC = a$AIC, BIC = a$BIC, logLik = a$logLik,
                deviance = a$deviance, Chisq = a$Chisq, Df = a$Df, p = a[["Pr(>Chisq)"]]),
           file.path("expected", "compare_cbpp.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
