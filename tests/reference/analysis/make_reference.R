# Reference numbers for lmm anova / ranova / emmeans (tests/inference/test_anova.py and friends).
# Run from this folder:  Rscript make_reference.R
# Writes data/*.csv (simulated here, set.seed, rounded so the CSV is the data) and expected/<case>.json.
# Fits read the CSVs back with read.csv(stringsAsFactors = TRUE); `factors` columns go through factor().
suppressPackageStartupMessages({library(lmerTest); library(emmeans); library(jsonlite)})
stopifnot(packageVersion("lmerTest") == "3.1.3", packageVersion("emmeans") >= "1.8.4")
versions <- sapply(c("lme4", "lmerTest", "pbkrtest", "emmeans", "Matrix"), function(p) as.character(packageVersion(p)))
versions["R"] <- paste(R.version$major, R.version$minor, sep = ".")

# -- data ---------------------------------------------------------------------------------------
set.seed(20261201)
twoway <- expand.grid(B = 1:4, A = c("ctrl", "low-dose", "high-dose"), g = sprintf("s%02d", 1:24),
                      stringsAsFactors = FALSE)
twoway$x <- round(rnorm(nrow(twoway), 5, 1.5), 3)
gi <- match(twoway$g, unique(twoway$g))
b0 <- rnorm(24, 0, 2); b1 <- rnorm(24, 0, 0.4)
aeff <- c(ctrl = 0, `low-dose` = 1.5, `high-dose` = 2.5)[twoway$A]
beff <- c(0, 0.5, -0.3, 0.8)[twoway$B]
abeff <- ifelse(twoway$A == "high-dose" & twoway$B == 4, 1.2, 0) + ifelse(twoway$A == "low-dose" & twoway$B == 2, -0.7, 0)
twoway$w <- round(runif(nrow(twoway), 0.5, 2), 3)   # prior weights, for the --weights case
twoway$y <- round(10 + aeff + beff + abeff + 0.8 * twoway$x + b0[gi] + b1[gi] * twoway$x + rnorm(nrow(twoway)), 4)
keep <- runif(nrow(twoway)) > ifelse(twoway$A == "high-dose", 0.4, 0.15)   # unbalanced cells
twoway <- twoway[keep, c("g", "A", "B", "x", "w", "y")]
write.csv(twoway, "data/twoway.csv", row.names = FALSE)

nested <- expand.grid(rep = 1:4, b = 1:3, a = sprintf("site%d", 1:8))
nested$x <- round(runif(nrow(nested), 0, 10), 2)
ai <- as.integer(nested$a); bi <- (ai - 1) * 3 + nested$b
nested$y <- round(5 + 0.3 * nested$x + rnorm(8, 0, 1.5)[ai] + rnorm(24, 0, 1)[bi] + rnorm(nrow(nested), 0, 0.8), 4)
nested <- nested[runif(nrow(nested)) > 0.2, c("a", "b", "x", "y")]
write.csv(nested, "data/nested.csv", row.names = FALSE)
missing_cell <- twoway[!(twoway$A == "high-dose" & twoway$B == 4), ]   # an empty cell: A:B is rank deficient
write.csv(missing_cell, "data/twoway_missing.csv", row.names = FALSE)
crossed <- expand.grid(item = sprintf("i%02d", 1:12), subj = sprintf("p%02d", 1:16), stringsAsFactors = FALSE)
crossed$cond <- (match(crossed$item, unique(crossed$item)) %% 2) == 0          # TRUE/FALSE, a logical factor
crossed$grp <- c("north", "south", "west")[(match(crossed$subj, unique(crossed$subj)) %% 3) + 1]
crossed$x <- round(rnorm(nrow(crossed), 0, 1), 3)
crossed$z <- round(runif(nrow(crossed), 1, 5), 3)
crossed$y <- round(2 + 0.6 * crossed$cond + c(north = 0, south = 0.4, west = -0.3)[crossed$grp] + 0.5 * crossed$x -
  0.2 * crossed$z + 0.15 * crossed$x * crossed$z + rnorm(12, 0, 0.5)[match(crossed$item, unique(crossed$item))] +
  rnorm(16, 0, 0.7)[match(crossed$subj, unique(crossed$subj))] + rnorm(nrow(crossed), 0, 0.6), 4)
crossed <- crossed[runif(nrow(crossed)) > 0.25, ]
write.csv(crossed, "data/crossed.csv", row.names = FALSE)
file.copy("../../../sample_data/gpa.csv", "data/gpa.csv", overwrite = TRUE)
file.copy("../../../sample_data/sleepstudy.csv", "data/sleepstudy.csv", overwrite = TRUE)

# -- cases ----------------------------------------------------------------------------------------
em <- function(specs, by = NULL, df = "kenward-roger", adjust = "tukey", level = 0.95)
  list(specs = specs, by = by, df = df, adjust = adjust, level = level)
cases <- list(
  list(id = "twoway_AxB", data = "twoway", formula = "y ~ A*B + x + (1 + x | g)", factors = "B", reml = TRUE,
       anova = c("3", "2", "1"),
       emmeans = list(em("A"), em("A", df = "satterthwaite"), em("B", adjust = "holm"),
                      em(c("A", "B"), adjust = "holm", df = "satterthwaite"), em("A", by = "B", level = 0.9),
                      em("A", by = "B", df = "satterthwaite", adjust = "bonferroni"))),
  list(id = "twoway_Ax", data = "twoway", formula = "y ~ A*x + B + (1 | g)", factors = "B", reml = TRUE,
       anova = c("3", "2", "1"),
       emmeans = list(em("A", adjust = "bonferroni"), em("A", df = "satterthwaite", adjust = "none"),
                      em("B", df = "satterthwaite"))),
  list(id = "twoway_ml", data = "twoway", formula = "y ~ A + B + x + (1 + x | g)", factors = "B", reml = FALSE,
       anova = c("3", "1"), emmeans = list(em("A", df = "satterthwaite"))),
  list(id = "gpa_jobsex", data = "gpa", formula = "gpa ~ occasion + job*sex + (1 + occasion | student)",
       factors = character(0), reml = TRUE, anova = c("3", "2", "1"),
       emmeans = list(em("job"), em(c("job", "sex"), df = "satterthwaite"), em("sex", by = "job"),
                      em("job", by = "sex", adjust = "holm"))),
  list(id = "gpa_main", data = "gpa", formula = "gpa ~ job + sex + highgpa + (1 | student)",
       factors = character(0), reml = TRUE, anova = c("3", "2", "1"),
       emmeans = list(em("sex"), em("job", df = "satterthwaite")), ranova = TRUE),
  list(id = "sleep_slope", data = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)",
       factors = "Subject", reml = TRUE, anova = c("3"), emmeans = list(), ranova = TRUE),
  list(id = "sleep_ml", data = "sleepstudy", formula = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
       factors = "Subject", reml = FALSE, anova = character(0), emmeans = list(), ranova = TRUE),
  list(id = "nested", data = "nested", formula = "y ~ x + (1 | a/b)", factors = "b", reml = TRUE,
       anova = c("3"), emmeans = list(), ranova = TRUE),
  list(id = "twoway_ranova", data = "twoway", formula = "y ~ A + x + (1 + x | g)", factors = "B", reml = TRUE,
       anova = character(0), emmeans = list(), ranova = TRUE),
  list(id = "twoway_uncorr", data = "twoway", formula = "y ~ A + B + x + (x || g)", factors = "B", reml = TRUE,
       anova = c("3", "2"), emmeans = list(em("A", adjust = "none", level = 0.99)), ranova = TRUE),
  list(id = "twoway_nointercept", data = "twoway", formula = "y ~ 0 + A + x + (1 | g)", factors = "B", reml = TRUE,
       anova = c("3", "1"), emmeans = list(em("A", df = "satterthwaite"))),
  list(id = "twoway_functions", data = "twoway", formula = "y ~ A + I(x^2) + scale(x) + (1 | g)", factors = "B",
       reml = TRUE, anova = c("3", "2", "1"), emmeans = list(em("A"), em("A", df = "satterthwaite", adjust = "holm"))),
  list(id = "twoway_slopes", data = "twoway", formula = "y ~ A + B + A:x + (1 | g)", factors = "B", reml = TRUE,
       anova = c("3", "2", "1"), emmeans = list(em("A"), em("B", df = "satterthwaite"))),
  list(id = "twoway_cellmeans", data = "twoway", formula = "y ~ A:B + x + (1 | g)", factors = "B", reml = TRUE,
       anova = c("3", "2", "1"), emmeans = list(em("A", by = "B", adjust = "none"))),
  list(id = "twoway_ref", data = "twoway", formula = "y ~ A*B + x + (1 | g)", factors = "B", reml = TRUE,
       refs = list(A = "low-dose", B = "3"), anova = c("3", "2", "1"),
       emmeans = list(em(c("B", "A"), adjust = "bonferroni"))),
  list(id = "twoway_missing", data = "twoway_missing", formula = "y ~ A*B + x + (1 | g)", factors = "B", reml = TRUE,
       anova = c("3", "2", "1"), emmeans = list(em("A"), em("B", by = "A", df = "satterthwaite"))),
  list(id = "gpa_covariates", data = "gpa", formula = "gpa ~ occasion*sex + job + highgpa + (1 | student)",
       factors = character(0), reml = TRUE, anova = c("3", "2", "1"),
       emmeans = list(em("sex"), em("job", by = "sex", df = "satterthwaite"))),
  list(id = "twoway_sum", data = "twoway", formula = "y ~ A*B + x + (1 + x | g)", factors = "B", reml = TRUE,
       contrasts = list(A = "sum", B = "sum"), anova = c("3", "2", "1"),
       emmeans = list(em("A"), em("B", by = "A", df = "satterthwaite", adjust = "holm")), ranova = TRUE),
  list(id = "twoway_helmert", data = "twoway", formula = "y ~ A*x + B + (1 | g)", factors = "B", reml = TRUE,
       contrasts = list(A = "helmert", B = "poly"), anova = c("3", "2"), emmeans = list(em("A"))),
  list(id = "twoway_weights", data = "twoway", formula = "y ~ A*B + x + (1 | g)", factors = "B", reml = TRUE,
       weights = "w", anova = c("3", "1"), emmeans = list(em("A"), em("A", df = "satterthwaite")), ranova = TRUE),
  list(id = "crossed_xz", data = "crossed", formula = "y ~ cond*grp + x*z + (1 | item) + (1 | subj)",
       factors = character(0), reml = TRUE, anova = c("3", "2", "1"),
       emmeans = list(em("cond"), em("grp", by = "cond", adjust = "tukey"), em(c("grp", "cond"), df = "satterthwaite")),
       ranova = TRUE),
  list(id = "crossed_slope", data = "crossed", formula = "y ~ grp + x + (1 + x | subj) + (1 | item)",
       factors = character(0), reml = TRUE, anova = c("3"), emmeans = list(em("grp", adjust = "holm")),
       ranova = TRUE),
  list(id = "twoway_offset", data = "twoway", formula = "y ~ A + x + offset(0.5 * w) + (1 | g)", factors = "B",
       reml = TRUE, anova = c("3"), emmeans = list(em("A"), em("A", df = "satterthwaite", adjust = "none"))),
  list(id = "twoway_3way", data = "twoway", formula = "y ~ A*B*x + (1 | g)", factors = "B", reml = TRUE,
       anova = c("3", "2", "1"), emmeans = list(em("B", by = "A", df = "satterthwaite", adjust = "holm")))
)

# -- helpers --------------------------------------------------------------------------------------
anova_rows <- function(tab) lapply(seq_len(nrow(tab)), function(i) list(
  term = rownames(tab)[i], sum_sq = tab[i, "Sum Sq"], mean_sq = tab[i, "Mean Sq"], num_df = tab[i, "NumDF"],
  den_df = tab[i, "DenDF"], f_value = tab[i, "F value"], p_value = tab[i, "Pr(>F)"]))

emmeans_result <- function(m, e) {
  specs <- e$specs
  g <- emmeans(m, specs = specs, by = e$by, lmer.df = e$df)
  s <- as.data.frame(summary(g, level = e$level))
  lv <- c(specs, e$by)
  means <- lapply(seq_len(nrow(s)), function(i) list(
    levels = setNames(lapply(lv, function(v) as.character(s[i, v])), lv), emmean = s$emmean[i],
    std_error = s$SE[i], df = s$df[i], conf_low = s$lower.CL[i], conf_high = s$upper.CL[i]))
  pr <- pairs(g, adjust = e$adjust)
  ps <- as.data.frame(summary(pr))
  adj <- attr(summary(pr), "mesg")
  cons <- lapply(seq_len(nrow(ps)), function(i) {
    r <- list(contrast = as.character(ps$contrast[i]), estimate = ps$estimate[i], std_error = ps$SE[i],
              df = ps$df[i], t_ratio = ps$t.ratio[i], p_value = ps$p.value[i])
    if (!is.null(e$by)) r$by <- setNames(lapply(e$by, function(v) as.character(ps[i, v])), e$by)
    r
  })
  c(e, list(emmeans = means, contrasts = cons, messages = adj))
}

ranova_rows <- function(tab) lapply(seq_len(nrow(tab)), function(i) list(
  term = rownames(tab)[i], npar = tab[i, "npar"], loglik = tab[i, "logLik"], aic = tab[i, "AIC"],
  lrt = tab[i, "LRT"], df = tab[i, "Df"], p_value = tab[i, "Pr(>Chisq)"]))

for (cs in cases) {
  d <- read.csv(file.path("data", paste0(cs$data, ".csv")), stringsAsFactors = TRUE)
  for (f in cs$factors) d[[f]] <- factor(d[[f]])
  for (f in names(cs$refs)) d[[f]] <- relevel(d[[f]], ref = cs$refs[[f]])
  ctr <- if (is.null(cs$contrasts)) NULL else lapply(cs$contrasts, function(k) paste0("contr.", k))
  d$.w <- if (is.null(cs$weights)) 1 else d[[cs$weights]]
  m <- if (is.null(cs$weights)) lmer(as.formula(cs$formula), data = d, REML = cs$reml, contrasts = ctr) else
    lmer(as.formula(cs$formula), data = d, REML = cs$reml, contrasts = ctr, weights = .w)
  out <- list(case = cs$id, data = paste0(cs$data, ".csv"), formula = cs$formula, factors = cs$factors,
              refs = if (is.null(cs$refs)) setNames(list(), character(0)) else cs$refs,
              contrasts = if (is.null(cs$contrasts)) setNames(list(), character(0)) else cs$contrasts,
              weights = cs$weights,
              reml = cs$reml, versions = as.list(versions), fixef = as.list(fixef(m)),
              anova = list(), emmeans = list())
  for (type in cs$anova) {
    out$anova[[paste0(type, "_satterthwaite")]] <- anova_rows(anova(m, type = type))
    if (cs$reml) out$anova[[paste0(type, "_kenward-roger")]] <- anova_rows(anova(m, type = type, ddf = "Kenward-Roger"))
  }
  out$emmeans <- lapply(cs$emmeans, function(e) emmeans_result(m, e))
  if (isTRUE(cs$ranova)) out$ranova <- ranova_rows(ranova(m))
  writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = TRUE),
             file.path("expected", paste0(cs$id, ".json")))
}
