"""Arithmetic on a run's tidy data: statistics, tables, the seed comparison. No plotting."""
