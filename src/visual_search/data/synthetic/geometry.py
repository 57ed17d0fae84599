"""Drawing primitives of a product (:class:`Part`) and the curve helpers its shapes are built from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Points = np.ndarray  # float array of shape (N, 2): x to the right, y downwards


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


def fill(points: Points) -> Part:
    return Part("fill", np.asarray(points, dtype=float))


def stroke(points: Points, width: float, closed: bool = False) -> Part:
    return Part("stroke", np.asarray(points, dtype=float), width, closed)


def detail(points: Points, width: float = 0.03, closed: bool = False) -> Part:
    return Part("detail", np.asarray(points, dtype=float), width, closed)


def detail_fill(points: Points) -> Part:
    return Part("detail_fill", np.asarray(points, dtype=float))


def pts(*xy: tuple[float, float] | Sequence[float]) -> Points:
    return np.asarray(xy, dtype=float)


def arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> Points:
    """Points on an ellipse from angle a0 to a1 (degrees; 90 points down because y grows downwards)."""
    t = np.radians(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 36) -> Points:
    return arc(cx, cy, rx, ry, 0.0, 360.0 * (n - 1) / n, n)


def bezier(p0: Sequence[float], p1: Sequence[float], p2: Sequence[float], n: int = 12) -> Points:
    """Quadratic Bezier curve from p0 to p2 with control point p1."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    a, b, c = (np.asarray(p, dtype=float) for p in (p0, p1, p2))
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * b + t**2 * c


def mirror(right_half: Points) -> Points:
    """Close a left-right symmetric outline given its right half traced from top centre to bottom centre."""
    left_half = right_half[::-1] * np.array([-1.0, 1.0])
    return np.concatenate([right_half, left_half])


def ribbon(centre: Points, half_width: float | np.ndarray) -> Points:
    """Polygon of a band of the given half width around a centre line."""
    tangent = np.gradient(centre, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) * np.reshape(half_width, (-1, 1))
    return np.concatenate([centre + normal, (centre - normal)[::-1]])


def chain(*pieces: Points) -> Points:
    return np.concatenate([np.atleast_2d(np.asarray(p, dtype=float)) for p in pieces])
