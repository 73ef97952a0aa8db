# Data for the formula-semantics reference cases (tests/reference/formula). Run from this folder:
#   Rscript make_data.R && Rscript fit_cases.R
set.seed(20261201)
n <- 144
B <- rep(sprintf("b%02d", 1:12), each = 12)
V <- rep(c("Golden", "Marvel", "Victory"), times = 48)
N <- rep(rep(c("n0", "n2", "n4", "n6"), each = 3), times = 12)
Time <- rep(1:12, times = 12)
x <- round(rnorm(n, 2, 1.5), 3)
z <- round(runif(n, -1, 1), 3)
size <- round(runif(n, 5, 30), 2)
bB <- rnorm(12, 0, 1.2)[as.integer(factor(B))]
bBx <- rnorm(12, 0, 0.4)[as.integer(factor(B))]
vV <- c(Golden = 0, Marvel = 1.5, Victory = -0.7)[V]
nN <- c(n0 = 0, n2 = 0.8, n4 = 1.9, n6 = 2.4)[N]
y <- round(10 + vV + nN + 0.6 * x + (0.5 + bBx) * x - 0.8 * z + 0.03 * (Time - 6)^2 + bB + rnorm(n, 0, 1), 3)
w <- round(runif(n, 0.3, 3), 2)
o <- round(rnorm(n, 0, 0.5), 3)
d <- data.frame(y, B, V, N, Time, x, z, size, w, o, stringsAsFactors = FALSE)
# z2: z with missing values (rows dropped for z2 change the rows, not scale(x))
d$z2 <- ifelse(seq_len(n) %% 9 == 0, NA, d$z)
# yneg: a response with some negative values (sqrt gives NaN there)
d$yneg <- round(d$y - 7.5, 3)
# tx: text with empty fields (read.csv keeps "" as a level of a text column)
d$tx <- ifelse(seq_len(n) %% 7 == 0, "", ifelse(seq_len(n) %% 2 == 0, "left", "right"))
# f1: a factor whose second level only occurs in rows with z2 missing
d$f1 <- ifelse(seq_len(n) %% 9 == 0, "rare", "common")
# H: two halves within each B:N cell, for three-level nesting (B/N/H)
d$H <- rep(c("h1", "h2"), length.out = n)
# w0: weights with zeros
d$w0 <- ifelse(seq_len(n) %% 10 == 0, 0, d$w)
write.csv(d, "data/formula.csv", row.names = FALSE, na = "")
# new data for predictions: values inside and outside the fitted ranges, a new level of B
nd <- data.frame(B = c("b01", "b05", "b12", "b99"), V = c("Golden", "Victory", "Marvel", "Golden"),
                 N = c("n0", "n6", "n2", "n4"), Time = c(1, 6.5, 12, 14), x = c(-3, 0.5, 2, 7.5),
                 z = c(0.1, -0.5, 0.9, 0), size = c(5, 12.5, 30, 40), o = c(0, 0.3, -0.2, 1),
                 w = c(1, 2, 0.5, 1), stringsAsFactors = FALSE)
nd$z2 <- nd$z
write.csv(nd, "data/formula_new.csv", row.names = FALSE)
