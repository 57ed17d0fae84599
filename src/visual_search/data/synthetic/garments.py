"""Shapes of the clothing categories (tops, bottoms, dresses), drawn in object units."""

from __future__ import annotations

import math

import numpy as np

from .geometry import Part, Points, arc, bezier, chain, detail, detail_fill, ellipse, fill, mirror, pts

# --------------------------------------------------------------------------------------------------
# Tops
# --------------------------------------------------------------------------------------------------


def _sleeve(shoulder: Points, angle_deg: float, length: float, cuff: float) -> Points:
    """Outer and inner cuff corners of a sleeve leaving `shoulder` at `angle_deg` below horizontal."""
    a = math.radians(angle_deg)
    direction = np.array([math.cos(a), math.sin(a)])
    inward = np.array([-math.sin(a), math.cos(a)])
    outer = shoulder + length * direction
    return np.stack([outer, outer + cuff * inward])


def t_shirt(rng: np.random.Generator) -> list[Part]:
    w, neck_w, neck_d = rng.uniform(0.5, 0.62), rng.uniform(0.18, 0.26), rng.uniform(0.1, 0.22)
    hem = rng.uniform(0.85, 1.0)
    shoulder = np.array([w, -0.8])
    cuffs = _sleeve(shoulder, rng.uniform(25, 45), rng.uniform(0.35, 0.5), rng.uniform(0.26, 0.34))
    right = chain(
        arc(0, -0.88, neck_w, neck_d, 90, 0, 8), shoulder, cuffs, (w, -0.42), (w + 0.03, hem), (0, hem)
    )
    return [
        fill(mirror(right)),
        detail(arc(0, -0.88, neck_w * 1.12, neck_d + 0.06, 180, 0, 16), 0.035),
        detail(pts((-w, hem - 0.08), (w, hem - 0.08)), 0.025),
    ]


def long_sleeve_shirt(rng: np.random.Generator) -> list[Part]:
    w, neck_w, hem = rng.uniform(0.46, 0.56), rng.uniform(0.16, 0.22), rng.uniform(0.85, 1.0)
    shoulder, angle = np.array([w, -0.8]), rng.uniform(62, 76)
    cuffs = _sleeve(shoulder, angle, rng.uniform(1.25, 1.45), 0.24)
    right = chain(
        arc(0, -0.88, neck_w, 0.1, 90, 0, 6), shoulder, cuffs, (w, -0.35), (w + 0.02, hem), (0, hem)
    )
    collar = [
        detail(pts((0, -0.72), (s * neck_w * 1.1, -0.9), (s * neck_w * 1.2, -0.6), (0, -0.72)), 0.03)
        for s in (-1, 1)
    ]
    buttons = [detail_fill(ellipse(0, y, 0.035, 0.035, 10)) for y in np.linspace(-0.5, hem - 0.2, 5)]
    seam = cuffs - 0.1 * np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    cuff_lines = [detail(seam * np.array([s, 1.0]), 0.025) for s in (-1, 1)]
    return [fill(mirror(right)), *collar, detail(pts((0, -0.72), (0, hem)), 0.02), *buttons, *cuff_lines]


def tank_top(rng: np.random.Generator) -> list[Part]:
    w, neck_w, strap = rng.uniform(0.4, 0.5), rng.uniform(0.15, 0.22), rng.uniform(0.07, 0.12)
    neck_d, arm_d, hem = rng.uniform(0.3, 0.45), rng.uniform(0.45, 0.6), rng.uniform(0.85, 1.0)
    top = -0.95
    strap_x = neck_w + strap
    right = chain(
        arc(0, top, neck_w, neck_d, 90, 0, 10),
        bezier((strap_x, top), (strap_x, top + arm_d), (w, top + arm_d), 10),
        (w + 0.04, hem),
        (0, hem),
    )
    return [fill(mirror(right)), detail(arc(0, top, neck_w + 0.04, neck_d + 0.04, 180, 0, 16), 0.03)]


# --------------------------------------------------------------------------------------------------
# Bottoms and all-body
# --------------------------------------------------------------------------------------------------


def trousers(rng: np.random.Generator) -> list[Part]:
    waist, crotch = rng.uniform(0.36, 0.45), rng.uniform(-0.35, -0.2)
    flare, gap, leg = rng.uniform(-0.06, 0.12), rng.uniform(0.03, 0.1), rng.uniform(0.3, 0.38)
    right = pts((0, -1), (waist, -1), (waist + 0.04, crotch), (gap + leg + flare, 1), (gap, 1), (0, crotch))
    pockets = [
        detail(bezier((s * waist * 0.45, -0.88), (s * waist * 0.5, -0.65), (s * waist, -0.6)), 0.025)
        for s in (-1, 1)
    ]
    return [
        fill(mirror(right)),
        detail(pts((-waist, -0.86), (waist, -0.86)), 0.03),
        detail(pts((0, -0.86), (0.02, crotch - 0.1)), 0.025),
        *pockets,
    ]


def shorts(rng: np.random.Generator) -> list[Part]:
    waist, length, crotch = rng.uniform(0.5, 0.6), rng.uniform(0.0, 0.3), rng.uniform(-0.45, -0.3)
    flare, gap = rng.uniform(0.08, 0.2), rng.uniform(0.02, 0.06)
    outer, inner = (waist + flare, length), (gap + 0.05, length + 0.05)
    right = pts((0, -1), (waist, -1), outer, inner, (0, crotch))
    cuffs = [
        detail(pts((s * (inner[0] + 0.01), inner[1] - 0.1), (s * (outer[0] - 0.02), outer[1] - 0.12)), 0.03)
        for s in (-1, 1)
    ]
    return [fill(mirror(right)), detail(pts((-waist, -0.86), (waist, -0.86)), 0.03), *cuffs]


def skirt(rng: np.random.Generator) -> list[Part]:
    waist, hem_w, length = rng.uniform(0.35, 0.45), rng.uniform(0.75, 0.95), rng.uniform(0.3, 0.9)
    band = -0.86
    right = chain(
        (0, -1),
        (waist, -1),
        (waist, band),
        bezier((hem_w, length), (hem_w * 0.5, length + 0.1), (0, length + 0.1), 6),
    )
    pleats = [
        detail(pts((t * waist, band), (t * hem_w, length + 0.06)), 0.022)
        for t in np.linspace(-0.7, 0.7, int(rng.integers(3, 7)))
    ]
    return [fill(mirror(right)), detail(pts((-waist, band), (waist, band)), 0.03), *pleats]


def dress(rng: np.random.Generator) -> list[Part]:
    strap, neck_d, bodice = rng.uniform(0.1, 0.18), rng.uniform(0.2, 0.4), rng.uniform(0.28, 0.36)
    waist, waist_y = rng.uniform(0.2, 0.26), rng.uniform(-0.25, -0.05)
    hem_w, arm_y = rng.uniform(0.55, 0.9), rng.uniform(-0.6, -0.45)
    strap_out = (strap + 0.07, -1.0)
    shoulder = (
        pts(strap_out, (bodice + 0.16, -0.84), (bodice + 0.1, -0.68))
        if rng.random() < 0.4
        else bezier(strap_out, (strap + 0.07, arm_y), (bodice, arm_y), 8)
    )
    right = chain(
        arc(0, -1.0, strap, neck_d, 90, 0, 8),
        shoulder,
        (bodice, arm_y),
        (waist, waist_y),
        bezier((hem_w, 1.0), (hem_w * 0.5, 1.06), (0, 1.06), 6),
    )
    return [fill(mirror(right)), detail(pts((-waist, waist_y), (waist, waist_y)), 0.04)]
