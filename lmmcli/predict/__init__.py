"""Using a fitted model: predictions (also streamed batch by batch, stream.py), random effects, simulation,
saved models, plot data."""
