"""Interaction data as index arrays: sequence datasets, the splits and the ranking protocol."""
