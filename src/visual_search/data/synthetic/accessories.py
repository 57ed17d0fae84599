"""Shapes of the accessory categories (shoes, bags, hats, sunglasses, scarves, belts, jewellery)."""

from __future__ import annotations

import math

import numpy as np

from .geometry import (
    Part,
    Points,
    arc,
    bezier,
    chain,
    detail,
    detail_fill,
    ellipse,
    fill,
    pts,
    ribbon,
    stroke,
)

# --------------------------------------------------------------------------------------------------
# Shoes (side view, toe to the right)
# --------------------------------------------------------------------------------------------------


def sneaker(rng: np.random.Generator) -> list[Part]:
    sole_t, h, y0 = rng.uniform(0.12, 0.2), rng.uniform(0.6, 0.8), 0.2
    sole = pts(
        (-0.98, y0),
        (0.92, y0),
        (1.02, y0 + sole_t * 0.4),
        (0.95, y0 + sole_t),
        (-0.95, y0 + sole_t),
        (-1.02, y0 + sole_t * 0.5),
    )
    tongue, lace_end = np.array([-0.3, y0 - h * 1.05]), np.array([0.35, y0 - h * 0.55])
    upper = chain(
        (-0.95, y0 + 0.02),
        bezier((-1.02, y0), (-1.02, y0 - h), (-0.88, y0 - h), 6),
        (-0.6, y0 - h * 0.78),
        tongue,
        (tongue[0] + 0.1, y0 - h * 0.98),
        lace_end,
        arc(0.55, y0 + 0.02, 0.45, h * 0.57 + 0.02, 250, 360, 10),
    )
    along = (lace_end - tongue) / np.linalg.norm(lace_end - tongue)
    across = np.array([-along[1], along[0]]) * 0.09
    laces = [
        detail(np.stack([p - across, p + across + along * 0.05]), 0.03)
        for p in tongue + np.outer(np.linspace(0.25, 0.85, 4), lace_end - tongue)
    ]
    swoosh = detail(bezier((-0.75, y0 - 0.1), (-0.1, y0 - 0.02), (0.3, y0 - h * 0.45)), 0.045)
    welt = detail(pts((-0.98, y0), (0.92, y0)), 0.035)
    return [fill(upper), fill(sole), welt, *laces, swoosh]


def boot(rng: np.random.Generator) -> list[Part]:
    top, shaft = rng.uniform(-1.0, -0.5), rng.uniform(0.5, 0.65)
    back, front = -0.8, -0.8 + shaft
    outline = chain(
        (back, top),
        (front, top),
        (front + 0.02, 0.25),
        bezier((front + 0.02, 0.25), (0.2, 0.3), (0.8, 0.45), 8),
        (0.95, 0.62),
        (0.92, 0.8),
        (-0.25, 0.8),
        (-0.3, 1.0),
        (back, 1.0),
        (back - 0.02, 0.5),
    )
    return [
        fill(outline),
        detail(pts((back, 0.8), (0.92, 0.8)), 0.04),
        detail(pts((back, top + 0.08), (front, top + 0.08)), 0.03),
        detail(pts((front - 0.08, top + 0.12), (front - 0.06, 0.3)), 0.025),
    ]


def high_heel(rng: np.random.Generator) -> list[Part]:
    heel_h, ground = rng.uniform(0.7, 0.95), 0.62
    cup = ground - heel_h
    back_top = (-0.9, cup - rng.uniform(0.22, 0.32))
    body = chain(
        back_top,
        (-0.93, cup),
        bezier((-0.88, cup + 0.04), (-0.05, cup + 0.12), (0.35, ground - 0.04), 10),
        (0.8, ground - 0.02),
        (1.0, ground - 0.1),
        (0.92, ground - 0.2),
        (0.6, ground - 0.3),
        (0.2, ground - 0.36),
        bezier((0.2, ground - 0.36), (-0.35, cup - 0.05), back_top, 10),
    )
    stiletto = pts((-0.92, cup - 0.02), (-0.72, cup + 0.06), (-0.76, ground + 0.03), (-0.81, ground + 0.03))
    parts = [fill(body), fill(stiletto)]
    if rng.random() < 0.4:
        parts.append(stroke(arc(-0.6, cup - 0.2, 0.3, 0.12, 150, 390, 16), 0.05))
    return parts


# --------------------------------------------------------------------------------------------------
# Bags
# --------------------------------------------------------------------------------------------------


def handbag(rng: np.random.Generator) -> list[Part]:
    top_w, bottom_w, top_y = rng.uniform(0.5, 0.65), rng.uniform(0.75, 0.95), rng.uniform(-0.25, -0.05)
    span, handle_h = rng.uniform(0.25, 0.4), rng.uniform(0.6, 0.85)
    body = pts(
        (-top_w, top_y),
        (top_w, top_y),
        (bottom_w, 0.85),
        (bottom_w - 0.08, 0.95),
        (-bottom_w + 0.08, 0.95),
        (-bottom_w, 0.85),
    )
    flap_y = top_y + rng.uniform(0.25, 0.4)
    return [
        fill(body),
        stroke(arc(0, top_y, span, handle_h, 180, 360, 20), rng.uniform(0.07, 0.1)),
        detail(pts((-top_w, top_y), (0, flap_y), (top_w, top_y)), 0.03),
        detail_fill(ellipse(0, flap_y, 0.06, 0.06, 12)),
    ]


def backpack(rng: np.random.Generator) -> list[Part]:
    w, dome = rng.uniform(0.5, 0.62), rng.uniform(0.25, 0.4)
    top = -0.75
    body = chain(
        arc(0, top + dome, w, dome, 180, 360, 16),
        arc(w - 0.1, 0.9, 0.1, 0.1, 0, 90, 5),
        arc(-w + 0.1, 0.9, 0.1, 0.1, 90, 180, 5),
    )
    pocket_w, pocket_top = w * rng.uniform(0.65, 0.8), rng.uniform(0.15, 0.35)
    pocket = chain(
        arc(0, pocket_top + 0.12, pocket_w, 0.12, 180, 360, 10), (pocket_w, 0.85), (-pocket_w, 0.85)
    )
    return [
        fill(body),
        stroke(arc(0, top, 0.15, 0.2, 180, 360, 10), 0.05),
        detail(pocket, 0.03, closed=True),
        detail(arc(0, top + dome + 0.12, w * 0.8, dome * 0.8, 200, 340, 12), 0.025),
    ]


def clutch(rng: np.random.Generator) -> list[Part]:
    h, flap_y, r = rng.uniform(0.3, 0.45), rng.uniform(0.0, 0.2), 0.08
    body = chain(
        arc(1 - r, -h + r, r, r, 270, 360, 4),
        arc(1 - r, h - r, r, r, 0, 90, 4),
        arc(-1 + r, h - r, r, r, 90, 180, 4),
        arc(-1 + r, -h + r, r, r, 180, 270, 4),
    )
    return [
        fill(body),
        detail(pts((-1, -h), (0, flap_y), (1, -h)), 0.03),
        detail_fill(ellipse(0, flap_y, 0.07, 0.07, 12)),
    ]


# --------------------------------------------------------------------------------------------------
# Hats, accessories, jewellery
# --------------------------------------------------------------------------------------------------


def brimmed_hat(rng: np.random.Generator) -> list[Part]:
    brim_ry, crown_w, crown_top = rng.uniform(0.2, 0.32), rng.uniform(0.42, 0.55), rng.uniform(-0.45, -0.2)
    base = 0.45
    crown = chain(
        (-crown_w, base), arc(0, crown_top + 0.15, crown_w * 0.9, 0.15, 180, 360, 12), (crown_w, base)
    )
    band_y = base - rng.uniform(0.1, 0.2)
    return [
        fill(ellipse(0, base, 1.0, brim_ry, 40)),
        fill(crown),
        detail(pts((-crown_w, band_y), (crown_w, band_y)), 0.06),
        detail(arc(0, base, crown_w, 0.08, 0, 180, 12), 0.025),
    ]


def cap(rng: np.random.Generator) -> list[Part]:
    dome_h, visor = rng.uniform(0.75, 0.95), rng.uniform(0.85, 1.05)
    dome = arc(-0.2, 0.35, 0.75, dome_h, 180, 360, 20)
    peak = (-0.2, 0.35 - dome_h)
    visor_pts = pts(
        (0.4, 0.22), (visor * 0.8, 0.28), (visor, 0.4), (visor - 0.05, 0.48), (0.5, 0.45), (0.4, 0.42)
    )
    seams = [
        detail(bezier(peak, (peak[0] + dx, 0.0), (peak[0] + dx * 1.4, 0.35)), 0.025) for dx in (-0.35, 0.35)
    ]
    return [fill(dome), fill(visor_pts), fill(ellipse(peak[0], peak[1] - 0.04, 0.08, 0.06, 10)), *seams]


def _lens(style: int, cx: float, side: int, scale: float) -> Points:
    """Lens outline of one style (round, wayfarer, aviator), mirrored for the left side."""
    if style == 0:
        outline = ellipse(0, 0, 0.36, 0.3)
    elif style == 1:
        outline = pts((-0.38, -0.26), (0.4, -0.3), (0.36, 0.1), (0.25, 0.24), (-0.25, 0.26), (-0.36, 0.12))
    else:
        t = np.radians(np.linspace(0, 360, 36, endpoint=False))
        outline = np.stack(
            [0.38 * np.cos(t), 0.26 * np.sin(t) + 0.1 * np.clip(np.sin(t), 0, None) * np.cos(t)], 1
        )
    return outline * scale * np.array([side, 1.0]) + np.array([cx, 0.05])


def sunglasses(rng: np.random.Generator) -> list[Part]:
    style, gap = int(rng.integers(0, 3)), rng.uniform(0.45, 0.55)
    parts: list[Part] = []
    for side in (-1, 1):
        parts.append(fill(_lens(style, side * gap, side, 1.15)))
        parts.append(stroke(pts((side * (gap + 0.4), -0.15), (side * (gap + 0.52), -0.2)), 0.05))
    parts.append(stroke(bezier((-gap + 0.36, -0.08), (0, -0.25), (gap - 0.36, -0.08)), 0.05))
    for side in (-1, 1):  # inner rim of the frame and a glint on the lens
        parts.append(detail(_lens(style, side * gap, side, 0.97), 0.035, closed=True))
        glint = pts((side * gap - 0.15, -0.05), (side * gap - 0.05, -0.17))
        parts.append(detail(glint, 0.03))
    return parts


def scarf(rng: np.random.Generator) -> list[Part]:
    """A scarf hanging as if around a neck: a loop on top, two wavy tails of different lengths, fringes."""
    band, amp, phase = rng.uniform(0.18, 0.26), rng.uniform(0.02, 0.08), rng.uniform(0, 2 * math.pi)
    loop_w, loop_y = rng.uniform(0.3, 0.42), -0.55
    ends = (rng.uniform(0.75, 1.0), rng.uniform(0.4, 0.7))
    left_y, right_y = np.linspace(ends[0], loop_y, 12), np.linspace(loop_y, ends[1], 10)
    centre = chain(
        np.stack([-loop_w + amp * np.sin(5 * left_y + phase), left_y], axis=1)[:-1],
        arc(0, loop_y, loop_w, 0.4, 180, 360, 16),
        np.stack([loop_w + amp * np.sin(5 * right_y + phase + 1), right_y], axis=1)[1:],
    )
    fringes = [
        stroke(pts((x, end_point[1]), (x + 0.01, end_point[1] + 0.12)), 0.025)
        for end_point in (centre[0], centre[-1])
        for x in np.linspace(end_point[0] - band * 0.4, end_point[0] + band * 0.4, 5)
    ]
    return [fill(ribbon(centre, band / 2)), *fringes]


def belt(rng: np.random.Generator) -> list[Part]:
    bend, half_w = rng.uniform(-0.15, 0.15), rng.uniform(0.08, 0.12)
    x = np.linspace(-1.0, 0.62, 24)
    centre = np.stack([x, bend * x**2], axis=1)
    taper = half_w * np.clip((x + 1.0) / 0.12 + 0.2, 0.2, 1.0)
    buckle_y = bend * 0.62**2
    buckle = pts(
        (0.6, buckle_y - half_w - 0.1),
        (0.95, buckle_y - half_w - 0.1),
        (0.95, buckle_y + half_w + 0.1),
        (0.6, buckle_y + half_w + 0.1),
    )
    holes = [detail_fill(ellipse(hx, bend * hx**2, 0.025, 0.025, 8)) for hx in np.linspace(-0.75, -0.3, 4)]
    return [
        fill(ribbon(centre, taper)),
        stroke(buckle, 0.05, closed=True),
        stroke(pts((0.6, buckle_y), (0.9, buckle_y)), 0.03),
        *holes,
    ]


def _pendant(style: int, cx: float, top: float, r: float) -> Points:
    """Pendant hanging below (cx, top): round, teardrop or diamond."""
    if style == 0:
        return ellipse(cx, top + r, r, r, 20)
    if style == 1:
        return chain((cx, top), arc(cx, top + 1.4 * r, r, r, -20, 200, 16))
    return pts((cx, top), (cx + r, top + r), (cx, top + 2.2 * r), (cx - r, top + r))


def necklace(rng: np.random.Generator) -> list[Part]:
    rx, ry, r = rng.uniform(0.6, 0.8), rng.uniform(0.9, 1.2), rng.uniform(0.12, 0.2)
    strand = arc(0, -0.6, rx, ry, 180, 0, 40)
    parts = [stroke(strand, 0.04)]
    if rng.random() < 0.4:
        parts += [fill(ellipse(bx, by, 0.05, 0.05, 10)) for bx, by in strand[2:-2:3]]
    pendant = _pendant(int(rng.integers(0, 3)), 0.0, -0.6 + ry - 0.02, r)
    return [
        *parts,
        fill(pendant),
        detail_fill(pendant.mean(axis=0) + (pendant - pendant.mean(axis=0)) * 0.4),
    ]


def earrings(rng: np.random.Generator) -> list[Part]:
    x, drop_y, r, style = (
        rng.uniform(0.35, 0.5),
        rng.uniform(0.05, 0.35),
        rng.uniform(0.15, 0.25),
        rng.integers(0, 3),
    )
    parts: list[Part] = []
    for cx in (-x, x):
        parts += [
            fill(ellipse(cx, -0.8, 0.08, 0.08, 12)),
            stroke(pts((cx, -0.8), (cx, drop_y - r)), 0.035),
        ]
        if style == 2:
            parts.append(stroke(ellipse(cx, drop_y, r, r * 1.1, 24), 0.06, closed=True))
        else:
            parts.append(fill(_pendant(int(style), cx, drop_y - r, r)))
    return parts
