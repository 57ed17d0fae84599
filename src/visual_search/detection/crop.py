"""Crop policies: which detected boxes become the images that are embedded.

`largest` keeps the biggest box (the product a photo is about), `highest_score` the most confident one,
`all` every box (one query per object; the caller merges their results). A user-supplied box overrides
detection; when nothing usable is detected the whole image is used, so every image yields a crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from torch import Tensor

from visual_search.detection import boxes as B
from visual_search.detection.base import Detections

POLICIES = ("largest", "highest_score", "all")


@dataclass(frozen=True)
class Crop:
    """One region of an image to embed: its pixels and where it came from (`source`: user, detected,
    or whole, the fallback)."""

    image: Image.Image
    box: tuple[int, int, int, int]
    source: str


def check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"crop policy {policy!r}; choose one of {', '.join(POLICIES)}")


def select(detections: Detections, policy: str, width: int, height: int, min_size: float = 2.0) -> Tensor:
    """The boxes `policy` keeps among the detections that are still at least `min_size` pixels wide and
    high once clamped to the image; (0, 4) when none is."""
    check_policy(policy)
    clamped = B.clamp(detections.boxes, width, height)
    usable = B.is_valid(clamped, min_size)
    boxes, scores = clamped[usable], detections.scores[usable]
    if policy == "all" or len(boxes) == 0:
        return boxes
    best = B.area(boxes).argmax() if policy == "largest" else scores.argmax()
    return boxes[best : best + 1]


def select_boxes(
    detections: Detections,
    width: int,
    height: int,
    policy: str = "largest",
    padding: float = 0.0,
    user_box: B.BoxLike | None = None,
) -> tuple[list[tuple[int, int, int, int]], str]:
    """Integer pixel boxes to crop and their source: the user's box if given (clamped to the image; a
    ValueError if nothing of it is left), else the boxes `policy` keeps, else the whole image. Each box
    is grown by `padding`."""
    if user_box is not None:
        box = B.clamp(user_box, width, height)
        if not B.is_valid(box).all():
            raise ValueError(
                f"user box {B.as_boxes(user_box).tolist()[0]} is empty inside the {width}x{height} image"
            )
        return B.to_pixels(B.pad(box, padding, width, height), width, height), "user"
    chosen = select(detections, policy, width, height)
    if len(chosen) == 0:
        return B.to_pixels(B.full_image(width, height), width, height), "whole"
    return B.to_pixels(B.pad(chosen, padding, width, height), width, height), "detected"


def pad_to_square(image: Image.Image) -> Image.Image:
    """`image` centred on a square canvas of its longer side, filled with the median colour of its border,
    so that an encoder's centre crop keeps all of a tall or wide object."""
    width, height = image.size
    if width == height:
        return image
    pixels = np.asarray(image.convert("RGB"))
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    fill = tuple(int(v) for v in np.median(border, axis=0))
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(image.convert("RGB"), ((side - width) // 2, (side - height) // 2))
    return canvas


def cut(image: Image.Image, box: tuple[int, int, int, int], square: bool = False) -> Image.Image:
    """The pixels of `box`, padded to a square when `square`."""
    region = image.crop(box)
    return pad_to_square(region) if square else region


def crop(
    image: Image.Image,
    detections: Detections,
    policy: str = "largest",
    padding: float = 0.0,
    user_box: B.BoxLike | None = None,
    square: bool = False,
) -> list[Crop]:
    """The crops of `image` to embed (at least one; see `select_boxes`), padded to squares if `square`."""
    pixel_boxes, source = select_boxes(detections, *image.size, policy, padding, user_box)
    return [Crop(cut(image, box, square), box, source) for box in pixel_boxes]
