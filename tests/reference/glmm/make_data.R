# Writes the data sets of the GLMM reference cases to data/ (run from this folder: Rscript make_data.R).
# cbpp, grouseticks and VerbAgg ship with lme4; toenail and contraception are simulated here with a
# fixed seed, shaped like the well-known data sets (toenail: 294 patients x 7 visits, a large
# random-intercept variance; Contraception: 1934 women in 60 districts, a random urban slope).
suppressMessages(library(lme4))
w <- function(d, f) write.csv(d, file.path("data", f), row.names = FALSE)
w(cbpp, "cbpp.csv")
w(grouseticks[, c("INDEX", "TICKS", "BROOD", "HEIGHT", "YEAR", "LOCATION", "cHEIGHT")], "grouseticks.csv")
w(VerbAgg[, c("Anger", "Gender", "item", "id", "btype", "situ", "mode", "r2")], "verbagg.csv")

set.seed(20261201)
np <- 294; nv <- 7
patient <- rep(seq_len(np), each = nv)
treatment <- rep(rbinom(np, 1, 0.5), each = nv)
month <- rep(c(0, 1, 2, 3, 6, 9, 12), np) + round(runif(np * nv, -0.3, 0.3), 2)
b <- rep(rnorm(np, 0, 4), each = nv)
eta <- -1.6 + b - 0.4 * month - 0.15 * treatment * month
toenail <- data.frame(patient = paste0("p", patient), treatment = treatment, month = month,
                      outcome = rbinom(np * nv, 1, plogis(eta)))
keep <- runif(nrow(toenail)) > 0.08          # some visits missed, as in the real data
w(toenail[keep, ], "toenail.csv")

nd <- 60
dsize <- pmax(2, round(rexp(nd, 1 / 32)))
dsize <- round(dsize * 1934 / sum(dsize)); dsize[1] <- dsize[1] + 1934 - sum(dsize)
district <- rep(seq_len(nd), dsize)
n <- length(district)
urban <- rbinom(n, 1, ifelse(district %% 3 == 0, 0.7, 0.2))
age <- round(runif(n, -14, 20), 2)
livch <- sample(c("0", "1", "2", "3+"), n, replace = TRUE, prob = c(0.27, 0.18, 0.17, 0.38))
ud <- MASS::mvrnorm(nd, c(0, 0), matrix(c(0.38, -0.3, -0.3, 0.36), 2))
eta <- -1.6 + ud[district, 1] + (0.7 + ud[district, 2]) * urban + 0.004 * age - 0.0045 * age^2 +
       c("0" = 0, "1" = 1.1, "2" = 1.3, "3+" = 1.25)[livch]
contraception <- data.frame(woman = seq_len(n), district = paste0("d", district), use = ifelse(rbinom(n, 1, plogis(eta)) == 1, "Y", "N"),
                            livch = livch, age = age, urban = ifelse(urban == 1, "Y", "N"))
w(contraception, "contraception.csv")

# Poisson counts with an exposure (an offset), and a 0/1 response with a random slope
ns <- 40
site <- rep(seq_len(ns), each = 12)
exposure <- round(runif(length(site), 0.5, 20), 2)
x <- round(rnorm(length(site)), 3)
eta <- log(exposure) - 1 + 0.3 * x + rep(rnorm(ns, 0, 0.5), each = 12)
w(data.frame(site = paste0("s", site), x = x, exposure = exposure, count = rpois(length(site), exp(eta))),
  "counts.csv")
ng <- 80
g <- rep(seq_len(ng), each = 25)
x <- round(rnorm(length(g)), 3)
u0 <- rnorm(ng, 0, 0.9); u1 <- rnorm(ng, 0, 0.5)
eta <- -0.2 + 0.8 * x + u0[g] + u1[g] * x
y <- rbinom(length(g), 1, plogis(eta))
w(data.frame(g = paste0("g", g), x = x, y = y, passed = y == 1), "binary_slope.csv")
