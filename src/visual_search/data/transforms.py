"""How images are prepared for an encoder (`Preprocess`), the evaluation transform built from it, and
training augmentation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

Transform = Callable[..., torch.Tensor]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("bilinear", "bicubic")


@dataclass(frozen=True)
class Preprocess:
    """How images must be prepared for an encoder (every encoder carries one)."""

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


@dataclass(frozen=True)
class Augment:
    """Training augmentation; the encoder's input size and normalisation are applied on top."""

    crop_scale: Sequence[float] = (0.6, 1.0)
    crop_ratio: Sequence[float] = (3 / 4, 4 / 3)  # aspect ratios of the random crop
    hflip: float = 0.5
    color_jitter: float = 0.2


def _interpolation(name: str) -> InterpolationMode:
    return InterpolationMode(name.lower())


def _to_normalised_tensor(pre: Preprocess) -> list[Callable]:
    return [T.ToImage(), T.ToDtype(torch.float32, scale=True), T.Normalize(pre.mean, pre.std)]


def eval_transform(pre: Preprocess) -> Transform:
    """Resize the shorter side, centre-crop, normalise: what the encoder was trained with. The image
    becomes a uint8 tensor first: resizing a tensor costs 0.9 ms per 128 px image, a PIL image 1.45 ms,
    with identical output."""
    return T.Compose(
        [
            T.ToImage(),
            T.Resize(pre.resize_size, interpolation=_interpolation(pre.interpolation), antialias=True),
            T.CenterCrop(pre.input_size),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(pre.mean, pre.std),
        ]
    )


def train_transform(pre: Preprocess, augment: Augment) -> Transform:
    """Random resized crop, flip and colour jitter, then the encoder's normalisation."""
    jitter = augment.color_jitter
    return T.Compose(
        [
            T.RandomResizedCrop(
                pre.input_size,
                scale=tuple(augment.crop_scale),
                ratio=tuple(augment.crop_ratio),
                interpolation=_interpolation(pre.interpolation),
                antialias=True,
            ),
            T.RandomHorizontalFlip(augment.hflip),
            T.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter),
            *_to_normalised_tensor(pre),
        ]
    )
