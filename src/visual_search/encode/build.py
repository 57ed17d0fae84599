"""The one encoder factory: the configured encoder, or the fine-tuned one of a training checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from hydra.utils import instantiate
from omegaconf import DictConfig

from visual_search.encode.base import Encoder
from visual_search.encode.checkpoint import load_finetuned
from visual_search.encode.runtime import convert
from visual_search.encode.weights import RANDOM

log = logging.getLogger(__name__)


def build_encoder(
    encoder: DictConfig | Mapping, checkpoint: str | None = None, inference: Mapping | None = None
) -> Encoder:
    """The fine-tuned encoder of `checkpoint` when given (its own encoder config comes with it), else the
    `encoder` config's; in eval mode, computing as `inference` says (precision, memory format, and the
    runtime: torch, or the network converted to OpenVINO or ONNX Runtime and cached in its `cache_dir`).
    Evaluation, training's final evaluation, serving and the benchmarks all build their encoder here."""
    model = load_finetuned(checkpoint) if checkpoint else instantiate(encoder)
    if model.weights == RANDOM:
        log.warning(
            "%s has random weights (none given): its results say how the architecture does untrained, "
            "not how the approach does; give encoder.weights= / encoder.pretrained= (a name or a file)",
            type(model).__name__,
        )
    settings = inference or {}
    model = model.set_runtime(settings.get("precision", "fp32"), settings.get("channels_last", False)).eval()
    return convert(model, settings.get("runtime", "torch"), settings.get("cache_dir"))
