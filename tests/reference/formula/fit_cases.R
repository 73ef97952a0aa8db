# Reference numbers for tests/reference/formula: every case of cases.tsv fitted by lme4 (lmerTest for
# Satterthwaite df) on data/formula.csv, read with read.csv as a user would (text columns as factors).
# Output: expected/<id>.json and versions.txt. Run from this folder: Rscript fit_cases.R
suppressMessages({library(lme4); library(lmerTest); library(jsonlite); library(splines)})
d <- read.csv("data/formula.csv", stringsAsFactors = TRUE)
nd <- read.csv("data/formula_new.csv", stringsAsFactors = TRUE)
cases <- read.delim("cases.tsv", stringsAsFactors = FALSE, na.strings = character(0), quote = "")
num <- function(x) unname(as.numeric(x))
for (i in seq_len(nrow(cases))) {
  cs <- cases[i, ]
  ctr <- NULL
  if (nzchar(cs$contrasts)) {
    parts <- strsplit(strsplit(cs$contrasts, ",")[[1]], "=")
    ctr <- setNames(lapply(parts, `[`, 2), sapply(parts, `[`, 1))
  }
  # subset: the rows lmm should end up fitting (lmm drops rows of weight 0, where lme4's criterion is Inf)
  dd <- if (nzchar(cs$subset)) d[eval(parse(text = cs$subset), d), ] else d
  args <- list(formula = as.formula(cs$formula), data = dd, REML = as.logical(cs$reml))
  if (nzchar(cs$weights)) args$weights <- dd[[cs$weights]]
  if (!is.null(ctr)) args$contrasts <- ctr
  warn <- character(0)
  m <- withCallingHandlers(tryCatch(do.call(lmerTest::lmer, args), error = function(e) e),
                           warning = function(w) { warn <<- c(warn, conditionMessage(w)); invokeRestart("muffleWarning") })
  out <- list(id = cs$id, formula = cs$formula, subset = cs$subset, warnings = warn)
  if (inherits(m, "error")) {
    out$error <- conditionMessage(m)
  } else {
    s <- summary(m)
    co <- s$coefficients
    vc <- as.data.frame(VarCorr(m))
    out$fixef <- list(terms = rownames(co), estimate = num(co[, 1]), se = num(co[, 2]),
                      df = num(co[, "df"]))
    out$objective <- num(if (isREML(m)) REMLcrit(m) else deviance(m))
    out$sigma <- sigma(m)
    out$theta <- num(getME(m, "theta"))
    out$varcorr <- list(grp = vc$grp, var1 = ifelse(is.na(vc$var1), "", vc$var1),
                        var2 = ifelse(is.na(vc$var2), "", vc$var2), sdcor = vc$sdcor)
    out$ngrps <- as.list(ngrps(m))
    out$nobs <- nobs(m)
    out$fitted <- num(fitted(m))
    out$residuals_pearson <- num(residuals(m, type = "pearson", scaled = TRUE))
    out$ranef <- lapply(ranef(m), function(r) list(levels = rownames(r), terms = colnames(r),
                                                  values = unname(as.list(as.data.frame(r)))))
    if (cs$predict == "yes") {
      out$predict_new <- list(conditional = num(predict(m, newdata = nd, allow.new.levels = TRUE)),
                              population = num(predict(m, newdata = nd, re.form = NA)))
    }
  }
  writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null"),
             file.path("expected", paste0(cs$id, ".json")))
}
writeLines(c(R.version.string, paste("lme4", packageVersion("lme4")), paste("lmerTest", packageVersion("lmerTest")),
             paste("Matrix", packageVersion("Matrix")), paste("jsonlite", packageVersion("jsonlite"))),
           "versions.txt")

# A formula without random terms is lm(): prior weights and an offset as summary(lm(weights = )) reports them
# (R 4.2's summary.lm counts the offset as part of the fitted values in R^2).
l <- lm(y ~ x + V + offset(o), d, weights = w)
s <- summary(l)
lm_out <- list(id = "lm_weights_offset", formula = "y ~ x + V + offset(o)", weights = "w",
               fixef = list(terms = rownames(s$coefficients), estimate = num(s$coefficients[, 1]),
                            se = num(s$coefficients[, 2])),
               r_squared = s$r.squared, adj_r_squared = s$adj.r.squared, sigma = s$sigma,
               fstatistic = num(s$fstatistic[1]), loglik = num(logLik(l)), aic = AIC(l),
               residual_quantiles = num(quantile(s$residuals)))
writeLines(toJSON(lm_out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "expected/lm_weights_offset.json")

# lmerTest's ranova of a weighted fit with sum contrasts: the reduced models keep both.
m <- lmerTest::lmer(y ~ x + V + (x|B), d, weights = w, contrasts = list(V = "contr.sum"))
r <- ranova(m)
writeLines(toJSON(list(id = "ranova_weights_contrasts", formula = "y ~ x + V + (x|B)", weights = "w",
                       contrasts = "V=contr.sum", rows = rownames(r), npar = num(r$npar), loglik = num(r$logLik),
                       lrt = num(r$LRT)),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"),
           "expected/ranova_weights_contrasts.json")

# lmm fit --by H --weights w --contrasts sum: one lmer per value of H, each with the weights and contrasts.
by_out <- lapply(c("h1", "h2"), function(h) {
  s <- d[d$H == h, ]
  m <- lmer(y ~ V + (1|B), s, weights = w, contrasts = list(V = "contr.sum"))
  list(value = h, terms = names(fixef(m)), estimate = num(fixef(m)), objective = REMLcrit(m))
})
writeLines(toJSON(list(id = "by_weights_contrasts", formula = "y ~ V + (1|B)", by = "H", fits = by_out),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE), "expected/by_weights_contrasts.json")

# lmerTest's anova (Satterthwaite) of fits with sum and Helmert contrasts, types 1, 2 and 3.
anova_out <- list()
for (kind in c("contr.sum", "contr.helmert")) {
  m <- lmerTest::lmer(y ~ V * N + x + (1|B), d, weights = w, contrasts = list(V = kind, N = kind))
  for (type in c(1, 2, 3)) {
    a <- anova(m, type = type)
    anova_out[[length(anova_out) + 1]] <- list(contrasts = kind, type = type, terms = rownames(a),
                                               F = num(a[["F value"]]), NumDF = num(a$NumDF),
                                               DenDF = num(a$DenDF))
  }
}
writeLines(toJSON(list(formula = "y ~ V * N + x + (1|B)", weights = "w", tables = anova_out),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE), "expected/anova_contrasts.json")

# glmer with sum contrasts (lmm fit --family binomial --contrasts sum).
g <- glmer(I(y > 14) ~ V + x + (1|B), d, family = binomial, contrasts = list(V = "contr.sum"))
writeLines(toJSON(list(formula = "I(y > 14) ~ V + x + (1|B)", family = "binomial", contrasts = "V=contr.sum",
                       terms = names(fixef(g)), estimate = num(fixef(g)), aic = AIC(g)),
                  digits = NA, auto_unbox = TRUE, pretty = TRUE), "expected/glmer_contrasts.json")
