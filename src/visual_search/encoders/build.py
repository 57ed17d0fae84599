"""The encoder a run uses: the configured one, or the fine-tuned one from a training checkpoint."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig

from visual_search.encoders.base import Encoder


def build_encoder(cfg: DictConfig) -> Encoder:
    """Instantiate `cfg.encoder` (in eval mode). Evaluation and serving both build their encoder here."""
    encoder: Encoder = instantiate(cfg.encoder)
    return encoder.eval()
