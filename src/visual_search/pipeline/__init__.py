"""The Pipeline: items, encoder, cropper, embedder, reduction and index, assembled once from a config."""

from visual_search.pipeline.pipeline import IndexedGallery, Pipeline

__all__ = ["IndexedGallery", "Pipeline"]
