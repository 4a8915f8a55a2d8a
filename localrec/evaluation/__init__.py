"""Offline evaluation: baselines, the protocol run, results, paired comparisons, reports."""
