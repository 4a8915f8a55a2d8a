"""Scores over candidates: cosine, top-k and threshold lists, user profiles, item-kNN,
the adapter model and the hybrid rule."""
