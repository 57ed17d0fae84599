"""Evaluation: retrieval metrics, baselines and the evaluate entry point."""
