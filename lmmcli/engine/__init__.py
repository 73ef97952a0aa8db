"""The penalized least-squares engine: sufficient statistics in, the REML/ML optimum out."""
