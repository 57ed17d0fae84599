"""Hand-made image features that need no model: a scale for what learnt encoders must beat.

`color_histogram` sees only colour; `silhouette` sees only shape (the product's mask, cropped to its
box and resized); `raw_pixels` is the image itself, shrunk to a thumbnail. On the synthetic data, whose
categories differ by shape and share colours, the first must score clearly below the second.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image

from visual_search.data.images import load_rgb
from visual_search.metrics.retrieval import mean_average_precision


def color_histogram(image: Image.Image, bins: int = 8) -> np.ndarray:
    """Joint RGB histogram of the non-white pixels (bins per channel), L1-normalised."""
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    pixels = pixels[(pixels < 245).any(axis=1)]
    if pixels.size == 0:
        return np.zeros(bins**3, dtype=np.float32)
    q = (pixels.astype(np.int64) * bins) // 256
    hist = np.bincount((q[:, 0] * bins + q[:, 1]) * bins + q[:, 2], minlength=bins**3).astype(np.float32)
    return hist / hist.sum()


def silhouette(image: Image.Image, side: int = 32) -> np.ndarray:
    """The foreground mask cropped to its bounding box and resized to side x side, L2-normalised."""
    mask = (np.asarray(image.convert("RGB")) < 245).any(axis=2)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return np.zeros(side * side, dtype=np.float32)
    crop = Image.fromarray(mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.uint8) * 255)
    vector = np.asarray(crop.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32).ravel()
    return vector / (np.linalg.norm(vector) + 1e-12)


def raw_pixels(image: Image.Image, side: int = 16) -> np.ndarray:
    """The RGB thumbnail (side x side) as a vector, centred and L2-normalised."""
    thumbnail = image.convert("RGB").resize((side, side), Image.Resampling.BILINEAR)
    vector = np.asarray(thumbnail, dtype=np.float32).ravel()
    vector -= vector.mean()
    return vector / (np.linalg.norm(vector) + 1e-12)


BASELINES = {"color_histogram": color_histogram, "silhouette": silhouette, "raw_pixels": raw_pixels}


def embed_paths(paths: Sequence[str], name: str) -> torch.Tensor:
    """Baseline features of image files as a (N, D) tensor."""
    feature = BASELINES[name]
    return torch.from_numpy(np.stack([feature(load_rgb(p)) for p in paths]))


def score_baseline(gallery: pd.DataFrame, query: pd.DataFrame, name: str) -> float:
    """mAP (full ranking, L2) of one baseline on a gallery/query split (frames with image and label)."""
    return mean_average_precision(
        embed_paths(query["image"].tolist(), name),
        query["label"].to_numpy(),
        embed_paths(gallery["image"].tolist(), name),
        gallery["label"].to_numpy(),
    )


def score_baselines(gallery: pd.DataFrame, query: pd.DataFrame) -> dict[str, float]:
    """`baseline_<name>/mAP` of every baseline."""
    return {f"baseline_{name}/mAP": score_baseline(gallery, query, name) for name in BASELINES}
