"""Detector scenes: a textured background with several items placed on it, and their boxes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from .catalogue import PALETTE, Item
from .render import SUPERSAMPLE, item_look, layer_padding, render_layer


def _scene_background(size: int, rng: np.random.Generator) -> Image.Image:
    """Light, non-white, mildly textured background: tinted grey, soft gradient and blotches, pixel noise."""
    base = rng.uniform(200, 232) + rng.uniform(-12, 12, size=3)
    ramp = np.linspace(-1.0, 1.0, size)[:, None, None] * rng.uniform(-10, 10)
    blotches = np.asarray(
        Image.fromarray(rng.uniform(0, 255, (6, 6)).astype(np.uint8)).resize(
            (size, size), Image.Resampling.BICUBIC
        ),
        dtype=np.float32,
    )[..., None]
    noise = rng.normal(0.0, 6.0, (size, size, 3))
    pixels = base + ramp + (blotches / 255.0 - 0.5) * 16 + noise
    return Image.fromarray(np.clip(pixels, 150, 245).astype(np.uint8))


def _overlap_fraction(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection area over the smaller box's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller


def _place_boxes(
    sizes: Sequence[tuple[float, float]], canvas: int, rng: np.random.Generator
) -> list[list[float]]:
    """Top-left-anchored boxes inside the canvas, each overlapping the others by at most ~30% if possible."""
    boxes: list[list[float]] = []
    for w, h in sizes:
        best, best_overlap = None, math.inf
        for _ in range(40):
            x, y = rng.uniform(0, canvas - w), rng.uniform(0, canvas - h)
            box = [x, y, x + w, y + h]
            overlap = max((_overlap_fraction(box, other) for other in boxes), default=0.0)
            if overlap < best_overlap:
                best, best_overlap = box, overlap
            if overlap <= 0.3:
                break
        boxes.append(best)
    return boxes


def render_scene(
    items: Sequence[Item], size: int, rng: np.random.Generator
) -> tuple[Image.Image, list[dict]]:
    """Compose items on a background; the largest object is drawn last so it stays fully visible."""
    canvas_px = size * SUPERSAMPLE
    canvas = _scene_background(canvas_px, rng)
    looks = [item_look(item) for item in items]
    extents = [rng.uniform(0.5, 0.7) * canvas_px] + [rng.uniform(0.28, 0.45) * canvas_px for _ in items[1:]]
    sizes = [(look.size[0] * e, look.size[1] * e) for look, e in zip(looks, extents, strict=True)]
    placed = []
    for item, look, extent, box in zip(
        items, looks, extents, _place_boxes(sizes, canvas_px, rng), strict=True
    ):
        layer, mask = render_layer(look, PALETTE[item.colour], extent)
        pad = layer_padding(extent)
        origin = (round(box[0]) - pad, round(box[1]) - pad)
        x0, y0, x1, y1 = mask.getbbox() or (0, 0, 1, 1)
        full = (origin[0] + x0, origin[1] + y0, origin[0] + x1, origin[1] + y1)
        final = [
            min(max(math.floor(full[0] / SUPERSAMPLE), 0), size - 1),
            min(max(math.floor(full[1] / SUPERSAMPLE), 0), size - 1),
            min(max(math.ceil(full[2] / SUPERSAMPLE), 1), size),
            min(max(math.ceil(full[3] / SUPERSAMPLE), 1), size),
        ]
        placed.append((item, layer, mask, origin, final))
    placed.sort(key=lambda p: (p[4][2] - p[4][0]) * (p[4][3] - p[4][1]))
    for _, layer, mask, origin, _ in placed:
        canvas.paste(layer, origin, mask)
    records = [
        {"item_id": it.item_id, "category_id": it.template.category_id, "box": box} for it, *_, box in placed
    ]
    return canvas.resize((size, size), Image.Resampling.LANCZOS), records
