"""The `Encoder` base class and the `Preprocess` description every encoder carries."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

PRECISIONS = ("fp32", "bf16", "auto")  # auto: bf16 where the CPU computes it natively, else fp32
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("bilinear", "bicubic")


@dataclass(frozen=True)
class Preprocess:
    """How images must be prepared for an encoder (the data layer turns this into transforms)."""

    input_size: int = 224  # centre-crop side fed to the network
    resize_size: int = 256  # shorter side is resized to this before the crop
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"  # "bilinear" | "bicubic"

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation={self.interpolation!r}: expected one of {INTERPOLATIONS}")
        if not 0 < self.input_size <= self.resize_size:
            raise ValueError(f"need 0 < input_size ({self.input_size}) <= resize_size ({self.resize_size})")

    def with_input_size(self, input_size: int | None) -> Preprocess:
        """A copy cropping `input_size` pixels, keeping the resize/crop ratio (None: unchanged)."""
        if input_size is None:
            return self
        resize_size = round(input_size * self.resize_size / self.input_size)
        return dataclasses.replace(self, input_size=input_size, resize_size=resize_size)


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

    def set_runtime(self, precision: str = "fp32", channels_last: bool = False) -> Encoder:
        """How `forward` computes: bf16 autocast or fp32 (`auto`: bf16 where the CPU has native bf16
        instructions), and the channels-last memory format (faster convolutions on CPU). Returns self."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}: expected one of {PRECISIONS}")
        if precision == "auto":
            precision = "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
        self.precision = precision
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

    def backbone(self) -> torch.nn.Module:
        """The image network whose blocks fine-tuning counts when it unfreezes the last N."""
        return self.model

    def _maybe_normalize(self, embeddings: Tensor) -> Tensor:
        return F.normalize(embeddings, dim=-1) if self.normalize else embeddings
