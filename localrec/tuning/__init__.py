"""Learning the adapter from interactions and choosing its weights on validation."""
