"""`train.py`: fine-tuning. Until the training issue lands, it prepares the data and says so."""

from __future__ import annotations

from omegaconf import DictConfig

from visual_search.data.build import build_items
from visual_search.errors import UserError


def train(cfg: DictConfig) -> None:
    """Prepare the data; training itself is not built yet."""
    build_items(cfg)
    raise UserError("training is not available yet (the data was prepared); use evaluate.py")
