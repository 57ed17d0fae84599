"""Detectors: the classical foreground one, torchvision models (random init, offline) and their
post-processing (score threshold, class allow-list, NMS)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image, ImageDraw

from visual_search.detect import build_detector
from visual_search.detect.base import Detections, NoDetector
from visual_search.detect.crop import crop
from visual_search.detect.foreground import ForegroundDetector
from visual_search.detect.models import build_model, load_checkpoint, save_checkpoint
from visual_search.detect.torchvision_detector import (
    CompiledBackbone,
    TorchvisionDetector,
    pretrained_detector,
)


def scene(size: int = 96, noise: float = 4.0) -> Image.Image:
    """A textured light background with a big dark rectangle and a small red disc."""
    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal(215, noise, (size, size, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    draw.rectangle([10, 20, 59, 79], fill=(40, 60, 90))
    draw.ellipse([70, 5, 89, 24], fill=(200, 30, 30))
    return image


def test_foreground_finds_each_object_and_largest_crops_the_big_one():
    image = scene()
    found = ForegroundDetector(threshold=30, work_size=96).detect(image)
    assert len(found) == 2
    (big,) = crop(image, found, "largest")
    assert big.source == "detected"
    assert np.allclose(big.box, (10, 20, 60, 80), atol=2)
    merged = ForegroundDetector(threshold=30, work_size=96, separate=False).detect(image)
    assert len(merged) == 1 and np.allclose(merged.boxes[0].tolist(), (10, 5, 90, 80), atol=2)


def test_foreground_works_at_any_image_size():
    image = scene().resize((300, 300))
    (big,) = crop(image, ForegroundDetector(threshold=30, work_size=64).detect(image), "largest")
    assert np.allclose(big.box, (31, 62, 188, 250), atol=6)


def test_plain_image_has_no_detection_and_falls_back_to_the_whole_image():
    image = Image.new("RGB", (80, 60), (230, 230, 230))
    assert len(ForegroundDetector().detect(image)) == 0
    (region,) = crop(image, ForegroundDetector().detect(image), "largest", padding=0.1)
    assert region.source == "whole" and region.box == (0, 0, 80, 60)


def raw(boxes, scores, labels) -> dict[str, torch.Tensor]:
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32),
        "scores": torch.tensor(scores),
        "labels": torch.tensor(labels),
    }


@pytest.fixture(scope="module")
def tiny_ssd() -> torch.nn.Module:
    return build_model("ssdlite", num_classes=3, image_size=64)


def test_postprocess_thresholds_filters_classes_and_merges_overlaps(tiny_ssd):
    detector = TorchvisionDetector(
        tiny_ssd, score_threshold=0.5, nms_iou=0.5, classes=["shoe"], class_names=["bg", "bag", "shoe"]
    )
    out = raw(
        [[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [0, 0, 10, 10]],
        [0.9, 0.8, 0.7, 0.3, 0.95],
        [2, 2, 2, 2, 1],
    )
    kept = detector.postprocess(out)
    assert kept.boxes.tolist() == [[0, 0, 10, 10], [20, 20, 30, 30]]  # 2nd merged, 4th unsure, 5th a bag
    per_class = TorchvisionDetector(tiny_ssd, score_threshold=0.5, class_agnostic_nms=False)
    assert len(per_class.postprocess(out)) == 3  # the bag overlapping the shoe survives per-class NMS
    with pytest.raises(ValueError, match="'hat' is not a known class"):
        TorchvisionDetector(tiny_ssd, classes=["hat"], class_names=["bg", "bag", "shoe"])


@pytest.mark.parametrize("arch", ["ssdlite", "fasterrcnn", "ssdlite_efficientnet_lite0"])
def test_random_init_detectors_run_offline(arch):
    detector = pretrained_detector(arch, weights=None, num_classes=2, image_size=64, score_threshold=0.0)
    found = detector.detect_batch([scene(), scene(120)])
    assert len(found) == 2 and all(isinstance(d, Detections) for d in found)
    for d in found:
        assert d.boxes.shape[1] == 4 and len(d) <= 20
        assert (d.boxes[:, 2] <= 120 + 1e-3).all() and (d.scores >= 0).all()


@pytest.mark.parametrize("runtime", ["openvino", "onnxruntime"])
@pytest.mark.parametrize("arch", ["ssdlite_efficientnet_lite0", "fasterrcnn"])
def test_a_backbone_on_a_runtime_finds_the_same_boxes(arch, runtime, tmp_path):
    torch.manual_seed(0)
    options = {"weights": None, "num_classes": 2, "image_size": 64, "score_threshold": 0.0}
    on_torch = pretrained_detector(arch, max_detections=5, **options)
    converted = copy.deepcopy(on_torch).use_runtime(runtime, tmp_path, precision="fp32")
    assert isinstance(converted.model.backbone, CompiledBackbone)
    images = [scene(), scene(120).resize((120, 90))]  # Faster R-CNN: any input size
    for expected, got in zip(on_torch.detect_batch(images), converted.detect_batch(images), strict=True):
        assert len(expected) > 0
        torch.testing.assert_close(got.boxes, expected.boxes, atol=0.05, rtol=1e-3)
        torch.testing.assert_close(got.scores, expected.scores, atol=1e-3, rtol=1e-3)
    cfg = {"_target_": f"{pretrained_detector.__module__}.pretrained_detector", "arch": arch, **options}
    inference = {"runtime": runtime, "cache_dir": str(tmp_path), "precision": "fp32"}
    built = build_detector(OmegaConf.create(cfg), inference=inference)
    assert isinstance(built.model.backbone, CompiledBackbone)


def test_coco_weights_load_from_a_local_file(tmp_path):
    coco = build_model("ssdlite", image_size=64)  # the COCO architecture (91 classes), random weights
    torch.save(coco.state_dict(), tmp_path / "ssdlite_coco.pth")
    loaded = build_model("ssdlite", num_classes=2, weights=str(tmp_path / "ssdlite_coco.pth"), image_size=64)
    assert torch.equal(loaded.backbone.features[0][0][0].weight, coco.backbone.features[0][0][0].weight)
    assert loaded.head.classification_head.module_list[0][1].out_channels == 6 * 2  # new 2-class head
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        build_model("ssdlite", weights=str(tmp_path / "missing.pth"))


def test_checkpoint_round_trip_gives_the_same_detections(tmp_path):
    model = build_model("ssdlite_efficientnet_lite0", num_classes=2, image_size=64)
    save_checkpoint(
        model, tmp_path / "d.pt", {"arch": "ssdlite_efficientnet_lite0", "num_classes": 2, "image_size": 64}
    )
    loaded, config = load_checkpoint(tmp_path / "d.pt")
    image = torch.rand(3, 64, 64)
    with torch.inference_mode():
        a, b = model([image])[0], loaded([image])[0]
    assert config["num_classes"] == 2 and torch.allclose(a["scores"], b["scores"])


def test_build_detector_from_config():
    cfg = OmegaConf.create({"detector": {"_target_": "visual_search.detect.base.NoDetector", "name": "none"}})
    assert isinstance(build_detector(cfg.detector), NoDetector)
