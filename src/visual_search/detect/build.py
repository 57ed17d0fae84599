"""Build the configured detector."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from visual_search.detect.base import Detector
from visual_search.detect.torchvision_detector import TorchvisionDetector


def build_detector(
    cfg: DictConfig, dataset_root: Path | None = None, inference: Mapping | None = None, train: bool = True
) -> Detector | None:
    """Instantiate a detector config. A detector trained here (a config with a `data` block) is trained
    on first use and cached (`train=False`: None when none is cached); it trains on `dataset_root`'s
    scenes unless its `data` names other boxes. A network detector runs its backbone on
    `inference.runtime` (as the encoder does)."""
    if "data" in cfg:
        root = str(dataset_root) if dataset_root is not None else None
        detector = instantiate(cfg, dataset_root=root, train=train)
    else:
        detector = instantiate(cfg)
    if isinstance(detector, TorchvisionDetector) and inference:
        runtime, cache_dir = inference.get("runtime", "torch"), inference.get("cache_dir")
        detector.use_runtime(runtime, cache_dir, inference.get("precision", "fp32"))
    return detector
