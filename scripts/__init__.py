"""The project's scripts: install, test, check, demo and soak, and `food_kitchen`, where the
demo, the benchmarks and the tests find and slice the Food-Kitchen data. Not part of the
wheel."""
