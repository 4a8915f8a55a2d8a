"""The Python API of recommendations: Recommender, explanations, threshold suggestions."""
