"""Using a fitted model: predictions, random effects, simulation, saved models, plot data."""
