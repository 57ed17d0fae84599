"""Detector training: annotations (synthetic scenes, COCO files), one Lightning training step, the cache."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from PIL import Image

from visual_search.detect import build_detector
from visual_search.detect.annotations import is_query_scene, read_coco, read_scene_records, read_scenes
from visual_search.detect.models import build_model
from visual_search.detect.trained import (
    CHECKPOINT,
    cache_key,
    ensure_trained,
    frozen_parts,
    trained_detector,
)
from visual_search.detect.training import BoxDataModule, DetectionAugment, DetectorModule
from visual_search.errors import UserError

pytestmark = [  # Lightning's own deprecation; the frozen stem is in eval mode on purpose
    pytest.mark.filterwarnings("ignore:.*LeafSpec"),
    pytest.mark.filterwarnings("ignore:Found .* module.* in eval mode"),
]
MODEL = {"arch": "ssdlite_efficientnet_lite0", "weights": None, "backbone_weights": None, "image_size": 64}
TRAINING = {
    "epochs": 1, "batch_size": 2, "lr": 1e-3, "weight_decay": 0.0, "frozen_stages": 2, "val_share": 0.0,
    "num_workers": 0, "seed": 0, "augment": {"hflip": 0.5, "color_jitter": 0.1, "zoom_out": 0.5},
}  # fmt: skip


def test_scenes_are_split_between_training_and_queries(tiny_polyvore):
    records = read_scene_records(tiny_polyvore)
    annotations = read_scenes(tiny_polyvore)
    trained_on = {s.key for s in annotations.samples}
    assert trained_on == {r["scene_id"] for r in records if not is_query_scene(r["scene_id"])}
    assert 0 < len(trained_on) < len(records)  # the 4 tiny scenes fall on both sides
    assert annotations.classes == ["background", "object"]
    sample = annotations.samples[0]
    assert sample.image.is_file() and len(sample.boxes) == len(sample.labels) >= 2
    assert set(sample.labels) == {1}
    by_category = read_scenes(tiny_polyvore, class_agnostic=False)
    assert len(by_category.classes) > 2 and max(max(s.labels) for s in by_category.samples) >= 1


def test_missing_scenes_are_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"scenes\.json not found"):
        read_scenes(tmp_path)


def write_coco(folder: Path) -> Path:
    for name in ("a.png", "b.png"):
        Image.new("RGB", (40, 30), "white").save(folder / name)
    coco = {
        "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}],
        "annotations": [
            {"image_id": 1, "bbox": [5, 5, 10, 20], "category_id": 7},
            {"image_id": 1, "bbox": [0, 0, 40, 30], "category_id": 3, "iscrowd": 1},
            {"image_id": 1, "bbox": [20, 2, 0, 5], "category_id": 3},  # zero width: skipped
        ],
        "categories": [{"id": 7, "name": "shoe"}, {"id": 3, "name": "bag"}],
    }
    path = folder / "coco.json"
    path.write_text(json.dumps(coco))
    return path


def test_coco_files_read_into_box_annotations(tmp_path):
    path = write_coco(tmp_path)
    agnostic = read_coco(path)
    first, second = agnostic.samples
    assert first.boxes == [[5, 5, 15, 25]] and first.labels == [1] and first.image == tmp_path / "a.png"
    assert second.boxes == [] and second.labels == []  # kept as a negative
    named = read_coco(path, class_agnostic=False)
    assert named.classes == ["background", "bag", "shoe"] and named.samples[0].labels == [2]
    with pytest.raises(UserError, match="not found"):
        read_coco(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(UserError, match="not a COCO detection file"):
        read_coco(tmp_path / "bad.json")


def test_one_training_step_updates_the_head_and_not_the_frozen_stem(tiny_polyvore):
    samples = read_scenes(tiny_polyvore).samples
    model = build_model("ssdlite_efficientnet_lite0", num_classes=2, image_size=64)
    module = DetectorModule(model, lr=1e-2, frozen=frozen_parts(model, 2))
    data = BoxDataModule(samples, samples[:1], 64, DetectionAugment(zoom_out=0.5), batch_size=2)
    head = model.head.regression_head.module_list[0][1].weight.clone()
    stem = model.backbone.stem[0].weight.clone()
    stem_stats = model.backbone.stem[1].running_mean.clone()
    trainer = pl.Trainer(
        max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(module, datamodule=data)
    assert math.isfinite(trainer.callback_metrics["train/loss"])
    assert 0 <= trainer.callback_metrics["val/largest_iou"] <= 1
    assert not torch.equal(head, model.head.regression_head.module_list[0][1].weight)
    assert torch.equal(stem, model.backbone.stem[0].weight)
    assert torch.equal(stem_stats, model.backbone.stem[1].running_mean)  # frozen batch norm stays frozen


def test_trained_detector_is_trained_once_then_reused(tiny_polyvore, tmp_path):
    data = {"scenes": str(tiny_polyvore), "class_agnostic": True}
    detect = {"score_threshold": 0.0, "max_detections": 5}
    detector = trained_detector(data, MODEL, TRAINING, detect, cache_dir=str(tmp_path))
    (folder,) = tmp_path.iterdir()
    checkpoint = folder / CHECKPOINT
    saved = checkpoint.stat().st_mtime_ns
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["train_seconds"] > 0 and math.isfinite(metrics["train/loss"])
    assert len(detector.detect(Image.new("RGB", (96, 96), "white"))) <= 5

    again = trained_detector(data, MODEL, TRAINING, detect, cache_dir=str(tmp_path))
    assert checkpoint.stat().st_mtime_ns == saved and len(list(tmp_path.iterdir())) == 1
    assert isinstance(again.model, torch.nn.Module)
    annotations = read_scenes(tiny_polyvore)
    assert cache_key(MODEL, TRAINING, annotations) != cache_key(MODEL, {**TRAINING, "epochs": 2}, annotations)
    assert ensure_trained(annotations, MODEL, TRAINING, tmp_path) == checkpoint
    config = OmegaConf.create(
        {
            "_target_": "visual_search.detect.trained.trained_detector",
            "data": {"scenes": None, "class_agnostic": True},  # null: the dataset's own scenes
            **{"model": MODEL, "training": TRAINING, "detect": detect, "cache_dir": str(tmp_path)},
        }
    )
    built = build_detector(config, dataset_root=tiny_polyvore)
    assert built.name == "trained" and len(list(tmp_path.iterdir())) == 1  # the same training data: reused

    from_file = trained_detector({}, MODEL, TRAINING, detect, cache_dir="unused", checkpoint=str(checkpoint))
    assert from_file.name == "trained"
    with pytest.raises(UserError, match="no such file"):
        trained_detector({}, MODEL, TRAINING, detect, cache_dir="unused", checkpoint=str(tmp_path / "x.pt"))
    with pytest.raises(UserError, match="needs box annotations"):
        trained_detector({"scenes": None}, MODEL, TRAINING, detect, cache_dir=str(tmp_path))
