"""Which region of a query image is embedded: the user's box, the object the served run's detector finds,
or the whole image; cropped as that run's `crop` settings say (padding, squaring), as evaluate.py crops."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig
from PIL import Image

from visual_search.detection import Detections, Detector, NoDetector, build_detector, crop
from visual_search.detection.embed import CropSettings
from visual_search.serving.imaging import Box


@dataclass(frozen=True)
class Region:
    """The pixels to embed, their box in the image (None: the whole image) and where the box came from
    (`user`, `detected` or `whole`)."""

    image: Image.Image
    box: list[float] | None
    source: str


class QueryCropper:
    """Crops query images like the served run: without a detector, exactly the user's box (or nothing);
    with one, the user's box or else the detected object, padded and squared per `settings`."""

    def __init__(self, detector: Detector | None = None, settings: CropSettings | None = None) -> None:
        self.detector, self.settings = detector, settings or CropSettings()

    @property
    def name(self) -> str | None:
        """The detector's name; None without one."""
        return self.detector.name if self.detector else None

    def __call__(self, image: Image.Image, user_box: Box | None = None, detect: bool = True) -> Region:
        if self.detector is None and user_box is None:
            return Region(image, None, "whole")
        if self.detector is None:
            return Region(user_box.crop(image), user_box.as_list(), "user")
        detections = self.detector.detect(image) if detect and user_box is None else Detections()
        s = self.settings
        (region, *_) = crop(
            image, detections, s.policy, s.padding, user_box.as_list() if user_box else None, square=s.square
        )
        return Region(region.image, None if region.source == "whole" else list(region.box), region.source)


def query_cropper(cfg: DictConfig) -> QueryCropper:
    """The served run's cropping: its detector (`cfg.detector`) and `cfg.crop` settings; no detector when
    it has none or was evaluated before detectors had a config (`_target_`)."""
    if "_target_" not in (cfg.get("detector") or {}):
        return QueryCropper()
    detector = build_detector(cfg)
    if isinstance(detector, NoDetector):
        return QueryCropper()
    return QueryCropper(detector, CropSettings(**cfg.get("crop", {})))
