# Where lmm's deviance is below glmer's, glmer's own deviance function at lmm's estimates (run from
# this folder: Rscript check_lower.R). lmm_lower_points.json holds the points (lmm's theta and beta,
# written when the cases were checked); expected/lower_deviance.json gets devfun's value at each, for
# nAGQ > 1 without the saturated constant, as glmer prints it.
suppressMessages({library(lme4); library(jsonlite)})
cases <- read.delim("cases.tsv", stringsAsFactors = FALSE, colClasses = "character")
pts <- fromJSON("lmm_lower_points.json")
out <- list(versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
for (id in names(pts)) {
  cs <- cases[cases$id == id, ]
  d <- read.csv(cs$csv, stringsAsFactors = TRUE)
  if (nzchar(cs$factors)) for (f in strsplit(cs$factors, ",")[[1]]) d[[f]] <- factor(d[[f]])
  args <- list(formula = as.formula(cs$formula), data = d, family = get(cs$family)(link = cs$link),
               nAGQ = as.integer(cs$nagq))
  if (nzchar(cs$weights)) args$weights <- d[[cs$weights]]
  m <- suppressWarnings(do.call(glmer, args))
  devfun <- update(m, devFunOnly = TRUE)
  p <- pts[[id]]$params
  out[[id]] <- list(params = p, devfun = devfun(p),
                    glmer_printed = unname(summary(m)$AICtab[["deviance"]]))
  cat(id, out[[id]]$devfun - out[[id]]$glmer_printed, "\n")
}
write_json(out, file.path("expected", "lower_deviance.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)
