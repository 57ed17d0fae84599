"""Build the configured detector."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from visual_search.detect.base import Detector


def build_detector(cfg: DictConfig, dataset_root: Path | None = None) -> Detector:
    """Instantiate a detector config. A detector trained here (a config with a `data` block) is trained
    on first use and cached; it trains on `dataset_root`'s scenes unless its `data` names other boxes."""
    if "data" in cfg:
        return instantiate(cfg, dataset_root=str(dataset_root) if dataset_root is not None else None)
    return instantiate(cfg)
