# Column names of R's model.matrix for formulas whose coding is easy to get wrong (no intercept, interactions
# without main effects, nesting, logical and factor() variables, matrix-valued terms). Output:
# expected/model_matrix_names.json, {formula: names}. Run from this folder: Rscript model_matrix_names.R
suppressMessages({library(jsonlite); library(splines)})
d <- read.csv("data/formula.csv", stringsAsFactors = TRUE)
formulas <- c(
  "y ~ 0 + V + N", "y ~ 0 + V:N", "y ~ V:N", "y ~ 0 + x + V:N", "y ~ 0 + V:x + N", "y ~ V + V:N",
  "y ~ N + V:N", "y ~ 0 + V * N", "y ~ V * N * H", "y ~ (V + N + H)^2 - 1", "y ~ x:V + z:V",
  "y ~ V / x", "y ~ 0 + V / N", "y ~ V %in% N", "y ~ z * V + x * z", "y ~ H:V + V:N",
  "y ~ factor(Time > 6) + I(x > 2):V", "y ~ poly(x, 2) * V", "y ~ 0 + ns(z, 2):H + V",
  "y ~ tx + V:tx", "y ~ 0 + H + I(z > 0)", "y ~ factor(Time):x - 1"
)
out <- lapply(formulas, function(f) colnames(model.matrix(as.formula(f), d)))
names(out) <- formulas
writeLines(toJSON(out, pretty = TRUE), "expected/model_matrix_names.json")
