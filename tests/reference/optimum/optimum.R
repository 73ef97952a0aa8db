# Reference optima for tests/engine/test_restarts.py, made with R 4.2.2, lme4 1.1-31 (nloptwrap/BOBYQA).
# Run from this folder: Rscript optimum.R > optimum.json
# For each case: lme4's own fit (REML criterion, theta, evaluations, its checkConv messages) and the
# best optimum R finds from 30 random starts, each BOBYQA run restarted from its end point until it
# stops improving (R's devfun, so the number is lme4's objective, independent of lmm).
suppressMessages(library(lme4))
cases <- list(
  list(id = "block3_stops_short", file = "block3_stops_short.csv", formula = "y ~ x1 + x2 + (1 + x1 + x2 | g)"),
  list(id = "block3_boundary", file = "block3_boundary.csv", formula = "y ~ x1 + x2 + (1 + x1 + x2 | g)"),
  list(id = "orange", file = "orange.csv", formula = "circumference ~ age + (age | Tree)"))
ctrl <- list(ftol_abs = 1e-12, ftol_rel = 1e-14, xtol_abs = 1e-12, maxeval = 1e5)
polish <- function(devfun, par, lower) {
  best <- nloptwrap(par, devfun, lower, rep(Inf, length(par)), control = ctrl)
  repeat {
    nxt <- nloptwrap(best$par, devfun, lower, rep(Inf, length(par)), control = ctrl)
    if (nxt$fval >= best$fval - 1e-10) break
    best <- nxt
  }
  best
}
out <- list()
for (cs in cases) {
  d <- read.csv(cs$file)
  f <- as.formula(cs$formula)
  m <- suppressWarnings(suppressMessages(lmer(f, d)))
  devfun <- lmer(f, d, devFunOnly = TRUE)
  lower <- environment(devfun)$lower
  set.seed(20261201)
  best <- list(fval = Inf)
  for (s in 1:30) {
    par <- ifelse(lower == 0, runif(length(lower), 0.05, 3), rnorm(length(lower)))
    if (cs$id == "orange") par <- par * c(1, 0.01, 0.01)   # age is in days: its sd's theta is ~1e-3
    r <- tryCatch(polish(devfun, par, lower), error = function(e) list(fval = Inf))
    if (r$fval < best$fval) best <- r
  }
  out[[cs$id]] <- list(
    lme4_reml = REMLcrit(m), lme4_theta = unname(getME(m, "theta")), lme4_feval = m@optinfo$feval,
    lme4_messages = unlist(m@optinfo$conv$lme4$messages),
    best_reml = best$fval, best_theta = best$par,
    devfun_at_best = devfun(best$par))
}
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
cat(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "\n")
