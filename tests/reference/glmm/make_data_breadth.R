# Writes the data sets of the breadth cases (cases.tsv, second part) to data/ (run from this folder:
# Rscript make_data_breadth.R). Everything is simulated with set.seed(20261202), except grouseticks
# (make_data.R) which the scaled-covariate and unscaled (convergence warning) cases reuse.
suppressMessages(library(lme4))
w <- function(d, f) write.csv(d, file.path("data", f), row.names = FALSE)
set.seed(20261202)

# binary responses: 50 groups x 12; a 3-level factor f, a covariate x, a random intercept and slope
ng <- 50; m <- 12
g <- rep(seq_len(ng), each = m)
x <- round(rnorm(ng * m), 3)
f <- sample(c("a", "b", "c"), ng * m, replace = TRUE)
u0 <- rnorm(ng, 0, 0.8); u1 <- rnorm(ng, 0, 0.6)
eta <- -0.3 + 0.7 * x + c(a = 0, b = 0.5, c = -0.4)[f] + 0.3 * (f == "b") * x + u0[g] + u1[g] * x
y <- rbinom(ng * m, 1, plogis(eta))
w(data.frame(g = paste0("g", g), x = x, f = f, y = y, answer = ifelse(y == 1, "yes", "no"),
             status = y + 1), "binary.csv")

# binomial counts: 40 groups x 6, trials 1..20, a covariate and a 2-level treatment
ng <- 40; m <- 6
g <- rep(seq_len(ng), each = m)
trials <- sample(1:20, ng * m, replace = TRUE)
x <- round(runif(ng * m, -1, 1), 3)
trt <- sample(c("ctl", "trt"), ng * m, replace = TRUE)
eta <- -0.8 + 0.9 * x + 0.5 * (trt == "trt") + rnorm(ng, 0, 0.7)[g]
s <- rbinom(ng * m, trials, plogis(eta))
w(data.frame(g = paste0("h", g), x = x, trt = trt, trials = trials, s = s, prop = s / trials), "trials.csv")

# nested binary: 15 schools x 4 classes (labelled 1-4 in every school) x 10 pupils
sch <- rep(1:15, each = 40); cls <- rep(rep(1:4, each = 10), 15)
x <- round(rnorm(600), 3)
eta <- 0.2 + 0.5 * x + rnorm(15, 0, 0.6)[sch] + rnorm(60, 0, 0.5)[(sch - 1) * 4 + cls]
w(data.frame(school = paste0("s", sch), class = cls, x = x, y = rbinom(600, 1, plogis(eta))), "nested.csv")

# crossed counts: 30 subjects x 20 items
subj <- rep(1:30, each = 20); item <- rep(1:20, 30)
x <- round(rnorm(600), 3)
eta <- 1 + 0.3 * x + rnorm(30, 0, 0.5)[subj] + rnorm(20, 0, 0.3)[item]
w(data.frame(subj = paste0("S", subj), item = paste0("I", item), x = x, count = rpois(600, exp(eta))),
  "crossed.csv")

# Poisson counts: 50 groups x 10, a correlated random slope, an exposure, a 3-level factor
ng <- 50; m <- 10
g <- rep(seq_len(ng), each = m)
x <- round(runif(ng * m), 3)
f <- sample(c("lo", "mid", "hi"), ng * m, replace = TRUE)
expo <- round(runif(ng * m, 1, 10), 2)
U <- MASS::mvrnorm(ng, c(0, 0), matrix(c(0.25, 0.1, 0.1, 0.16), 2))
eta <- 0.5 + 0.8 * x + c(lo = 0, mid = 0.3, hi = 0.6)[f] - 0.4 * (f == "hi") * x + U[g, 1] + U[g, 2] * x
count <- rpois(ng * m, exp(eta))
count_e <- rpois(ng * m, expo * exp(eta - 1))
mu_id <- 20 + 8 * x + rnorm(ng, 0, 2)[g]          # identity link: a mean well above 0
d <- data.frame(g = paste0("c", g), x = x, f = f, expo = expo, count = count, count_e = count_e,
                count_id = rpois(ng * m, pmax(mu_id, 0.2)))
w(d, "poisson.csv")
# the same with missing values in the response, a covariate, the factor and the group
dn <- d
dn$count[sample(nrow(dn), 12)] <- NA; dn$x[sample(nrow(dn), 9)] <- NA
dn$f[sample(nrow(dn), 5)] <- NA; dn$g[sample(nrow(dn), 4)] <- NA
w(dn, "poisson_na.csv")

# no group variance: a singular fit (glmer's theta = 0)
g <- rep(1:30, each = 10); x <- round(rnorm(300), 3)
w(data.frame(g = paste0("k", g), x = x, y = rbinom(300, 1, plogis(-0.2 + 0.6 * x))), "singular.csv")

# quasi-complete separation: every row with trt == "b" is a failure (glmer: a huge trtb, a convergence warning)
g <- rep(1:20, each = 10); x <- round(rnorm(200), 3); trt <- sample(c("a", "b"), 200, replace = TRUE)
y <- ifelse(trt == "b", 0L, rbinom(200, 1, plogis(0.3 + 0.5 * x + rnorm(20, 0, 0.7)[g])))
w(data.frame(g = paste0("q", g), x = x, trt = trt, y = y), "separation.csv")

# a large count case: 20,000 rows, 400 groups, (x | g)
ng <- 400; n <- 20000
g <- sample(ng, n, replace = TRUE); x <- round(rnorm(n), 3)
U <- MASS::mvrnorm(ng, c(0, 0), matrix(c(0.3, -0.05, -0.05, 0.1), 2))
w(data.frame(g = paste0("L", g), x = x, count = rpois(n, exp(0.7 + 0.25 * x + U[g, 1] + U[g, 2] * x))),
  "large_counts.csv")

# prior weights: counts.csv (make_data.R) with integer and fractional weights; binary.csv with fractional ones
d <- read.csv(file.path("data", "counts.csv"))
d$w <- ifelse(d$x > 0, 2, 1); d$wf <- round(0.5 + d$exposure / 10, 3)
w(d, "counts_weighted.csv")
b <- read.csv(file.path("data", "binary.csv"))
b$wt <- round(runif(nrow(b), 0.5, 2), 2)
w(b, "binary_weighted.csv")
