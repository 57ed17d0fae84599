"""The `Encoder` base class: preprocessed images in, (normalised) embeddings out."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor

from visual_search.data.transforms import Preprocess

PRECISIONS = ("fp32", "bf16", "auto")  # auto: bf16 where the CPU computes it natively, else fp32


def resolve_precision(precision: str) -> str:
    """fp32 or bf16 (`auto`: bf16 where the CPU has native bf16 instructions)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {PRECISIONS}")
    if precision == "auto":
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    return precision


class Encoder(torch.nn.Module, ABC):
    """Base class: maps preprocessed images (B,3,H,W float, normalised) to embeddings (B, embed_dim)."""

    has_text_tower: bool = False  # True when the encoder can also embed text (`encode_text`)

    def __init__(self, preprocess: Preprocess, embed_dim: int, normalize: bool = True) -> None:
        super().__init__()
        self.preprocess = preprocess
        self.embed_dim = embed_dim
        self.normalize = normalize
        self.precision = "fp32"
        self.memory_format = torch.contiguous_format
        self.weights = "random"  # where the weights came from (each encoder says; see encode/weights.py)

    def set_runtime(self, precision: str = "fp32", channels_last: bool = False) -> Encoder:
        """How `forward` computes: bf16 autocast or fp32 (`auto`: bf16 where the CPU has native bf16
        instructions), and the channels-last memory format (faster convolutions on CPU). Returns self."""
        self.precision = resolve_precision(precision)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        return self.to(memory_format=self.memory_format)

    @abstractmethod
    def features(self, images: Tensor) -> Tensor:
        """Raw (unnormalised) features of shape (B, embed_dim)."""

    def forward(self, images: Tensor) -> Tensor:
        """Features (fp32), L2-normalised along the last dimension when `self.normalize`."""
        images = images.contiguous(memory_format=self.memory_format)
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            features = self.features(images)
        return self._maybe_normalize(features.float())

    def tokenize(self, texts: list[str]) -> Tensor:
        """Token ids (B, L) of `texts` for the text tower (encoders with one)."""
        raise NotImplementedError(f"{type(self).__name__} has no text tower")

    def encode_tokens(self, tokens: Tensor) -> Tensor:
        """Text embeddings (B, embed_dim) of token ids, L2-normalised when `self.normalize`."""
        raise NotImplementedError(f"{type(self).__name__} has no text tower")

    def encode_text(self, texts: list[str]) -> Tensor:
        """Text embeddings (B, embed_dim) in the image embedding space (encoders with a text tower)."""
        return self.encode_tokens(self.tokenize(texts))

    def backbone(self) -> torch.nn.Module:
        """The image network whose blocks fine-tuning counts when it unfreezes the last N."""
        return self.model

    def _maybe_normalize(self, embeddings: Tensor) -> Tensor:
        return F.normalize(embeddings, dim=-1) if self.normalize else embeddings
