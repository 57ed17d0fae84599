"""The detector trained here: trained once per (config, annotations) and cached, then loaded as a Detector.

The cache folder `<cache_dir>/<arch>-<digest>/` holds `detector.pt` (weights + what rebuilds the model),
`config.json` (what it was trained with) and `metrics.json` (validation IoU, training time); the digest
covers the model and training settings and the annotation file's bytes, so any change trains a new one.
Training writes into a temporary sibling folder renamed into place when complete: a crash never leaves a
half-written detector behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger
from torch import nn

from visual_search.detect.annotations import BoxAnnotations, read_coco, read_scenes
from visual_search.detect.models import build_model, load_checkpoint, save_checkpoint
from visual_search.detect.torchvision_detector import TorchvisionDetector
from visual_search.detect.training import BoxDataModule, DetectionAugment, DetectorModule, split_samples
from visual_search.errors import UserError

log = logging.getLogger(__name__)

CHECKPOINT = "detector.pt"
FORMAT_VERSION = 1  # bump when training changes in a way the settings do not show


def plain(value: Any) -> Any:
    """A config node as plain Python containers (anything else unchanged)."""
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


def read_annotations(data: Mapping[str, Any], dataset_root: str | None = None) -> BoxAnnotations:
    """The training annotations `data` names: a COCO file (`annotations`, `images`), or the training
    scenes of a synthetic dataset folder (`scenes`; null: the dataset's own folder, `dataset_root`)."""
    agnostic = data.get("class_agnostic", True)
    if data.get("annotations"):
        return read_coco(data["annotations"], data.get("images"), agnostic)
    scenes = data.get("scenes") or dataset_root
    if not scenes:
        raise UserError(
            "the trained detector needs box annotations: a synthetic dataset (its scenes) or "
            "detector.data.annotations=/path/to/coco.json"
        )
    return read_scenes(scenes, agnostic)


def cache_key(model: Mapping[str, Any], training: Mapping[str, Any], annotations: BoxAnnotations) -> str:
    """Digest of everything the trained weights depend on."""
    payload = {
        "format": FORMAT_VERSION,
        "model": model,
        "training": training,
        "classes": annotations.classes,
        "annotations": annotations.fingerprint(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def frozen_parts(model: nn.Module, stages: int) -> list[nn.Module]:
    """The first `stages` stages of the backbone (its stem counts as one), to keep fixed in training."""
    if stages <= 0:
        return []
    backbone = model.backbone
    if hasattr(backbone, "stride16"):  # EfficientNet-Lite0 (models.EfficientNetLiteFeatures)
        return [backbone.stem, *list(backbone.stride16)[: stages - 1]]
    body = backbone.body if hasattr(backbone, "body") else backbone.features[0]  # Faster R-CNN | SSDLite
    return list(body)[:stages]


def train(
    annotations: BoxAnnotations, model_cfg: Mapping[str, Any], training: Mapping[str, Any], folder: Path
) -> dict[str, float]:
    """Train a detector on `annotations` and save it in `folder`; returns its validation metrics."""
    pl.seed_everything(training["seed"], verbose=False)
    model = build_model(
        model_cfg["arch"],
        len(annotations.classes),
        model_cfg.get("weights"),
        model_cfg["image_size"],
        model_cfg.get("backbone_weights"),
    )
    train_set, val_set = split_samples(annotations.samples, training["val_share"])
    if len(train_set) < 2:
        raise UserError(
            f"{annotations.source}: {len(train_set)} training image(s); a detector needs at least 2"
        )
    data = BoxDataModule(
        train_set,
        val_set,
        model_cfg["image_size"],
        DetectionAugment(**training["augment"]),
        training["batch_size"],
        training["num_workers"],
    )
    module = DetectorModule(
        model,
        lr=training["lr"],
        weight_decay=training["weight_decay"],
        frozen=frozen_parts(model, training["frozen_stages"]),
    )
    trainer = pl.Trainer(
        max_epochs=training["epochs"],
        accelerator="auto",
        devices=1,
        logger=CSVLogger(folder, name="logs", version=""),
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if val_set else 0,
        log_every_n_steps=1,
    )
    log.info(
        "training a %s detector on %d images (%d for validation), %d epochs at %d px",
        model_cfg["arch"], len(train_set), len(val_set), training["epochs"], model_cfg["image_size"],
    )  # fmt: skip
    start = time.perf_counter()
    with warnings.catch_warnings():  # the frozen backbone stages are in eval mode on purpose
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        trainer.fit(module, datamodule=data)
    metrics = {key: float(value) for key, value in trainer.callback_metrics.items()}
    metrics["train_seconds"] = time.perf_counter() - start
    config = {
        "arch": model_cfg["arch"],
        "num_classes": len(annotations.classes),
        "image_size": model_cfg["image_size"],
        "classes": annotations.classes,
    }
    save_checkpoint(module.model.cpu(), folder / CHECKPOINT, config)
    return metrics


def cache_folder(
    annotations: BoxAnnotations, model: Mapping[str, Any], training: Mapping[str, Any], cache_dir: str | Path
) -> Path:
    """Where the detector trained with these settings on these annotations is cached."""
    return Path(cache_dir) / f"{model['arch']}-{cache_key(model, training, annotations)}"


def ensure_trained(
    annotations: BoxAnnotations,
    model: Mapping[str, Any],
    training: Mapping[str, Any],
    cache_dir: str | Path,
    retrain: bool = False,
) -> Path:
    """The cached detector for these settings and annotations, trained first if missing (or `retrain`)."""
    target = cache_folder(annotations, model, training, cache_dir)
    if (target / CHECKPOINT).is_file() and not retrain:
        log.info("reusing the trained detector in %s", target)
        return target / CHECKPOINT
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=cache_dir))
    try:
        metrics = train(annotations, model, training, tmp)
        settings = {"model": model, "training": training, "annotations": str(annotations.source)}
        (tmp / "config.json").write_text(json.dumps(settings, indent=2))
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2))
        if retrain and target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except OSError:
        if not (target / CHECKPOINT).is_file():  # a concurrent trainer that finished first is fine
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("trained detector saved in %s: %s", target, json.dumps(metrics))
    return target / CHECKPOINT


def trained_detector(
    data: Mapping[str, Any],
    model: Mapping[str, Any],
    training: Mapping[str, Any],
    detect: Mapping[str, Any],
    cache_dir: str,
    checkpoint: str | None = None,
    retrain: bool = False,
    name: str = "trained",
    dataset_root: str | None = None,
    train: bool = True,
) -> TorchvisionDetector | None:
    """The trained detector: `checkpoint` if given, else the cached one for these settings (trained on
    first use, or again with `retrain`; with `train=False`, None when none is cached) on the boxes `data`
    names (see `read_annotations`). `detect`: the `TorchvisionDetector` options."""
    data, model, training, detect = (plain(v) for v in (data, model, training, detect))
    if checkpoint is None:
        annotations = read_annotations(data, dataset_root)
        if not train:
            checkpoint = cache_folder(annotations, model, training, cache_dir) / CHECKPOINT
            if not checkpoint.is_file():
                return None
        checkpoint = ensure_trained(annotations, model, training, cache_dir, retrain)
    elif not Path(checkpoint).is_file():
        raise UserError(f"detector.checkpoint={checkpoint}: no such file")
    network, config = load_checkpoint(Path(checkpoint))
    return TorchvisionDetector(network, name=name, class_names=config["classes"], **detect)
