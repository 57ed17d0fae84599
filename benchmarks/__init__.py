"""Benchmarks: speed and quality measured side by side (not tests). `python -m benchmarks` runs them all."""
