"""Embedding: the one `Embedder` (frames of items in, embeddings out; cropping, cache, N processes)."""
