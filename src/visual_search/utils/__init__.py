"""Shared utilities: CLI error handling, logging, paths."""
