"""Vector index: Milvus collections (connection, schema and naming, resumable sync, search)."""
