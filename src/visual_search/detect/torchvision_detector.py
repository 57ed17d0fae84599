"""A torchvision detection model as a `Detector`: score threshold, class allow-list and NMS from config."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN
from torchvision.ops import batched_nms, nms
from torchvision.transforms.v2.functional import pil_to_tensor, to_dtype

from visual_search.detect.base import Detections, Detector
from visual_search.detect.models import build_model, coco_category_names
from visual_search.encode.base import resolve_precision
from visual_search.encode.runtime import Runner, as_tensor, check_runtime, compiled


class TorchvisionDetector(Detector):
    """Wraps a torchvision detection model (see `models.build_model`).

    `classes`: allow-list of label ids or category names (names need `class_names`; COCO's by default
    for COCO-sized models); `nms_iou`: IoU above which overlapping boxes of one class are merged (the
    model's own NMS); `class_agnostic_nms`: also across classes, since a crop does not care about the
    class. `score_threshold` drops unsure boxes; at most `max_detections` are kept, best first.
    """

    def __init__(
        self,
        model: nn.Module,
        name: str = "torchvision",
        score_threshold: float = 0.3,
        nms_iou: float = 0.5,
        class_agnostic_nms: bool = True,
        classes: Sequence[int | str] | None = None,
        class_names: Sequence[str] | None = None,
        max_detections: int = 20,
    ) -> None:
        self.model = model.eval()
        self.name = name
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.class_agnostic_nms = class_agnostic_nms
        self.max_detections = max_detections
        set_nms_iou(self.model, nms_iou)
        self.class_names = list(class_names) if class_names is not None else None
        self.allowed = None if classes is None else torch.tensor(label_ids(classes, class_names))

    @torch.inference_mode()
    def detect_batch(self, images: Sequence[Image.Image]) -> list[Detections]:
        tensors = [
            to_dtype(pil_to_tensor(image.convert("RGB")), torch.float32, scale=True) for image in images
        ]
        return [self.postprocess(out) for out in self.model(tensors)] if tensors else []

    def detect(self, image: Image.Image) -> Detections:
        return self.detect_batch([image])[0]

    def use_runtime(
        self, runtime: str = "torch", cache_dir: str | Path | None = None, precision: str = "fp32"
    ) -> TorchvisionDetector:
        """Run the model's backbone (most of its work) on `runtime`, converted once into `cache_dir`;
        anchors, heads and post-processing stay on torch. Unconvertible: torch, with one warning."""
        check_runtime(runtime, cache_dir)
        if runtime == "torch" or isinstance(self.model.backbone, CompiledBackbone):
            return self
        backbone = self.model.backbone
        fixed = getattr(self.model.transform, "fixed_size", None)  # SSD: one input size
        height, width = fixed or (self.model.transform.min_size[0],) * 2
        example = torch.zeros(1, 3, height, width)
        dynamic = (0,) if fixed else (0, 2, 3)
        with torch.no_grad():
            names = list(backbone(example).keys())
        assert cache_dir is not None
        run = compiled(
            FeatureMaps(backbone), example, runtime, cache_dir, resolve_precision(precision),
            f"{self.name}-backbone", dynamic,
        )  # fmt: skip
        if run is not None:
            self.model.backbone = CompiledBackbone(run, names, getattr(backbone, "out_channels", None))
        return self

    def postprocess(self, output: dict[str, torch.Tensor]) -> Detections:
        """Threshold, allow-list, NMS and cap one image's raw model output (boxes in image pixels)."""
        found = Detections(output["boxes"], output["scores"], output["labels"])
        keep = found.scores >= self.score_threshold
        if self.allowed is not None:
            keep &= torch.isin(found.labels, self.allowed)
        found = found.keep(keep)
        if self.class_agnostic_nms:
            kept = nms(found.boxes, found.scores, self.nms_iou)
        else:
            kept = batched_nms(found.boxes, found.scores, found.labels, self.nms_iou)
        return found.keep(kept[: self.max_detections])


class FeatureMaps(nn.Module):
    """A detection backbone with its feature maps as a tuple (what converters export)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.backbone(images).values())


class CompiledBackbone(nn.Module):
    """A detection backbone on a compiled network: the same named feature maps as the torch one."""

    def __init__(self, run: Runner, names: list[str], out_channels: int | None) -> None:
        super().__init__()
        self.run, self.names, self.out_channels = run, names, out_channels

    def forward(self, images: Tensor) -> OrderedDict[str, Tensor]:
        maps = self.run(images.float().contiguous().numpy())
        return OrderedDict((name, as_tensor(m)) for name, m in zip(self.names, maps, strict=True))


def set_nms_iou(model: nn.Module, iou: float) -> None:
    """The IoU threshold of the model's own per-class NMS."""
    if isinstance(model, FasterRCNN):
        model.roi_heads.nms_thresh = iou
    else:
        model.nms_thresh = iou


def label_ids(classes: Sequence[int | str], class_names: Sequence[str] | None) -> list[int]:
    """Label ids of an allow-list given as ids or names (`class_names[id]` is the name of `id`)."""
    ids = []
    for value in classes:
        if isinstance(value, int):
            ids.append(value)
        elif class_names is not None and value in class_names:
            ids.append(list(class_names).index(value))
        else:
            raise ValueError(f"detector class {value!r} is not a known class name or id")
    return ids


def pretrained_detector(
    arch: str = "ssdlite",
    weights: str | None = "coco",
    num_classes: int | None = None,
    image_size: int = 320,
    name: str | None = None,
    **options,
) -> TorchvisionDetector:
    """A torchvision architecture with COCO weights (`weights="coco"`: download; or a local file) or
    random init (`weights=None`: only useful to measure the cost); `options` as `TorchvisionDetector`."""
    model = build_model(arch, num_classes, weights, image_size)
    names = coco_category_names() if (num_classes or 91) == 91 else None
    return TorchvisionDetector(model, name=name or arch, class_names=names, **options)
