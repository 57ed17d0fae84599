"""Dimensionality reduction before indexing (PCA; the hook for learned projections), fitted by the
pipeline on the gallery or the training split."""
