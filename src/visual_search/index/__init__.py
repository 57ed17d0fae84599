"""Vector index: dimensionality reduction and Milvus collections."""
