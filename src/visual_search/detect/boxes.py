"""Box math on (N, 4) float tensors of pixel boxes `x0, y0, x1, y1` (x1, y1 exclusive, as in PIL crops)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.ops import box_area, clip_boxes_to_image

BoxLike = Tensor | Sequence[float] | Sequence[Sequence[float]]


def as_boxes(boxes: BoxLike) -> Tensor:
    """(N, 4) float32 from one box or a list of them; raise ValueError for any other shape."""
    tensor = torch.as_tensor(boxes, dtype=torch.float32)
    if tensor.ndim == 1:
        tensor = tensor[None]
    if tensor.ndim != 2 or tensor.shape[1] != 4:
        raise ValueError(f"boxes must be (x0, y0, x1, y1) or a list of them, got shape {tuple(tensor.shape)}")
    return tensor


def clamp(boxes: BoxLike, width: int, height: int) -> Tensor:
    """Boxes cut to the image; a box entirely outside it collapses to zero width or height."""
    return clip_boxes_to_image(as_boxes(boxes), (height, width))


def pad(boxes: BoxLike, ratio: float, width: int, height: int) -> Tensor:
    """Grow every side by `ratio` times the box's width (left, right) or height (top, bottom), then clamp."""
    if ratio < 0:
        raise ValueError(f"padding must be >= 0, got {ratio}")
    boxes = as_boxes(boxes)
    size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0) * ratio
    return clamp(torch.cat([boxes[:, :2] - size, boxes[:, 2:] + size], dim=1), width, height)


def area(boxes: BoxLike) -> Tensor:
    """Areas, 0 for degenerate boxes (x1 <= x0 or y1 <= y0)."""
    boxes = as_boxes(boxes)
    return torch.where(is_valid(boxes, min_size=0.0), box_area(boxes), torch.zeros(len(boxes)))


def is_valid(boxes: BoxLike, min_size: float = 1.0) -> Tensor:
    """(N,) bool: finite and at least `min_size` pixels wide and high (strictly positive when 0)."""
    boxes = as_boxes(boxes)
    sides = boxes[:, 2:] - boxes[:, :2]
    big_enough = (sides >= min_size).all(dim=1) if min_size > 0 else (sides > 0).all(dim=1)
    return torch.isfinite(boxes).all(dim=1) & big_enough


def to_pixels(boxes: BoxLike, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Integer crop boxes covering each box (floor the start, ceil the end), inside the image, >= 1 pixel."""
    boxes = clamp(boxes, width, height)
    out = []
    for x0, y0, x1, y1 in boxes.tolist():
        left, top = min(math.floor(x0), width - 1), min(math.floor(y0), height - 1)
        right, bottom = max(math.ceil(x1), left + 1), max(math.ceil(y1), top + 1)
        out.append((left, top, right, bottom))
    return out


def scale(boxes: BoxLike, sx: float, sy: float) -> Tensor:
    """Boxes of an image resized by (sx, sy)."""
    return as_boxes(boxes) * torch.tensor([sx, sy, sx, sy])
