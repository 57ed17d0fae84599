"""torchvision detection models: SSDLite and Faster R-CNN on MobileNetV3 (COCO weights through torchvision's
weights API or a local file), and SSDLite on EfficientNet-Lite0 whose ImageNet backbone ships with pip,
the architecture a detector can be trained on offline.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models.detection import (
    FasterRCNN,
    FasterRCNN_MobileNet_V3_Large_FPN_Weights,
    SSDLite320_MobileNet_V3_Large_Weights,
    fasterrcnn_mobilenet_v3_large_fpn,
    ssdlite320_mobilenet_v3_large,
)
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.ssd import SSD
from torchvision.models.detection.ssdlite import SSDLiteClassificationHead, SSDLiteHead
from torchvision.ops.misc import Conv2dNormActivation

from visual_search.encode.timm_encoder import create_timm_model
from visual_search.encode.weights import local_weights_file, read_state_dict

ARCHS = ("ssdlite", "fasterrcnn", "ssdlite_efficientnet_lite0")
COCO_WEIGHTS = {
    "ssdlite": SSDLite320_MobileNet_V3_Large_Weights.COCO_V1,
    "fasterrcnn": FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1,
}
COCO_CLASSES = 91  # torchvision's COCO label space (index 0 = background, some ids unused)
SSD_NORM = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)  # what torchvision's SSDLite uses


def coco_category_names() -> list[str]:
    """torchvision's COCO category names, indexed by label id (known offline: they ship with the code)."""
    return list(COCO_WEIGHTS["ssdlite"].meta["categories"])


class EfficientNetLiteFeatures(nn.Module):
    """EfficientNet-Lite0 (timm) as an SSD backbone: its stride-16 and stride-32 maps plus two extra
    stride-2 blocks, as torchvision's SSDLite builds on MobileNetV3."""

    out_channels = (112, 320, 256, 128)

    def __init__(self, weights: str | None = "pip") -> None:
        super().__init__()
        net = create_timm_model("tf_efficientnet_lite0", weights)
        self.stem = nn.Sequential(net.conv_stem, net.bn1)
        self.stride16 = nn.Sequential(*net.blocks[:5])
        self.stride32 = nn.Sequential(*net.blocks[5:])
        pairs = zip(self.out_channels[1:-1], self.out_channels[2:], strict=True)
        self.extra = nn.ModuleList([_extra_block(c_in, c_out) for c_in, c_out in pairs])

    def forward(self, images: Tensor) -> OrderedDict[str, Tensor]:
        maps = [self.stride16(self.stem(images))]
        maps.append(self.stride32(maps[-1]))
        for block in self.extra:
            maps.append(block(maps[-1]))
        return OrderedDict((str(i), m) for i, m in enumerate(maps))


def _extra_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """1x1 projection, 3x3 depthwise stride 2, 1x1 expansion (SSDLite's extra layers)."""
    mid = out_channels // 2
    block = partial(Conv2dNormActivation, norm_layer=SSD_NORM, activation_layer=nn.ReLU6)
    return nn.Sequential(
        block(in_channels, mid, kernel_size=1),
        block(mid, mid, kernel_size=3, stride=2, groups=mid),
        block(mid, out_channels, kernel_size=1),
    )


def ssdlite_efficientnet_lite0(num_classes: int, image_size: int, backbone_weights: str | None) -> SSD:
    """SSDLite head and anchors on EfficientNet-Lite0 features (`backbone_weights="pip"`: ImageNet)."""
    backbone = EfficientNetLiteFeatures(backbone_weights)
    channels = list(backbone.out_channels)
    anchors = DefaultBoxGenerator([[2, 3]] * len(channels), min_ratio=0.2, max_ratio=0.95)
    head = SSDLiteHead(channels, anchors.num_anchors_per_location(), num_classes, SSD_NORM)
    return SSD(
        backbone, anchors, (image_size, image_size), num_classes, head=head,
        image_mean=[0.5] * 3, image_std=[0.5] * 3,  # EfficientNet-Lite's normalisation
    )  # fmt: skip


def build_model(
    arch: str,
    num_classes: int | None = None,
    weights: str | None = None,
    image_size: int = 320,
    backbone_weights: str | None = None,
) -> nn.Module:
    """A torchvision detection model in eval mode.

    `weights`: None = random init; "coco" = torchvision's COCO weights (download); else a local file
    holding the same COCO state dict. With weights, `num_classes` other than COCO's 91 replaces the
    class-specific head (random init) for fine-tuning. `backbone_weights` ("pip": ImageNet, or None)
    only for ssdlite_efficientnet_lite0, which has no COCO weights.
    `image_size`: the square input of SSD models, the shorter side for Faster R-CNN.
    """
    if arch not in ARCHS:
        raise ValueError(f"detector arch {arch!r}; choose one of {', '.join(ARCHS)}")
    if weights is not None and arch not in COCO_WEIGHTS:
        raise ValueError(f"arch={arch} has no COCO weights; train it (detector=trained) instead")
    classes = COCO_CLASSES if weights is not None else num_classes or COCO_CLASSES
    if arch == "ssdlite_efficientnet_lite0":
        return ssdlite_efficientnet_lite0(classes, image_size, backbone_weights).eval()
    if backbone_weights is not None:
        raise ValueError(f"backbone_weights={backbone_weights!r}: {arch} starts from random or COCO weights")
    if arch == "ssdlite":
        model = ssdlite320_mobilenet_v3_large(num_classes=classes, weights_backbone=None)
        set_ssd_size(model, image_size)
    else:
        model = fasterrcnn_mobilenet_v3_large_fpn(
            num_classes=classes, weights_backbone=None, min_size=image_size, max_size=image_size
        )
    if weights is not None:
        model.load_state_dict(coco_state_dict(arch, weights))
        if num_classes not in (None, COCO_CLASSES):
            replace_class_head(model, num_classes)
    return model.eval()


def coco_state_dict(arch: str, weights: str) -> dict[str, Tensor]:
    """torchvision's COCO weights for `arch`: downloaded (`weights="coco"`) or read from a local file."""
    if weights == "coco":
        return COCO_WEIGHTS[arch].get_state_dict(progress=True, check_hash=True)
    return read_state_dict(local_weights_file(weights, "detector.weights", ["coco"]))


def set_ssd_size(model: SSD, image_size: int) -> None:
    """Run an SSD at `image_size` square instead of its built-in size (anchors follow the feature maps)."""
    model.transform.fixed_size = (image_size, image_size)
    model.transform.min_size = (image_size,)
    model.transform.max_size = image_size


def replace_class_head(model: nn.Module, num_classes: int) -> None:
    """A fresh class-specific head for `num_classes` classes (box regression and backbone kept)."""
    if isinstance(model, FasterRCNN):
        predictor = model.roi_heads.box_predictor
        model.roi_heads.box_predictor = FastRCNNPredictor(predictor.cls_score.in_features, num_classes)
        return
    head = model.head.classification_head
    channels = [m[0][0].in_channels for m in head.module_list]
    anchors = model.anchor_generator.num_anchors_per_location()
    model.head.classification_head = SSDLiteClassificationHead(channels, anchors, num_classes, SSD_NORM)
    model.num_classes = num_classes


def save_checkpoint(model: nn.Module, path: Path, config: dict) -> None:
    """Weights plus what `load_checkpoint` needs to rebuild the model (arch, num_classes, image_size...)."""
    torch.save({"config": config, "state_dict": model.state_dict()}, path)


def load_checkpoint(path: Path) -> tuple[nn.Module, dict]:
    """A model saved by `save_checkpoint` (eval mode) and its config."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    config = saved["config"]
    model = build_model(config["arch"], config["num_classes"], image_size=config["image_size"])
    model.load_state_dict(saved["state_dict"])
    return model.eval(), config
