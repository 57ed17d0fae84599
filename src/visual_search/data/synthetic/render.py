"""Item appearance (pose, pattern, outline, colours) and rendering of item layers and product photos."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from .catalogue import PALETTE, RGB, Item
from .geometry import Part, Points

SUPERSAMPLE = 2
_WHITE: RGB = (255, 255, 255)


@dataclass(frozen=True)
class PatternStyle:
    """Geometry of a pattern fill, in object units (1 = the object's longest side)."""

    kind: str
    angle: float
    period: float
    duty: float
    phase: tuple[float, float]
    dot_radius: float


@dataclass(frozen=True)
class Look:
    """An item's resolved drawing: parts centred on the origin with longest side 1, plus its style."""

    parts: tuple[Part, ...]
    size: tuple[float, float]
    pattern: PatternStyle
    outline: bool


def _luminance(rgb: RGB) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def _mix(rgb: RGB, other: RGB, amount: float) -> RGB:
    r, g, b = (round(c + (o - c) * amount) for c, o in zip(rgb, other, strict=True))
    return (r, g, b)


def _secondary_colour(rgb: RGB) -> RGB:
    """Second pattern colour: a light tint of dark colours, a darker shade of light ones."""
    return _mix(rgb, _WHITE, 0.6) if _luminance(rgb) < 110 else _mix(rgb, (0, 0, 0), 0.35)


def _detail_colour(rgb: RGB) -> RGB:
    return _mix(rgb, _WHITE, 0.45) if _luminance(rgb) < 100 else _mix(rgb, (0, 0, 0), 0.45)


def _transform_parts(parts: list[Part], rng: np.random.Generator) -> list[Part]:
    """Random mirror, aspect jitter, a smooth low-frequency warp, rotation (±15°) and per-vertex jitter."""
    aspect = rng.uniform(0.87, 1.15)
    flip = -1.0 if rng.random() < 0.5 else 1.0
    angle = math.radians(rng.uniform(-15.0, 15.0))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    matrix = rotation @ np.diag([flip * aspect, 1.0 / aspect])
    frequency, phase = rng.uniform(1.0, 2.5, size=2), rng.uniform(0.0, 2 * math.pi, size=2)
    amplitude = rng.uniform(0.0, 0.04, size=2)

    def warp(points: Points) -> Points:
        shift = amplitude * np.sin(points[:, ::-1] * frequency + phase)
        return (points + shift) @ matrix.T + rng.normal(0.0, 0.004, points.shape)

    return [dataclasses.replace(p, points=warp(p.points)) for p in parts]


def _normalise_parts(parts: list[Part]) -> tuple[list[Part], tuple[float, float]]:
    """Centre the parts on the origin and scale their bounding box (strokes included) to longest side 1."""
    lows = [p.points.min(axis=0) - p.width / 2 for p in parts if p.kind in ("fill", "stroke")]
    highs = [p.points.max(axis=0) + p.width / 2 for p in parts if p.kind in ("fill", "stroke")]
    low, high = np.min(lows, axis=0), np.max(highs, axis=0)
    scale, centre = 1.0 / float(np.max(high - low)), (low + high) / 2
    scaled = [
        dataclasses.replace(p, points=(p.points - centre) * scale, width=p.width * scale) for p in parts
    ]
    width, height = (high - low) * scale
    return scaled, (float(width), float(height))


def _sample_pattern(kind: str, rng: np.random.Generator) -> PatternStyle:
    return PatternStyle(
        kind=kind,
        angle=rng.uniform(0.0, math.pi),
        period=rng.uniform(0.07, 0.15),
        duty=rng.uniform(0.35, 0.6),
        phase=(rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0)),
        dot_radius=rng.uniform(0.2, 0.32),
    )


def item_look(item: Item) -> Look:
    """Resolve the item's drawing; depends only on the item, so scenes re-render items identically."""
    rng = np.random.default_rng(item.seed)
    parts, size = _normalise_parts(_transform_parts(item.template.draw(rng), rng))
    pattern = _sample_pattern(item.pattern, rng)
    outline = rng.random() < 0.5 or _luminance(PALETTE[item.colour]) > 200
    return Look(tuple(parts), size, pattern, outline)


def _pattern_array(
    style: PatternStyle, height: int, width: int, extent: float, base: RGB, second: RGB
) -> np.ndarray:
    """RGB array of the pattern over a layer whose object has longest side `extent` pixels."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs = (xs - width / 2) / extent
    ys = (ys - height / 2) / extent
    cos, sin = math.cos(style.angle), math.sin(style.angle)
    u = (xs * cos + ys * sin) / style.period + style.phase[0]
    v = (-xs * sin + ys * cos) / style.period + style.phase[1]
    if style.kind == "striped":
        mask = (u % 1.0) < style.duty
    elif style.kind == "checked":
        mask = (np.floor(u) + np.floor(v)) % 2 == 1
    elif style.kind == "dotted":
        mask = ((u % 1.0) - 0.5) ** 2 + ((v % 1.0) - 0.5) ** 2 < style.dot_radius**2
    elif style.kind == "two-tone":
        mask = u * style.period < (style.phase[0] - 0.5) * 0.4
    else:
        mask = np.zeros((height, width), dtype=bool)
    return np.where(mask[..., None], np.array(second, np.uint8), np.array(base, np.uint8))


def _draw_part(
    draw: ImageDraw.ImageDraw,
    part: Part,
    to_px: Callable[[Points], list[tuple[float, float]]],
    extent: float,
    fill: int | RGB,
) -> None:
    xy = to_px(part.points)
    if part.kind in ("fill", "detail_fill"):
        draw.polygon(xy, fill=fill)
    else:
        draw.line(
            xy + xy[:1] if part.closed else xy,
            fill=fill,
            width=max(1, round(part.width * extent)),
            joint="curve",
        )


def render_layer(look: Look, colour: RGB, extent: float) -> tuple[Image.Image, Image.Image]:
    """Draw an item whose longest side is `extent` pixels; return an RGB layer and its silhouette mask.

    The object's bounding box starts at (pad, pad) in the layer, where pad = `layer_padding(extent)`.
    """
    pad = layer_padding(extent)
    width = math.ceil(look.size[0] * extent) + 2 * pad
    height = math.ceil(look.size[1] * extent) + 2 * pad
    offset = np.array([width / 2, height / 2])

    def to_px(points: Points) -> list[tuple[float, float]]:
        return [(float(x), float(y)) for x, y in points * extent + offset]

    mask = Image.new("L", (width, height), 0)
    mask_draw = ImageDraw.Draw(mask)
    for part in look.parts:
        if part.kind in ("fill", "stroke"):
            _draw_part(mask_draw, part, to_px, extent, 255)
    layer = Image.fromarray(
        _pattern_array(look.pattern, height, width, extent, colour, _secondary_colour(colour))
    )
    if look.outline:
        thickness = 2 * max(1, round(extent / 100)) + 1
        edge = ImageChops.subtract(mask, mask.filter(ImageFilter.MinFilter(thickness)))
        layer.paste(_mix(colour, (0, 0, 0), 0.5), mask=edge)
    layer_draw = ImageDraw.Draw(layer)
    for part in look.parts:
        if part.kind in ("detail", "detail_fill"):
            _draw_part(layer_draw, part, to_px, extent, _detail_colour(colour))
    return layer, mask


def layer_padding(extent: float) -> int:
    """Margin around the object in a layer, room for per-vertex jitter and rounded line ends."""
    return 2 + math.ceil(extent * 0.02)


def render_item_image(item: Item, size: int) -> Image.Image:
    """White square product photo, object 55-90% of the canvas, roughly centred with a random offset."""
    rng = np.random.default_rng([item.seed, 1])
    look = item_look(item)
    canvas_px = size * SUPERSAMPLE
    extent = rng.uniform(0.55, 0.9) * canvas_px
    layer, mask = render_layer(look, PALETTE[item.colour], extent)
    pad = layer_padding(extent)
    position = []
    for axis in (0, 1):
        free = canvas_px - look.size[axis] * extent
        position.append(round(free / 2 + rng.uniform(-0.35, 0.35) * free) - pad)
    canvas = Image.new("RGB", (canvas_px, canvas_px), _WHITE)
    canvas.paste(layer, (position[0], position[1]), mask)
    return canvas.resize((size, size), Image.Resampling.LANCZOS)
