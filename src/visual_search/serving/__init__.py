"""Serving: the HTTP app and micro-batching."""
