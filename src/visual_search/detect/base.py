"""What every detector returns (`Detections`), the `Detector` interface, and `NoDetector`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image
from torch import Tensor

from visual_search.detect.boxes import BoxLike, as_boxes


@dataclass(frozen=True)
class Detections:
    """Objects found in one image: pixel boxes (N, 4) `x0, y0, x1, y1`, scores (N,), class labels (N,)."""

    boxes: Tensor = field(default_factory=lambda: torch.empty(0, 4))
    scores: Tensor = field(default_factory=lambda: torch.empty(0))
    labels: Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.int64))

    def __post_init__(self) -> None:
        if not len(self.boxes) == len(self.scores) == len(self.labels):
            raise ValueError(
                f"{len(self.boxes)} boxes, {len(self.scores)} scores and {len(self.labels)} labels"
            )

    @classmethod
    def of(cls, boxes: BoxLike, scores: Sequence[float] | None = None) -> Detections:
        """Detections from plain boxes (scores default to 1, labels to 1)."""
        tensor = as_boxes(boxes)
        scores = torch.ones(len(tensor)) if scores is None else torch.as_tensor(scores, dtype=torch.float32)
        return cls(tensor, scores, torch.ones(len(tensor), dtype=torch.int64))

    def __len__(self) -> int:
        return len(self.boxes)

    def keep(self, mask: Tensor) -> Detections:
        """The detections where `mask` (bool or index tensor) selects."""
        return Detections(self.boxes[mask], self.scores[mask], self.labels[mask])


class Detector(ABC):
    """Finds objects in RGB images. `detect_batch` may be overridden to batch the work."""

    name: str = "detector"
    class_names: list[str] | None = None  # class_names[label]: the name of a label (None: unnamed)

    def label_name(self, label: int) -> str | None:
        """The class name of `label`, None when the detector names none (or only "object")."""
        names = self.class_names or []
        name = names[label] if 0 <= label < len(names) else None
        return None if name in (None, "object", "background", "__background__") else name

    @abstractmethod
    def detect(self, image: Image.Image) -> Detections:
        """The objects in one RGB image, in its pixel coordinates."""

    def detect_batch(self, images: Sequence[Image.Image]) -> list[Detections]:
        """The objects in each image."""
        return [self.detect(image) for image in images]


class NoDetector(Detector):
    """Detects nothing, so every crop falls back to the whole image (or the user's box)."""

    def __init__(self, name: str = "none") -> None:
        self.name = name

    def detect(self, image: Image.Image) -> Detections:
        return Detections()
