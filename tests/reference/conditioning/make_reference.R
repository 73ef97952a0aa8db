# Reference for tests/engine/test_conditioning.py, made with R 4.2.2, lme4 1.1-31.
# Run from this folder: Rscript make_reference.R > expected.json
# circumference ~ age + (age | Tree) on R's Orange (5 trees x 7 ages; age in days, 118..1582): lme4 with
# age as it is stops at a worse optimum (it warns); with scale(age) it reaches the optimum. The same
# model in age's own units is that optimum mapped back (b = T b_s, T = [[1, -mean/sd], [0, 1/sd]]),
# and lme4's REML devfun for raw age, evaluated there, gives the criterion in raw units.
suppressMessages(library(lme4))
d <- as.data.frame(Orange)
d$Tree <- as.character(d$Tree)
write.csv(d[, c("Tree", "age", "circumference")], "orange.csv", row.names = FALSE)
mu <- mean(d$age); s <- sd(d$age)
d$sage <- (d$age - mu) / s
raw <- suppressWarnings(lmer(circumference ~ age + (age | Tree), d))
sc <- lmer(circumference ~ sage + (sage | Tree), d)
Tm <- matrix(c(1, 0, -mu / s, 1 / s), 2)          # column-major: [[1, -mu/s], [0, 1/s]]
sigma <- sigma(sc)
Sigma <- Tm %*% VarCorr(sc)$Tree %*% t(Tm)
R <- Sigma / sigma^2                               # theta: its lower Cholesky factor (R is singular: a
l21 <- R[2, 1] / sqrt(R[1, 1])                     # correlation of -1, so the factor is written out)
theta <- c(sqrt(R[1, 1]), l21, sqrt(max(R[2, 2] - l21^2, 0)))
devfun <- lmer(circumference ~ age + (age | Tree), d, devFunOnly = TRUE)
b <- fixef(sc)
out <- list(
  formula = "circumference ~ age + (age | Tree)",
  lme4_raw_reml = REMLcrit(raw), lme4_raw_messages = unlist(raw@optinfo$conv$lme4$messages),
  scaled_reml = REMLcrit(sc),
  reml = devfun(theta), theta = theta, sigma = sigma,
  fixef = unname(c(b[1] - b[2] * mu / s, b[2] / s)),
  sd = sqrt(diag(Sigma)), cor = Sigma[1, 2] / sqrt(Sigma[1, 1] * Sigma[2, 2]),
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
cat(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "\n")
