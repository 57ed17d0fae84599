"""The one cropper: which region of an image is embedded, for evaluation, training and serving alike.

Crop policies: `largest` keeps the biggest detected box (the product a photo is about), `highest_score`
the most confident one, `all` every box (one query per object; the caller merges their results). A
user-supplied box overrides detection; when nothing usable is detected the whole image is used, so every
image yields a crop. Boxes are grown by `padding` and their crops padded to squares when `square`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from PIL import Image
from torch import Tensor
from tqdm.auto import tqdm

from visual_search.data.images import ImageLoadError, cut, load_rgb
from visual_search.detect import boxes as B
from visual_search.detect.base import Detections, Detector, NoDetector
from visual_search.errors import UserError

POLICIES = ("largest", "highest_score", "all")
BOX_COLUMNS = ("x0", "y0", "x1", "y1")
PixelBox = tuple[int, int, int, int]


@dataclass(frozen=True)
class Crop:
    """One region of an image to embed: its pixels and where it came from (`source`: user, detected,
    or whole, the fallback)."""

    image: Image.Image
    box: PixelBox
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
) -> tuple[list[PixelBox], str]:
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
    chosen = select(detections, policy, width, height) if len(detections.boxes) else detections.boxes
    if len(chosen) == 0:
        return [(0, 0, width, height)], "whole"
    return B.to_pixels(B.pad(chosen, padding, width, height), width, height), "detected"


def crop(
    image: Image.Image,
    detections: Detections,
    policy: str = "largest",
    padding: float = 0.0,
    user_box: B.BoxLike | None = None,
    square: bool = False,
) -> list[Crop]:
    """The crops of `image` to embed (at least one; see `select_boxes`), padded to squares if `square`.
    The whole image is returned as it is."""
    pixel_boxes, source = select_boxes(detections, *image.size, policy, padding, user_box)
    if source == "whole":
        return [Crop(image, pixel_boxes[0], source)]
    return [Crop(cut(image, box, square), box, source) for box in pixel_boxes]


@dataclass(frozen=True)
class CropSettings:
    """How boxes become crops: `policy`, `padding` (share of the box added on each side), `square` (pad
    crops to squares), whether the gallery is cropped too (batch-offline, while indexing), and `user_box`
    (ground_truth: each scene query's true target box, as a user would draw it)."""

    policy: str = "largest"
    padding: float = 0.0
    square: bool = True
    gallery: bool = False
    user_box: str | None = None

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise UserError(f"crop.policy={self.policy!r}; choose one of {', '.join(POLICIES)}")
        if self.policy == "all":
            raise UserError(
                "crop.policy=all (one query per object) is for serving; evaluate one crop per query"
            )
        if self.user_box not in (None, "ground_truth"):
            raise UserError(f"crop.user_box={self.user_box!r}; choose null or ground_truth")


class Cropper:
    """Crops images as a run's `detector` and crop `settings` say: the user's box if given, else the
    detected object (per the policy), else the whole image. One image at a time (queries) or a list of
    image files at once with batched detection (`locate`: a gallery, a query set)."""

    def __init__(self, detector: Detector | None = None, settings: CropSettings | None = None) -> None:
        self.detector = detector or NoDetector()
        self.settings = settings or CropSettings()

    @property
    def detects(self) -> bool:
        """True when there is a real detector (not `NoDetector`)."""
        return not isinstance(self.detector, NoDetector)

    @property
    def name(self) -> str | None:
        """The detector's name; None without one."""
        return self.detector.name if self.detects else None

    def __call__(
        self,
        image: Image.Image,
        user_box: B.BoxLike | None = None,
        detect: bool = True,
        detections: Detections | None = None,
    ) -> Crop:
        """The region of `image` to embed (`detect=False`: no detection, only the user's box; given
        `detections`, those instead of detecting)."""
        if detections is None:
            detections = self.detector.detect(image) if detect and user_box is None else Detections()
        found = detections if user_box is None else Detections()
        s = self.settings
        return crop(image, found, s.policy, s.padding, user_box, s.square)[0]

    def locate(
        self,
        paths: Sequence[str],
        user_boxes: Sequence[B.BoxLike | None] | None = None,
        batch_size: int = 32,
        desc: str = "detect",
    ) -> pd.DataFrame:
        """One crop box per image file (`x0, y0, x1, y1` in pixels, `source`: user | detected | whole, and
        the image's `width` and `height`), detected in batches; unreadable images get no box (source
        `unreadable`: the embedding step skips and reports them)."""
        rows: list[dict[str, Any]] = [{"source": "unreadable"} for _ in paths]
        s = self.settings
        with tqdm(total=len(paths), desc=desc, unit="img", dynamic_ncols=True) as bar:
            for start in range(0, len(paths), batch_size):
                images: dict[int, Image.Image] = {}
                for i in range(start, min(start + batch_size, len(paths))):
                    try:
                        images[i] = load_rgb(paths[i])
                    except ImageLoadError:
                        continue
                wanted = [i for i in images if self.detects and (user_boxes is None or user_boxes[i] is None)]
                detected = self.detector.detect_batch([images[i] for i in wanted])
                found = dict(zip(wanted, detected, strict=True))
                for i, image in images.items():
                    user_box = None if user_boxes is None else user_boxes[i]
                    boxes, source = select_boxes(
                        found.get(i, Detections()), *image.size, s.policy, s.padding, user_box
                    )
                    box = dict(zip(BOX_COLUMNS, boxes[0], strict=True))
                    rows[i] = box | {"source": source, "width": image.width, "height": image.height}
                bar.update(min(batch_size, len(paths) - start))
        return pd.DataFrame(rows, columns=[*BOX_COLUMNS, "source", "width", "height"])

    def describe(self) -> str:
        """One line for the leaderboard: detector, policy, padding, what is cropped."""
        s = self.settings
        cropped = [s.policy, f"padding {s.padding}"] if self.detects else []
        if cropped and s.gallery:
            cropped.append("gallery cropped")
        if s.user_box:
            cropped.append(f"user box: {s.user_box}, padding {s.padding}")
        return ", ".join([self.detector.name, *cropped])


def crop_boxes(boxes: pd.DataFrame) -> list[PixelBox | None]:
    """The box of each row of `Cropper.locate`'s frame to cut, None for whole (or unreadable) images."""
    values = boxes[list(BOX_COLUMNS)].to_numpy()
    return [
        None if source in ("whole", "unreadable") else tuple(int(v) for v in box)
        for box, source in zip(values, boxes["source"], strict=True)
    ]
