"""The encoder a run uses: the configured one, or the fine-tuned one from a training checkpoint."""

from __future__ import annotations

from hydra.utils import instantiate
from omegaconf import DictConfig

from visual_search.encoders.base import Encoder


def build_encoder(cfg: DictConfig) -> Encoder:
    """The fine-tuned encoder of `cfg.checkpoint` when set (its own encoder config comes with it),
    else `cfg.encoder`; in eval mode, computing as `cfg.inference` says (precision, memory format).
    Evaluation and serving both build their encoder here."""
    if cfg.get("checkpoint"):
        from visual_search.training.module import load_finetuned

        encoder = load_finetuned(cfg.checkpoint)
    else:
        encoder = instantiate(cfg.encoder)
    runtime = cfg.get("inference") or {}
    return encoder.set_runtime(runtime.get("precision", "fp32"), runtime.get("channels_last", False)).eval()
