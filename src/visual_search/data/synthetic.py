"""Deterministic synthetic fashion-product dataset in the on-disk layout of Polyvore Outfits.

Each item is a product silhouette (t-shirt, sneaker, handbag, ...) drawn with PIL primitives on a white
background. Category is carried by *shape* only: colour and pattern are assigned with the same balanced
distribution in every category, so a colour histogram cannot tell categories apart, while the pose, size,
proportions, pattern and outline vary within a category. The writer produces the same files as the real
``polyvore_outfits/`` folder (``images/``, ``polyvore_item_metadata.json``, ``categories.csv``,
``{nondisjoint,disjoint}/{train,valid,test}.json``) plus detector scenes (``scenes/``, ``scenes.json``).

The same :class:`SyntheticSpec` always produces byte-identical files.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from tqdm import tqdm

log = logging.getLogger(__name__)

RGB = tuple[int, int, int]
Points = np.ndarray  # float array of shape (N, 2): x to the right, y downwards

_FORMAT_VERSION = 1  # bump when the generator's output changes, so cached datasets are regenerated
_SUPERSAMPLE = 2
_ITEM_ID_BASE = 100_000_000
_NONDISJOINT_SET_ID_BASE = 200_000_000
_DISJOINT_SET_ID_BASE = 300_000_000
_SPLIT_FRACTIONS = {"train": 0.7, "valid": 0.1, "test": 0.2}
_EMPTY_TITLE_FRACTION = 0.05
_WHITE: RGB = (255, 255, 255)

PALETTE: dict[str, RGB] = {
    "red": (200, 30, 40),
    "blue": (40, 90, 200),
    "green": (40, 150, 70),
    "black": (25, 25, 28),
    "cream": (240, 230, 205),
    "yellow": (235, 200, 40),
    "pink": (240, 140, 175),
    "navy": (25, 35, 85),
    "grey": (135, 135, 140),
    "brown": (120, 75, 40),
}
PATTERNS: tuple[str, ...] = ("solid", "striped", "dotted", "checked", "two-tone")
MATERIALS: tuple[str, ...] = ("cotton", "leather", "denim", "wool", "silk", "linen", "suede", "velvet")


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and seed of a synthetic dataset; every field is validated on construction."""

    num_categories: int = 20
    items_per_category: int = 150
    image_size: int = 128
    num_outfits: int = 600
    num_scenes: int = 200
    scene_size: int = 256
    seed: int = 0
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        bounds = {
            "num_categories": (2, len(TEMPLATES)),
            "items_per_category": (1, 100_000),
            "image_size": (32, 2048),
            "num_outfits": (0, 1_000_000),
            "num_scenes": (0, 1_000_000),
            "scene_size": (64, 4096),
            "seed": (0, 2**63 - 1),
            "jpeg_quality": (1, 100),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"SyntheticSpec.{name} must be an integer in [{low}, {high}], got {value!r}")


# --------------------------------------------------------------------------------------------------
# Shape primitives
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One drawing primitive of a product, in object units.

    kind: ``fill`` (polygon in the product's pattern), ``stroke`` (thick line in the product's pattern),
    ``detail`` (thin line in the detail colour) or ``detail_fill`` (polygon in the detail colour).
    Details are clipped to the product's silhouette.
    """

    kind: Literal["fill", "stroke", "detail", "detail_fill"]
    points: Points
    width: float = 0.0
    closed: bool = False


def _fill(points: Points) -> Part:
    return Part("fill", np.asarray(points, dtype=float))


def _stroke(points: Points, width: float, closed: bool = False) -> Part:
    return Part("stroke", np.asarray(points, dtype=float), width, closed)


def _detail(points: Points, width: float = 0.03, closed: bool = False) -> Part:
    return Part("detail", np.asarray(points, dtype=float), width, closed)


def _detail_fill(points: Points) -> Part:
    return Part("detail_fill", np.asarray(points, dtype=float))


def _pts(*xy: tuple[float, float] | Sequence[float]) -> Points:
    return np.asarray(xy, dtype=float)


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> Points:
    """Points on an ellipse from angle a0 to a1 (degrees; 90 points down because y grows downwards)."""
    t = np.radians(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 36) -> Points:
    return _arc(cx, cy, rx, ry, 0.0, 360.0 * (n - 1) / n, n)


def _bezier(p0: Sequence[float], p1: Sequence[float], p2: Sequence[float], n: int = 12) -> Points:
    """Quadratic Bezier curve from p0 to p2 with control point p1."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    a, b, c = (np.asarray(p, dtype=float) for p in (p0, p1, p2))
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * b + t**2 * c


def _mirror(right_half: Points) -> Points:
    """Close a left-right symmetric outline given its right half traced from top centre to bottom centre."""
    left_half = right_half[::-1] * np.array([-1.0, 1.0])
    return np.concatenate([right_half, left_half])


def _ribbon(centre: Points, half_width: float | np.ndarray) -> Points:
    """Polygon of a band of the given half width around a centre line."""
    tangent = np.gradient(centre, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) * np.reshape(half_width, (-1, 1))
    return np.concatenate([centre + normal, (centre - normal)[::-1]])


def _chain(*pieces: Points) -> Points:
    return np.concatenate([np.atleast_2d(np.asarray(p, dtype=float)) for p in pieces])


# --------------------------------------------------------------------------------------------------
# Category templates: tops
# --------------------------------------------------------------------------------------------------


def _sleeve(shoulder: Points, angle_deg: float, length: float, cuff: float) -> Points:
    """Outer and inner cuff corners of a sleeve leaving `shoulder` at `angle_deg` below horizontal."""
    a = math.radians(angle_deg)
    direction = np.array([math.cos(a), math.sin(a)])
    inward = np.array([-math.sin(a), math.cos(a)])
    outer = shoulder + length * direction
    return np.stack([outer, outer + cuff * inward])


def _t_shirt(rng: np.random.Generator) -> list[Part]:
    w, neck_w, neck_d = rng.uniform(0.5, 0.62), rng.uniform(0.18, 0.26), rng.uniform(0.1, 0.22)
    hem = rng.uniform(0.85, 1.0)
    shoulder = np.array([w, -0.8])
    cuffs = _sleeve(shoulder, rng.uniform(25, 45), rng.uniform(0.35, 0.5), rng.uniform(0.26, 0.34))
    right = _chain(
        _arc(0, -0.88, neck_w, neck_d, 90, 0, 8), shoulder, cuffs, (w, -0.42), (w + 0.03, hem), (0, hem)
    )
    return [
        _fill(_mirror(right)),
        _detail(_arc(0, -0.88, neck_w * 1.12, neck_d + 0.06, 180, 0, 16), 0.035),
        _detail(_pts((-w, hem - 0.08), (w, hem - 0.08)), 0.025),
    ]


def _long_sleeve_shirt(rng: np.random.Generator) -> list[Part]:
    w, neck_w, hem = rng.uniform(0.46, 0.56), rng.uniform(0.16, 0.22), rng.uniform(0.85, 1.0)
    shoulder, angle = np.array([w, -0.8]), rng.uniform(62, 76)
    cuffs = _sleeve(shoulder, angle, rng.uniform(1.25, 1.45), 0.24)
    right = _chain(
        _arc(0, -0.88, neck_w, 0.1, 90, 0, 6), shoulder, cuffs, (w, -0.35), (w + 0.02, hem), (0, hem)
    )
    collar = [
        _detail(_pts((0, -0.72), (s * neck_w * 1.1, -0.9), (s * neck_w * 1.2, -0.6), (0, -0.72)), 0.03)
        for s in (-1, 1)
    ]
    buttons = [_detail_fill(_ellipse(0, y, 0.035, 0.035, 10)) for y in np.linspace(-0.5, hem - 0.2, 5)]
    seam = cuffs - 0.1 * np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    cuff_lines = [_detail(seam * np.array([s, 1.0]), 0.025) for s in (-1, 1)]
    return [_fill(_mirror(right)), *collar, _detail(_pts((0, -0.72), (0, hem)), 0.02), *buttons, *cuff_lines]


def _tank_top(rng: np.random.Generator) -> list[Part]:
    w, neck_w, strap = rng.uniform(0.4, 0.5), rng.uniform(0.15, 0.22), rng.uniform(0.07, 0.12)
    neck_d, arm_d, hem = rng.uniform(0.3, 0.45), rng.uniform(0.45, 0.6), rng.uniform(0.85, 1.0)
    top = -0.95
    strap_x = neck_w + strap
    right = _chain(
        _arc(0, top, neck_w, neck_d, 90, 0, 10),
        _bezier((strap_x, top), (strap_x, top + arm_d), (w, top + arm_d), 10),
        (w + 0.04, hem),
        (0, hem),
    )
    return [_fill(_mirror(right)), _detail(_arc(0, top, neck_w + 0.04, neck_d + 0.04, 180, 0, 16), 0.03)]


# --------------------------------------------------------------------------------------------------
# Bottoms and all-body
# --------------------------------------------------------------------------------------------------


def _trousers(rng: np.random.Generator) -> list[Part]:
    waist, crotch = rng.uniform(0.36, 0.45), rng.uniform(-0.35, -0.2)
    flare, gap, leg = rng.uniform(-0.06, 0.12), rng.uniform(0.03, 0.1), rng.uniform(0.3, 0.38)
    right = _pts((0, -1), (waist, -1), (waist + 0.04, crotch), (gap + leg + flare, 1), (gap, 1), (0, crotch))
    pockets = [
        _detail(_bezier((s * waist * 0.45, -0.88), (s * waist * 0.5, -0.65), (s * waist, -0.6)), 0.025)
        for s in (-1, 1)
    ]
    return [
        _fill(_mirror(right)),
        _detail(_pts((-waist, -0.86), (waist, -0.86)), 0.03),
        _detail(_pts((0, -0.86), (0.02, crotch - 0.1)), 0.025),
        *pockets,
    ]


def _shorts(rng: np.random.Generator) -> list[Part]:
    waist, length, crotch = rng.uniform(0.5, 0.6), rng.uniform(0.0, 0.3), rng.uniform(-0.45, -0.3)
    flare, gap = rng.uniform(0.08, 0.2), rng.uniform(0.02, 0.06)
    outer, inner = (waist + flare, length), (gap + 0.05, length + 0.05)
    right = _pts((0, -1), (waist, -1), outer, inner, (0, crotch))
    cuffs = [
        _detail(_pts((s * (inner[0] + 0.01), inner[1] - 0.1), (s * (outer[0] - 0.02), outer[1] - 0.12)), 0.03)
        for s in (-1, 1)
    ]
    return [_fill(_mirror(right)), _detail(_pts((-waist, -0.86), (waist, -0.86)), 0.03), *cuffs]


def _skirt(rng: np.random.Generator) -> list[Part]:
    waist, hem_w, length = rng.uniform(0.35, 0.45), rng.uniform(0.75, 0.95), rng.uniform(0.3, 0.9)
    band = -0.86
    right = _chain(
        (0, -1),
        (waist, -1),
        (waist, band),
        _bezier((hem_w, length), (hem_w * 0.5, length + 0.1), (0, length + 0.1), 6),
    )
    pleats = [
        _detail(_pts((t * waist, band), (t * hem_w, length + 0.06)), 0.022)
        for t in np.linspace(-0.7, 0.7, int(rng.integers(3, 7)))
    ]
    return [_fill(_mirror(right)), _detail(_pts((-waist, band), (waist, band)), 0.03), *pleats]


def _dress(rng: np.random.Generator) -> list[Part]:
    strap, neck_d, bodice = rng.uniform(0.1, 0.18), rng.uniform(0.2, 0.4), rng.uniform(0.28, 0.36)
    waist, waist_y = rng.uniform(0.2, 0.26), rng.uniform(-0.25, -0.05)
    hem_w, arm_y = rng.uniform(0.55, 0.9), rng.uniform(-0.6, -0.45)
    strap_out = (strap + 0.07, -1.0)
    shoulder = (
        _pts(strap_out, (bodice + 0.16, -0.84), (bodice + 0.1, -0.68))
        if rng.random() < 0.4
        else _bezier(strap_out, (strap + 0.07, arm_y), (bodice, arm_y), 8)
    )
    right = _chain(
        _arc(0, -1.0, strap, neck_d, 90, 0, 8),
        shoulder,
        (bodice, arm_y),
        (waist, waist_y),
        _bezier((hem_w, 1.0), (hem_w * 0.5, 1.06), (0, 1.06), 6),
    )
    return [_fill(_mirror(right)), _detail(_pts((-waist, waist_y), (waist, waist_y)), 0.04)]


# --------------------------------------------------------------------------------------------------
# Shoes (side view, toe to the right)
# --------------------------------------------------------------------------------------------------


def _sneaker(rng: np.random.Generator) -> list[Part]:
    sole_t, h, y0 = rng.uniform(0.12, 0.2), rng.uniform(0.6, 0.8), 0.2
    sole = _pts(
        (-0.98, y0),
        (0.92, y0),
        (1.02, y0 + sole_t * 0.4),
        (0.95, y0 + sole_t),
        (-0.95, y0 + sole_t),
        (-1.02, y0 + sole_t * 0.5),
    )
    tongue, lace_end = np.array([-0.3, y0 - h * 1.05]), np.array([0.35, y0 - h * 0.55])
    upper = _chain(
        (-0.95, y0 + 0.02),
        _bezier((-1.02, y0), (-1.02, y0 - h), (-0.88, y0 - h), 6),
        (-0.6, y0 - h * 0.78),
        tongue,
        (tongue[0] + 0.1, y0 - h * 0.98),
        lace_end,
        _arc(0.55, y0 + 0.02, 0.45, h * 0.57 + 0.02, 250, 360, 10),
    )
    along = (lace_end - tongue) / np.linalg.norm(lace_end - tongue)
    across = np.array([-along[1], along[0]]) * 0.09
    laces = [
        _detail(np.stack([p - across, p + across + along * 0.05]), 0.03)
        for p in tongue + np.outer(np.linspace(0.25, 0.85, 4), lace_end - tongue)
    ]
    swoosh = _detail(_bezier((-0.75, y0 - 0.1), (-0.1, y0 - 0.02), (0.3, y0 - h * 0.45)), 0.045)
    welt = _detail(_pts((-0.98, y0), (0.92, y0)), 0.035)
    return [_fill(upper), _fill(sole), welt, *laces, swoosh]


def _boot(rng: np.random.Generator) -> list[Part]:
    top, shaft = rng.uniform(-1.0, -0.5), rng.uniform(0.5, 0.65)
    back, front = -0.8, -0.8 + shaft
    outline = _chain(
        (back, top),
        (front, top),
        (front + 0.02, 0.25),
        _bezier((front + 0.02, 0.25), (0.2, 0.3), (0.8, 0.45), 8),
        (0.95, 0.62),
        (0.92, 0.8),
        (-0.25, 0.8),
        (-0.3, 1.0),
        (back, 1.0),
        (back - 0.02, 0.5),
    )
    return [
        _fill(outline),
        _detail(_pts((back, 0.8), (0.92, 0.8)), 0.04),
        _detail(_pts((back, top + 0.08), (front, top + 0.08)), 0.03),
        _detail(_pts((front - 0.08, top + 0.12), (front - 0.06, 0.3)), 0.025),
    ]


def _high_heel(rng: np.random.Generator) -> list[Part]:
    heel_h, ground = rng.uniform(0.7, 0.95), 0.62
    cup = ground - heel_h
    back_top = (-0.9, cup - rng.uniform(0.22, 0.32))
    body = _chain(
        back_top,
        (-0.93, cup),
        _bezier((-0.88, cup + 0.04), (-0.05, cup + 0.12), (0.35, ground - 0.04), 10),
        (0.8, ground - 0.02),
        (1.0, ground - 0.1),
        (0.92, ground - 0.2),
        (0.6, ground - 0.3),
        (0.2, ground - 0.36),
        _bezier((0.2, ground - 0.36), (-0.35, cup - 0.05), back_top, 10),
    )
    stiletto = _pts((-0.92, cup - 0.02), (-0.72, cup + 0.06), (-0.76, ground + 0.03), (-0.81, ground + 0.03))
    parts = [_fill(body), _fill(stiletto)]
    if rng.random() < 0.4:
        parts.append(_stroke(_arc(-0.6, cup - 0.2, 0.3, 0.12, 150, 390, 16), 0.05))
    return parts


# --------------------------------------------------------------------------------------------------
# Bags
# --------------------------------------------------------------------------------------------------


def _handbag(rng: np.random.Generator) -> list[Part]:
    top_w, bottom_w, top_y = rng.uniform(0.5, 0.65), rng.uniform(0.75, 0.95), rng.uniform(-0.25, -0.05)
    span, handle_h = rng.uniform(0.25, 0.4), rng.uniform(0.6, 0.85)
    body = _pts(
        (-top_w, top_y),
        (top_w, top_y),
        (bottom_w, 0.85),
        (bottom_w - 0.08, 0.95),
        (-bottom_w + 0.08, 0.95),
        (-bottom_w, 0.85),
    )
    flap_y = top_y + rng.uniform(0.25, 0.4)
    return [
        _fill(body),
        _stroke(_arc(0, top_y, span, handle_h, 180, 360, 20), rng.uniform(0.07, 0.1)),
        _detail(_pts((-top_w, top_y), (0, flap_y), (top_w, top_y)), 0.03),
        _detail_fill(_ellipse(0, flap_y, 0.06, 0.06, 12)),
    ]


def _backpack(rng: np.random.Generator) -> list[Part]:
    w, dome = rng.uniform(0.5, 0.62), rng.uniform(0.25, 0.4)
    top = -0.75
    body = _chain(
        _arc(0, top + dome, w, dome, 180, 360, 16),
        _arc(w - 0.1, 0.9, 0.1, 0.1, 0, 90, 5),
        _arc(-w + 0.1, 0.9, 0.1, 0.1, 90, 180, 5),
    )
    pocket_w, pocket_top = w * rng.uniform(0.65, 0.8), rng.uniform(0.15, 0.35)
    pocket = _chain(
        _arc(0, pocket_top + 0.12, pocket_w, 0.12, 180, 360, 10), (pocket_w, 0.85), (-pocket_w, 0.85)
    )
    return [
        _fill(body),
        _stroke(_arc(0, top, 0.15, 0.2, 180, 360, 10), 0.05),
        _detail(pocket, 0.03, closed=True),
        _detail(_arc(0, top + dome + 0.12, w * 0.8, dome * 0.8, 200, 340, 12), 0.025),
    ]


def _clutch(rng: np.random.Generator) -> list[Part]:
    h, flap_y, r = rng.uniform(0.3, 0.45), rng.uniform(0.0, 0.2), 0.08
    body = _chain(
        _arc(1 - r, -h + r, r, r, 270, 360, 4),
        _arc(1 - r, h - r, r, r, 0, 90, 4),
        _arc(-1 + r, h - r, r, r, 90, 180, 4),
        _arc(-1 + r, -h + r, r, r, 180, 270, 4),
    )
    return [
        _fill(body),
        _detail(_pts((-1, -h), (0, flap_y), (1, -h)), 0.03),
        _detail_fill(_ellipse(0, flap_y, 0.07, 0.07, 12)),
    ]


# --------------------------------------------------------------------------------------------------
# Hats, accessories, jewellery
# --------------------------------------------------------------------------------------------------


def _brimmed_hat(rng: np.random.Generator) -> list[Part]:
    brim_ry, crown_w, crown_top = rng.uniform(0.2, 0.32), rng.uniform(0.42, 0.55), rng.uniform(-0.45, -0.2)
    base = 0.45
    crown = _chain(
        (-crown_w, base), _arc(0, crown_top + 0.15, crown_w * 0.9, 0.15, 180, 360, 12), (crown_w, base)
    )
    band_y = base - rng.uniform(0.1, 0.2)
    return [
        _fill(_ellipse(0, base, 1.0, brim_ry, 40)),
        _fill(crown),
        _detail(_pts((-crown_w, band_y), (crown_w, band_y)), 0.06),
        _detail(_arc(0, base, crown_w, 0.08, 0, 180, 12), 0.025),
    ]


def _cap(rng: np.random.Generator) -> list[Part]:
    dome_h, visor = rng.uniform(0.75, 0.95), rng.uniform(0.85, 1.05)
    dome = _arc(-0.2, 0.35, 0.75, dome_h, 180, 360, 20)
    peak = (-0.2, 0.35 - dome_h)
    visor_pts = _pts(
        (0.4, 0.22), (visor * 0.8, 0.28), (visor, 0.4), (visor - 0.05, 0.48), (0.5, 0.45), (0.4, 0.42)
    )
    seams = [
        _detail(_bezier(peak, (peak[0] + dx, 0.0), (peak[0] + dx * 1.4, 0.35)), 0.025) for dx in (-0.35, 0.35)
    ]
    return [_fill(dome), _fill(visor_pts), _fill(_ellipse(peak[0], peak[1] - 0.04, 0.08, 0.06, 10)), *seams]


def _lens(style: int, cx: float, side: int, scale: float) -> Points:
    """Lens outline of one style (round, wayfarer, aviator), mirrored for the left side."""
    if style == 0:
        pts = _ellipse(0, 0, 0.36, 0.3)
    elif style == 1:
        pts = _pts((-0.38, -0.26), (0.4, -0.3), (0.36, 0.1), (0.25, 0.24), (-0.25, 0.26), (-0.36, 0.12))
    else:
        t = np.radians(np.linspace(0, 360, 36, endpoint=False))
        pts = np.stack(
            [0.38 * np.cos(t), 0.26 * np.sin(t) + 0.1 * np.clip(np.sin(t), 0, None) * np.cos(t)], 1
        )
    return pts * scale * np.array([side, 1.0]) + np.array([cx, 0.05])


def _sunglasses(rng: np.random.Generator) -> list[Part]:
    style, gap = int(rng.integers(0, 3)), rng.uniform(0.45, 0.55)
    parts: list[Part] = []
    for side in (-1, 1):
        parts.append(_fill(_lens(style, side * gap, side, 1.15)))
        parts.append(_stroke(_pts((side * (gap + 0.4), -0.15), (side * (gap + 0.52), -0.2)), 0.05))
    parts.append(_stroke(_bezier((-gap + 0.36, -0.08), (0, -0.25), (gap - 0.36, -0.08)), 0.05))
    for side in (-1, 1):  # inner rim of the frame and a glint on the lens
        parts.append(_detail(_lens(style, side * gap, side, 0.97), 0.035, closed=True))
        glint = _pts((side * gap - 0.15, -0.05), (side * gap - 0.05, -0.17))
        parts.append(_detail(glint, 0.03))
    return parts


def _scarf(rng: np.random.Generator) -> list[Part]:
    """A scarf hanging as if around a neck: a loop on top, two wavy tails of different lengths, fringes."""
    band, amp, phase = rng.uniform(0.18, 0.26), rng.uniform(0.02, 0.08), rng.uniform(0, 2 * math.pi)
    loop_w, loop_y = rng.uniform(0.3, 0.42), -0.55
    ends = (rng.uniform(0.75, 1.0), rng.uniform(0.4, 0.7))
    left_y, right_y = np.linspace(ends[0], loop_y, 12), np.linspace(loop_y, ends[1], 10)
    centre = _chain(
        np.stack([-loop_w + amp * np.sin(5 * left_y + phase), left_y], axis=1)[:-1],
        _arc(0, loop_y, loop_w, 0.4, 180, 360, 16),
        np.stack([loop_w + amp * np.sin(5 * right_y + phase + 1), right_y], axis=1)[1:],
    )
    fringes = [
        _stroke(_pts((x, end_point[1]), (x + 0.01, end_point[1] + 0.12)), 0.025)
        for end_point in (centre[0], centre[-1])
        for x in np.linspace(end_point[0] - band * 0.4, end_point[0] + band * 0.4, 5)
    ]
    return [_fill(_ribbon(centre, band / 2)), *fringes]


def _belt(rng: np.random.Generator) -> list[Part]:
    bend, half_w = rng.uniform(-0.15, 0.15), rng.uniform(0.08, 0.12)
    x = np.linspace(-1.0, 0.62, 24)
    centre = np.stack([x, bend * x**2], axis=1)
    taper = half_w * np.clip((x + 1.0) / 0.12 + 0.2, 0.2, 1.0)
    buckle_y = bend * 0.62**2
    buckle = _pts(
        (0.6, buckle_y - half_w - 0.1),
        (0.95, buckle_y - half_w - 0.1),
        (0.95, buckle_y + half_w + 0.1),
        (0.6, buckle_y + half_w + 0.1),
    )
    holes = [_detail_fill(_ellipse(hx, bend * hx**2, 0.025, 0.025, 8)) for hx in np.linspace(-0.75, -0.3, 4)]
    return [
        _fill(_ribbon(centre, taper)),
        _stroke(buckle, 0.05, closed=True),
        _stroke(_pts((0.6, buckle_y), (0.9, buckle_y)), 0.03),
        *holes,
    ]


def _pendant(style: int, cx: float, top: float, r: float) -> Points:
    """Pendant hanging below (cx, top): round, teardrop or diamond."""
    if style == 0:
        return _ellipse(cx, top + r, r, r, 20)
    if style == 1:
        return _chain((cx, top), _arc(cx, top + 1.4 * r, r, r, -20, 200, 16))
    return _pts((cx, top), (cx + r, top + r), (cx, top + 2.2 * r), (cx - r, top + r))


def _necklace(rng: np.random.Generator) -> list[Part]:
    rx, ry, r = rng.uniform(0.6, 0.8), rng.uniform(0.9, 1.2), rng.uniform(0.12, 0.2)
    chain = _arc(0, -0.6, rx, ry, 180, 0, 40)
    parts = [_stroke(chain, 0.04)]
    if rng.random() < 0.4:
        parts += [_fill(_ellipse(bx, by, 0.05, 0.05, 10)) for bx, by in chain[2:-2:3]]
    pendant = _pendant(int(rng.integers(0, 3)), 0.0, -0.6 + ry - 0.02, r)
    return [
        *parts,
        _fill(pendant),
        _detail_fill(pendant.mean(axis=0) + (pendant - pendant.mean(axis=0)) * 0.4),
    ]


def _earrings(rng: np.random.Generator) -> list[Part]:
    x, drop_y, r, style = (
        rng.uniform(0.35, 0.5),
        rng.uniform(0.05, 0.35),
        rng.uniform(0.15, 0.25),
        rng.integers(0, 3),
    )
    parts: list[Part] = []
    for cx in (-x, x):
        parts += [
            _fill(_ellipse(cx, -0.8, 0.08, 0.08, 12)),
            _stroke(_pts((cx, -0.8), (cx, drop_y - r)), 0.035),
        ]
        if style == 2:
            parts.append(_stroke(_ellipse(cx, drop_y, r, r * 1.1, 24), 0.06, closed=True))
        else:
            parts.append(_fill(_pendant(int(style), cx, drop_y - r, r)))
    return parts


# --------------------------------------------------------------------------------------------------
# Category table
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryTemplate:
    """A fine category: Polyvore-style id, name, semantic category and the function drawing its shape."""

    category_id: str
    name: str
    semantic: str
    draw: Callable[[np.random.Generator], list[Part]]


# Ordered so that the first few categories already span different semantic categories.
TEMPLATES: tuple[CategoryTemplate, ...] = (
    CategoryTemplate("11", "t-shirt", "tops", _t_shirt),
    CategoryTemplate("27", "trousers", "bottoms", _trousers),
    CategoryTemplate("41", "sneaker", "shoes", _sneaker),
    CategoryTemplate("35", "handbag", "bags", _handbag),
    CategoryTemplate("3", "dress", "all-body", _dress),
    CategoryTemplate("54", "brimmed hat", "hats", _brimmed_hat),
    CategoryTemplate("61", "sunglasses", "sunglasses", _sunglasses),
    CategoryTemplate("71", "necklace", "jewellery", _necklace),
    CategoryTemplate("65", "scarf", "scarves", _scarf),
    CategoryTemplate("51", "belt", "accessories", _belt),
    CategoryTemplate("15", "long-sleeve shirt", "tops", _long_sleeve_shirt),
    CategoryTemplate("29", "shorts", "bottoms", _shorts),
    CategoryTemplate("43", "boot", "shoes", _boot),
    CategoryTemplate("38", "backpack", "bags", _backpack),
    CategoryTemplate("57", "cap", "hats", _cap),
    CategoryTemplate("74", "earrings", "jewellery", _earrings),
    CategoryTemplate("17", "tank top", "tops", _tank_top),
    CategoryTemplate("31", "skirt", "bottoms", _skirt),
    CategoryTemplate("47", "high heel", "shoes", _high_heel),
    CategoryTemplate("39", "clutch", "bags", _clutch),
)


# --------------------------------------------------------------------------------------------------
# Items and their appearance
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One catalogue product and the attributes it is rendered from."""

    item_id: str
    template: CategoryTemplate
    colour: str
    pattern: str
    material: str
    seed: int  # drives shape proportions, pose, pattern geometry and outline


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


def _item_look(item: Item) -> Look:
    """Resolve the item's drawing; depends only on the item, so scenes re-render items identically."""
    rng = np.random.default_rng(item.seed)
    parts, size = _normalise_parts(_transform_parts(item.template.draw(rng), rng))
    pattern = _sample_pattern(item.pattern, rng)
    outline = rng.random() < 0.5 or _luminance(PALETTE[item.colour]) > 200
    return Look(tuple(parts), size, pattern, outline)


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


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


def _render_layer(look: Look, colour: RGB, extent: float) -> tuple[Image.Image, Image.Image]:
    """Draw an item whose longest side is `extent` pixels; return an RGB layer and its silhouette mask.

    The object's bounding box starts at (pad, pad) in the layer, where pad = `_layer_padding(extent)`.
    """
    pad = _layer_padding(extent)
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


def _layer_padding(extent: float) -> int:
    """Margin around the object in a layer, room for per-vertex jitter and rounded line ends."""
    return 2 + math.ceil(extent * 0.02)


def _render_item_image(item: Item, size: int) -> Image.Image:
    """White square product photo, object 55-90% of the canvas, roughly centred with a random offset."""
    rng = np.random.default_rng([item.seed, 1])
    look = _item_look(item)
    canvas_px = size * _SUPERSAMPLE
    extent = rng.uniform(0.55, 0.9) * canvas_px
    layer, mask = _render_layer(look, PALETTE[item.colour], extent)
    pad = _layer_padding(extent)
    position = []
    for axis in (0, 1):
        free = canvas_px - look.size[axis] * extent
        position.append(round(free / 2 + rng.uniform(-0.35, 0.35) * free) - pad)
    canvas = Image.new("RGB", (canvas_px, canvas_px), _WHITE)
    canvas.paste(layer, (position[0], position[1]), mask)
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


# --------------------------------------------------------------------------------------------------
# Items and metadata
# --------------------------------------------------------------------------------------------------


def _balanced_choice(options: Sequence[str], count: int, rng: np.random.Generator) -> list[str]:
    """`count` options in random order, each used equally often (up to one), so none is favoured."""
    repeated = np.tile(np.arange(len(options)), -(-count // len(options)))
    chosen = rng.permutation(repeated)[:count]
    return [options[i] for i in chosen]


def _make_items(spec: SyntheticSpec, rng: np.random.Generator) -> list[Item]:
    """All items, category by category; colour, pattern and material are balanced within every category."""
    templates = TEMPLATES[: spec.num_categories]
    n = spec.items_per_category
    ids = rng.permutation(len(templates) * n) + _ITEM_ID_BASE
    seeds = rng.integers(0, 2**63 - 1, size=len(templates) * n)
    items = []
    for c, template in enumerate(templates):
        colours = _balanced_choice(list(PALETTE), n, rng)
        patterns = _balanced_choice(PATTERNS, n, rng)
        materials = _balanced_choice(MATERIALS, n, rng)
        for i in range(n):
            k = c * n + i
            items.append(Item(str(ids[k]), template, colours[i], patterns[i], materials[i], int(seeds[k])))
    return items


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _title(item: Item) -> str:
    words = [item.colour, "" if item.pattern == "solid" else item.pattern, item.material, item.template.name]
    return " ".join(w for w in words if w)


def _metadata(items: Sequence[Item], rng: np.random.Generator) -> dict[str, dict[str, Any]]:
    """Polyvore-style item metadata; about 5% (at least one) of the titles are empty, as in the real data."""
    num_empty = max(1, round(_EMPTY_TITLE_FRACTION * len(items)))
    empty = set(rng.choice(len(items), size=num_empty, replace=False).tolist())
    metadata = {}
    for k, item in enumerate(items):
        t = item.template
        title = _title(item)
        metadata[item.item_id] = {
            "url_name": _slug(title),
            "description": f"A {item.pattern} {item.material} {t.name} in {item.colour}.",
            "catgeories": ["fashion", t.semantic, t.name],
            "title": "" if k in empty else title,
            "related": [
                f"{item.colour} {t.name}",
                f"{item.material} {t.semantic}",
                f"{item.pattern} {t.semantic}",
            ],
            "category_id": t.category_id,
            "semantic_category": t.semantic,
        }
    return metadata


# --------------------------------------------------------------------------------------------------
# Outfits and splits
# --------------------------------------------------------------------------------------------------


def _build_outfits(items: Sequence[Item], min_count: int, rng: np.random.Generator) -> list[list[Item]]:
    """Outfits of 3-5 items of distinct semantic categories covering every item at least once.

    Semantic categories with more not-yet-used items are picked more often; generation stops once every
    item is used and at least `min_count` outfits exist. With fewer than 3 semantic categories available,
    outfits hold one item of each.
    """
    by_semantic: dict[str, list[Item]] = {}
    for item in items:
        by_semantic.setdefault(item.template.semantic, []).append(item)
    semantics = list(by_semantic)
    if len(semantics) < 2:
        return []
    unused = {s: [group[i] for i in rng.permutation(len(group))] for s, group in by_semantic.items()}
    outfits: list[list[Item]] = []
    while any(unused.values()) or len(outfits) < min_count:
        size = min(int(rng.integers(3, 6)), len(semantics))
        weights = np.array([len(unused[s]) + 1.0 for s in semantics])
        chosen = rng.choice(len(semantics), size=size, replace=False, p=weights / weights.sum())
        outfit = []
        for s in (semantics[i] for i in chosen):
            group = by_semantic[s]
            outfit.append(unused[s].pop() if unused[s] else group[int(rng.integers(len(group)))])
        outfits.append(outfit)
    return outfits


def _split_counts(total: int) -> dict[str, int]:
    """Sizes of train/valid/test for `total` elements (70/10/20; valid and test non-empty when total >= 3)."""
    test = round(total * _SPLIT_FRACTIONS["test"])
    valid = round(total * _SPLIT_FRACTIONS["valid"])
    if total >= 3:
        test, valid = max(test, 1), max(valid, 1)
    return {"train": total - valid - test, "valid": valid, "test": test}


def _split_sequence(elements: Sequence[Any], rng: np.random.Generator) -> dict[str, list[Any]]:
    order = [elements[i] for i in rng.permutation(len(elements))]
    counts = _split_counts(len(elements))
    train_end, valid_end = counts["train"], counts["train"] + counts["valid"]
    return {"train": order[:train_end], "valid": order[train_end:valid_end], "test": order[valid_end:]}


def _outfit_records(outfits: Sequence[Sequence[Item]], first_set_id: int) -> list[dict[str, Any]]:
    return [
        {
            "set_id": str(first_set_id + k),
            "items": [{"item_id": it.item_id, "index": i + 1} for i, it in enumerate(o)],
        }
        for k, o in enumerate(outfits)
    ]


def _nondisjoint_splits(
    items: Sequence[Item], spec: SyntheticSpec, rng: np.random.Generator
) -> dict[str, list]:
    """One pool of outfits over all items, split 70/10/20 by outfit (items may recur across splits)."""
    outfits = _build_outfits(items, spec.num_outfits, rng)
    records = _outfit_records(outfits, _NONDISJOINT_SET_ID_BASE)
    return _split_sequence(records, rng)


def _disjoint_splits(items: Sequence[Item], spec: SyntheticSpec, rng: np.random.Generator) -> dict[str, list]:
    """Items split 70/10/20 within every category, then outfits built inside each split's items only."""
    pools: dict[str, list[Item]] = {name: [] for name in _SPLIT_FRACTIONS}
    for template in TEMPLATES[: spec.num_categories]:
        for name, part in _split_sequence([it for it in items if it.template is template], rng).items():
            pools[name].extend(part)
    splits, next_id = {}, _DISJOINT_SET_ID_BASE
    for name, fraction in _SPLIT_FRACTIONS.items():
        outfits = _build_outfits(pools[name], round(fraction * spec.num_outfits), rng)
        splits[name] = _outfit_records(outfits, next_id)
        next_id += len(outfits)
    return splits


# --------------------------------------------------------------------------------------------------
# Scenes
# --------------------------------------------------------------------------------------------------


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


def _render_scene(
    items: Sequence[Item], size: int, rng: np.random.Generator
) -> tuple[Image.Image, list[dict]]:
    """Compose items on a background; the largest object is drawn last so it stays fully visible."""
    canvas_px = size * _SUPERSAMPLE
    canvas = _scene_background(canvas_px, rng)
    looks = [_item_look(item) for item in items]
    extents = [rng.uniform(0.5, 0.7) * canvas_px] + [rng.uniform(0.28, 0.45) * canvas_px for _ in items[1:]]
    sizes = [(look.size[0] * e, look.size[1] * e) for look, e in zip(looks, extents, strict=True)]
    placed = []
    for item, look, extent, box in zip(
        items, looks, extents, _place_boxes(sizes, canvas_px, rng), strict=True
    ):
        layer, mask = _render_layer(look, PALETTE[item.colour], extent)
        pad = _layer_padding(extent)
        origin = (round(box[0]) - pad, round(box[1]) - pad)
        x0, y0, x1, y1 = mask.getbbox() or (0, 0, 1, 1)
        full = (origin[0] + x0, origin[1] + y0, origin[0] + x1, origin[1] + y1)
        final = [
            min(max(math.floor(full[0] / _SUPERSAMPLE), 0), size - 1),
            min(max(math.floor(full[1] / _SUPERSAMPLE), 0), size - 1),
            min(max(math.ceil(full[2] / _SUPERSAMPLE), 1), size),
            min(max(math.ceil(full[3] / _SUPERSAMPLE), 1), size),
        ]
        placed.append((item, layer, mask, origin, final))
    placed.sort(key=lambda p: (p[4][2] - p[4][0]) * (p[4][3] - p[4][1]))
    for _, layer, mask, origin, _ in placed:
        canvas.paste(layer, origin, mask)
    records = [
        {"item_id": it.item_id, "category_id": it.template.category_id, "box": box} for it, *_, box in placed
    ]
    return canvas.resize((size, size), Image.Resampling.LANCZOS), records


def _write_scenes(
    items: Sequence[Item], outfits: Sequence[dict], spec: SyntheticSpec, root: Path, rng: np.random.Generator
) -> None:
    """Write `scenes/<scene_id>.jpg` and `scenes.json`, each scene showing 2-4 items of one outfit."""
    by_id = {item.item_id: item for item in items}
    (root / "scenes").mkdir()
    scenes = []
    for k in range(spec.num_scenes if outfits else 0):
        outfit = [by_id[e["item_id"]] for e in outfits[int(rng.integers(len(outfits)))]["items"]]
        count = min(int(rng.integers(2, 5)), len(outfit))
        chosen = [outfit[i] for i in rng.choice(len(outfit), size=count, replace=False)]
        image, records = _render_scene(chosen, spec.scene_size, rng)
        scene_id = f"scene_{k:05d}"
        image.save(root / "scenes" / f"{scene_id}.jpg", "JPEG", quality=spec.jpeg_quality)
        target = max(records, key=lambda r: (r["box"][2] - r["box"][0]) * (r["box"][3] - r["box"][1]))
        scenes.append(
            {
                "scene_id": scene_id,
                "image": f"scenes/{scene_id}.jpg",
                "items": records,
                "target_item_id": target["item_id"],
            }
        )
    _write_json(root / "scenes.json", scenes)


# --------------------------------------------------------------------------------------------------
# Writers and public API
# --------------------------------------------------------------------------------------------------


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, sort_keys=True, indent=1) + "\n", encoding="utf-8")


def _write_images(items: Sequence[Item], spec: SyntheticSpec, root: Path) -> None:
    (root / "images").mkdir()
    for item in tqdm(items, desc="synthetic items", unit="img", leave=False):
        image = _render_item_image(item, spec.image_size)
        image.save(root / "images" / f"{item.item_id}.jpg", "JPEG", quality=spec.jpeg_quality)


def _write_categories(spec: SyntheticSpec, root: Path) -> None:
    with (root / "categories.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerows((t.category_id, t.name, t.semantic) for t in TEMPLATES[: spec.num_categories])


def _as_spec(spec: SyntheticSpec | Mapping[str, Any]) -> SyntheticSpec:
    if isinstance(spec, SyntheticSpec):
        return spec
    if isinstance(spec, Mapping):
        return SyntheticSpec(**dict(spec))
    raise TypeError(f"spec must be a SyntheticSpec or a mapping of its fields, got {type(spec).__name__}")


def generate(spec: SyntheticSpec | Mapping[str, Any], root: str | Path) -> Path:
    """Write the dataset into `root` (created; must not exist or be empty) and return it."""
    spec, root = _as_spec(spec), Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"synthetic dataset folder {root} is not empty")
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    items = _make_items(spec, rng)
    _write_images(items, spec, root)
    _write_json(root / "polyvore_item_metadata.json", _metadata(items, rng))
    _write_categories(spec, root)
    nondisjoint = _nondisjoint_splits(items, spec, rng)
    for version, splits in (("nondisjoint", nondisjoint), ("disjoint", _disjoint_splits(items, spec, rng))):
        for name, outfits in splits.items():
            _write_json(root / version / f"{name}.json", outfits)
    _write_scenes(items, [o for split in nondisjoint.values() for o in split], spec, root, rng)
    return root


def spec_hash(spec: SyntheticSpec) -> str:
    """Short stable hash of the spec's fields (and the generator's format version)."""
    payload = json.dumps({"format_version": _FORMAT_VERSION, **dataclasses.asdict(spec)}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def ensure_synthetic(spec: SyntheticSpec | Mapping[str, Any], cache_dir: str | Path) -> Path:
    """Return the dataset folder for `spec` under cache_dir (`synthetic-<hash>`), generating it once.

    Generation happens in a temporary sibling folder that is renamed into place when complete, so a crash
    never leaves a partial dataset behind.
    """
    spec, cache_dir = _as_spec(spec), Path(cache_dir)
    target = cache_dir / f"synthetic-{spec_hash(spec)}"
    if target.is_dir():
        log.info("Reusing synthetic dataset at %s", target)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("Generating synthetic dataset at %s (%s)", target, spec)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=cache_dir))
    try:
        generate(spec, tmp)
        os.replace(tmp, target)
    except OSError:
        if not target.is_dir():  # a concurrent writer that finished first is fine; anything else is not
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
