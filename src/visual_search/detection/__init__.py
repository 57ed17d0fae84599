"""Approach 5: detect objects, keep the largest (or the user's box), embed only that crop.

Public API (evaluation and serving use the same):

    detector = build_detector(cfg)         # cfg.detector: none | foreground | ssdlite | fasterrcnn | trained
    detections = detector.detect(image)    # Detections: boxes (N, 4) in pixels, scores, labels
    crops = crop(image, detections, "largest", padding=0.1, user_box=None, square=True)  # [Crop]
    box = query_box(detector, image, policy="largest", padding=0.1)  # (x0, y0, x1, y1), None: use it whole
    region = cut(image, box, square=True)  # what evaluate.py embeds for that box (padded to a square)

`Crop` has `image` (the pixels to embed), `box` (x0, y0, x1, y1 in the image) and `source` (user,
detected, or whole when nothing usable was detected). Evaluation crops with the run's `crop` settings.
"""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig
from PIL import Image

from visual_search.detection.base import Detections, Detector, NoDetector
from visual_search.detection.crop import POLICIES, Crop, crop, cut, pad_to_square, select_boxes


def build_detector(cfg: DictConfig) -> Detector:
    """Instantiate `cfg.detector` (the trained one is trained on first use and cached)."""
    detector: Detector = instantiate(cfg.detector)
    return detector


def query_box(
    detector: Detector, image: Image.Image, policy: str = "largest", padding: float = 0.0
) -> tuple[int, int, int, int] | None:
    """The pixel box to embed for a query image, or None when nothing is detected (embed it whole)."""
    boxes, source = select_boxes(detector.detect(image), *image.size, policy, padding)
    return boxes[0] if source == "detected" else None


__all__ = [
    "POLICIES",
    "Crop",
    "Detections",
    "Detector",
    "NoDetector",
    "build_detector",
    "crop",
    "cut",
    "pad_to_square",
    "query_box",
    "select_boxes",
]
