"""`train_detector.py`: train (or find in the cache) the detector `detector=trained` describes."""

from __future__ import annotations

import json
import logging

from omegaconf import DictConfig

from visual_search.data.build import build_items
from visual_search.detect.trained import ensure_trained, plain, read_annotations
from visual_search.errors import UserError

log = logging.getLogger(__name__)


def train_detector(cfg: DictConfig) -> dict[str, float]:
    """Train the configured detector unless an identical one is cached; returns its training metrics."""
    if not str(cfg.detector.get("_target_", "")).endswith("trained_detector"):
        raise UserError("train_detector.py trains detector=trained (or a config like it)")
    det = cfg.detector
    data = plain(det.data)
    own_scenes = not (data.get("annotations") or data.get("scenes"))
    root = build_items(cfg).root if own_scenes else None  # the dataset's folder: its training scenes
    annotations = read_annotations(data, str(root) if root else None)
    log.info("%d annotated images from %s", len(annotations.samples), annotations.source)
    path = ensure_trained(annotations, plain(det.model), plain(det.training), det.cache_dir, det.retrain)
    metrics = json.loads((path.parent / "metrics.json").read_text())
    log.info("detector: %s", path)
    for key, value in metrics.items():
        log.info("  %-20s %10.4f", key, value)
    return metrics
