"""Evaluating a Pipeline: quality and speed measures, and what a run leaves behind (metrics, per-query
table, image grid, W&B run, leaderboard row)."""
