"""visual-search: a config-driven experiment framework for visual semantic search."""

__version__ = "0.1.0"
