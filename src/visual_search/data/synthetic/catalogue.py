"""Catalogue items: the colour/pattern/material vocabulary, balanced item sampling and item metadata."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .categories import TEMPLATES, CategoryTemplate
from .spec import SyntheticSpec

RGB = tuple[int, int, int]


_ITEM_ID_BASE = 100_000_000
_EMPTY_TITLE_FRACTION = 0.05


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
class Item:
    """One catalogue product and the attributes it is rendered from."""

    item_id: str
    template: CategoryTemplate
    colour: str
    pattern: str
    material: str
    seed: int  # drives shape proportions, pose, pattern geometry and outline


def _balanced_choice(options: Sequence[str], count: int, rng: np.random.Generator) -> list[str]:
    """`count` options in random order, each used equally often (up to one), so none is favoured."""
    repeated = np.tile(np.arange(len(options)), -(-count // len(options)))
    chosen = rng.permutation(repeated)[:count]
    return [options[i] for i in chosen]


def make_items(spec: SyntheticSpec, rng: np.random.Generator) -> list[Item]:
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


def metadata(items: Sequence[Item], rng: np.random.Generator) -> dict[str, dict[str, Any]]:
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
