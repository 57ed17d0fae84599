"""Detect objects and crop images to them (approach 5, and the box a user draws).

    detector = build_detector(cfg.detector, items.root)  # none | foreground | ssdlite | fasterrcnn | trained
    detections = detector.detect(image)                   # Detections: boxes (N, 4) in pixels, scores, labels
    cropper = Cropper(detector, CropSettings(**cfg.crop))
    region = cropper(image, user_box=None)                # Crop: image (to embed), box, source
    boxes = cropper.locate(paths)                         # one crop box per image file, detected in batches

`Crop.source` is user, detected, or whole when nothing usable was detected. Evaluation, training and
serving all crop through `Cropper`.
"""

from __future__ import annotations

from visual_search.detect.base import Detections, Detector, NoDetector
from visual_search.detect.build import build_detector
from visual_search.detect.crop import POLICIES, Crop, Cropper, CropSettings, crop, select_boxes

__all__ = [
    "POLICIES",
    "Crop",
    "CropSettings",
    "Cropper",
    "Detections",
    "Detector",
    "NoDetector",
    "build_detector",
    "crop",
    "select_boxes",
]
