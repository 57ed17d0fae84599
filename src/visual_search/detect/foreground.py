"""A fast classical detector: boxes around the pixels that differ from the background colour.

Made for product shots on plain or lightly textured backgrounds (the Polyvore case, the synthetic scenes):
the background colour is the median of the image's border, a pixel is foreground when a channel differs
from it by more than `threshold` (after a light blur that removes sensor or JPEG noise), nearby parts are
joined by a morphological closing, holes are filled, and each connected region of at least `min_area`
of the image becomes one box scored by its share of the image. No model, a few milliseconds per image.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageFilter
from scipy import ndimage

from visual_search.detect.base import Detections, Detector


class ForegroundDetector(Detector):
    """Boxes around non-background regions (`separate=False`: one box around all of them)."""

    def __init__(
        self,
        name: str = "foreground",
        threshold: float = 40.0,
        min_area: float = 0.005,
        closing: float = 0.02,
        separate: bool = True,
        work_size: int = 128,
        border: int = 2,
    ) -> None:
        if not 0 <= threshold < 255:
            raise ValueError(f"threshold must be in [0, 255), got {threshold}")
        if work_size < 16 or border < 1:
            raise ValueError(f"need work_size >= 16 and border >= 1, got {work_size} and {border}")
        self.name = name
        self.threshold = threshold
        self.min_area = min_area
        self.closing = closing
        self.separate = separate
        self.work_size = work_size
        self.border = border

    def mask(self, image: Image.Image) -> np.ndarray:
        """Bool (h, w) foreground mask at the working size (longer side `work_size`)."""
        small = image.convert("RGB")
        small.thumbnail((self.work_size, self.work_size), Image.Resampling.BILINEAR)
        pixels = np.asarray(small.filter(ImageFilter.BoxBlur(1)), dtype=np.float32)
        b = self.border
        frame = np.concatenate(
            [pixels[:b].reshape(-1, 3), pixels[-b:].reshape(-1, 3), pixels[:, :b].reshape(-1, 3),
             pixels[:, -b:].reshape(-1, 3)]
        )  # fmt: skip
        background = np.median(frame, axis=0)
        mask = np.abs(pixels - background).max(axis=2) > self.threshold
        radius = round(self.closing * max(mask.shape))
        if radius > 0:
            structure = np.ones((2 * radius + 1, 2 * radius + 1), dtype=bool)
            mask = ndimage.binary_closing(np.pad(mask, radius), structure)[radius:-radius, radius:-radius]
        return ndimage.binary_fill_holes(mask)

    def detect(self, image: Image.Image) -> Detections:
        mask = self.mask(image)
        height, width = mask.shape
        regions, count = ndimage.label(mask) if self.separate else (mask.astype(np.int32), int(mask.any()))
        if count == 0:
            return Detections()
        sizes = ndimage.sum_labels(mask, regions, index=np.arange(1, count + 1)) / mask.size
        boxes, scores = [], []
        for size, region in zip(sizes, ndimage.find_objects(regions), strict=True):
            if size >= self.min_area:
                ys, xs = region
                boxes.append([xs.start, ys.start, xs.stop, ys.stop])
                scores.append(size)
        if not boxes:
            return Detections()
        to_image = torch.tensor([image.width / width, image.height / height] * 2)
        return Detections.of(torch.tensor(boxes, dtype=torch.float32) * to_image, scores)
