# Profile-likelihood intervals (confint(method = "profile")) of some GLMM cases in cases.tsv, from
# lme4::glmer (run from this folder: Rscript make_profile.R). Written to expected/profile_<id>.json.
suppressMessages({library(lme4); library(jsonlite)})
cases <- read.delim("cases.tsv", stringsAsFactors = FALSE, colClasses = "character")
versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                 Matrix = as.character(packageVersion("Matrix")))
# (binary_slope is left out: R stops there with "profiling detected new, lower deviance")
for (id in c("cbpp", "counts_offset", "cbpp_agq25", "pois_offset_slope")) {
  cs <- cases[cases$id == id, ]
  d <- read.csv(cs$csv, stringsAsFactors = TRUE)
  if (nzchar(cs$factors)) for (f in strsplit(cs$factors, ",")[[1]]) d[[f]] <- factor(d[[f]])
  m <- glmer(as.formula(cs$formula), d, get(cs$family)(link = cs$link), nAGQ = as.integer(cs$nagq))
  t0 <- proc.time()[["elapsed"]]
  ci <- confint(m, method = "profile", oldNames = FALSE, level = 0.95)
  secs <- proc.time()[["elapsed"]] - t0
  write_json(list(id = id, versions = versions, seconds = secs, names = rownames(ci), lower = unname(ci[, 1]),
                  upper = unname(ci[, 2])),
             file.path("expected", paste0("profile_", id, ".json")), digits = NA, auto_unbox = TRUE, pretty = TRUE)
  cat(id, secs, "\n"); print(ci)
}
