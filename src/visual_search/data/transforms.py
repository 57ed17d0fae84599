"""How images are prepared for an encoder (`Preprocess`), the evaluation transform built from it, and
training augmentation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T
from torchvision.transforms.v2 import functional as F

Transform = Callable[..., torch.Tensor]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("bilinear", "bicubic")
MAX_ASPECT = 20  # resizing the shorter side of a thinner image would make its longer side unbounded


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


class BoundAspect:
    """Cut an image whose longer side exceeds `max_aspect` times its shorter one to that, around its
    centre: the centre crop after resizing keeps only the middle anyway, and resizing the shorter side of
    a needle-thin image would make the longer one unbounded. Other images pass unchanged."""

    def __init__(self, max_aspect: float = MAX_ASPECT) -> None:
        self.max_aspect = max_aspect

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        longest = int(self.max_aspect * max(1, min(height, width)))
        if max(height, width) <= longest:
            return image
        return F.center_crop(image, [min(height, longest), min(width, longest)])

    def __repr__(self) -> str:
        return f"BoundAspect(max_aspect={self.max_aspect})"


class ToNormalized:
    """uint8 pixels (C, H, W) to float32, scaled to [0, 1] and normalised by `mean` and `std`: the same
    bits as torchvision's `ToDtype(scale=True)` + `Normalize`, computed in numpy on one thread. torch's
    element-wise kernels split even one image across its OpenMP threads, which made this step 0.7 ms on a
    quiet machine and 5-40 ms on a busy one (numpy: 0.14 ms either way)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)[:, None, None]
        self.std = np.asarray(std, dtype=np.float32)[:, None, None]

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if image.dtype != torch.uint8:
            raise TypeError(f"ToNormalized takes uint8 pixels, not {image.dtype}")
        pixels = image.numpy().astype(np.float32, order="C")  # a crop is a strided view
        pixels *= np.float32(1 / 255)  # what ToDtype(scale=True) multiplies by
        pixels -= self.mean
        pixels /= self.std
        return torch.from_numpy(pixels)

    def __repr__(self) -> str:
        return f"ToNormalized(mean={self.mean.ravel().tolist()}, std={self.std.ravel().tolist()})"


class ReduceLarge:
    """Shrink a PIL image whose shorter side is at least twice `side` by an integer factor (Pillow's
    `reduce`: a box filter, a few ms even at 25 megapixels) to between two and three times `side`, so the
    tensor the resize works on stays small (a 5000 x 5000 photo would take 300 MB as floats). Smaller
    images, and tensors, pass unchanged."""

    def __init__(self, side: int) -> None:
        self.side = side

    def __call__(self, image: Image.Image | torch.Tensor) -> Image.Image | torch.Tensor:
        if not isinstance(image, Image.Image):
            return image
        factor = min(image.size) // (2 * self.side)
        return image.reduce(factor) if factor >= 2 else image

    def __repr__(self) -> str:
        return f"ReduceLarge(side={self.side})"


class EvalTransform:
    """Resize the shorter side, centre-crop, normalise: what the encoder was trained with, with the same
    bits as torchvision's `Compose([ToImage(), Resize(..., antialias=True), CenterCrop(...), ToDtype(...,
    scale=True), Normalize(...)])`. The image becomes a uint8 tensor first (resizing it is faster than
    resizing the PIL image), and torchvision's functional kernels are called in turn: the transforms'
    `Compose` flattened and re-wrapped the input at every step (0.55 ms per 128 px image, 0.47 ms without;
    docs/inference.md). Bounded work for any image: a large one is first shrunk by an
    integer factor (`ReduceLarge`: only where its shorter side is at least twice the resize side), one
    thinner than `MAX_ASPECT`:1 cut to that (`BoundAspect`), so no image costs much more than an ordinary
    one; the normalisation runs on one thread (`ToNormalized`)."""

    def __init__(self, pre: Preprocess) -> None:
        self.pre = pre
        self.reduce = ReduceLarge(pre.resize_size)
        self.bound = BoundAspect()
        self.interpolation = _interpolation(pre.interpolation)
        self.normalize = ToNormalized(pre.mean, pre.std)

    def __call__(self, image: Image.Image | torch.Tensor) -> torch.Tensor:
        image = self.reduce(image)
        pixels = F.pil_to_tensor(image) if isinstance(image, Image.Image) else image.as_subclass(torch.Tensor)
        pixels = self.bound(pixels)
        pixels = F.resize_image(pixels, [self.pre.resize_size], self.interpolation, antialias=True)
        return self.normalize(F.center_crop_image(pixels, [self.pre.input_size]))

    def __repr__(self) -> str:
        return f"EvalTransform({self.pre})"


def eval_transform(pre: Preprocess) -> Transform:
    """The evaluation transform of `pre` (`EvalTransform`)."""
    return EvalTransform(pre)


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
