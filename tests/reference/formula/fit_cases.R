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
