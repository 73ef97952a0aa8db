"""Formula + Frame -> Design: y, X, one block per random term; levels, contrasts, checks."""
