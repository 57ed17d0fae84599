"""Build the configured item table (the first step of every task)."""

from __future__ import annotations

import logging

from hydra.utils import instantiate
from omegaconf import DictConfig

from visual_search.data.items import ItemTable

log = logging.getLogger(__name__)


def build_items(cfg: DictConfig) -> ItemTable:
    """Instantiate `cfg.dataset` (generating synthetic data on first use) and log its summary."""
    items: ItemTable = instantiate(cfg.dataset)
    for line in items.summary().splitlines():
        log.info(line)
    return items
