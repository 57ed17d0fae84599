"""Data layer: item tables (Polyvore, catalogue CSV, synthetic), splits, images, transforms, DataModule."""
