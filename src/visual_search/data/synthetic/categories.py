"""The table of fine categories: Polyvore-style ids, names, semantic categories and shape functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .accessories import (
    backpack,
    belt,
    boot,
    brimmed_hat,
    cap,
    clutch,
    earrings,
    handbag,
    high_heel,
    necklace,
    scarf,
    sneaker,
    sunglasses,
)
from .garments import dress, long_sleeve_shirt, shorts, skirt, t_shirt, tank_top, trousers
from .geometry import Part


@dataclass(frozen=True)
class CategoryTemplate:
    """A fine category: Polyvore-style id, name, semantic category and the function drawing its shape."""

    category_id: str
    name: str
    semantic: str
    draw: Callable[[np.random.Generator], list[Part]]


# Ordered so that the first few categories already span different semantic categories.
TEMPLATES: tuple[CategoryTemplate, ...] = (
    CategoryTemplate("11", "t-shirt", "tops", t_shirt),
    CategoryTemplate("27", "trousers", "bottoms", trousers),
    CategoryTemplate("41", "sneaker", "shoes", sneaker),
    CategoryTemplate("35", "handbag", "bags", handbag),
    CategoryTemplate("3", "dress", "all-body", dress),
    CategoryTemplate("54", "brimmed hat", "hats", brimmed_hat),
    CategoryTemplate("61", "sunglasses", "sunglasses", sunglasses),
    CategoryTemplate("71", "necklace", "jewellery", necklace),
    CategoryTemplate("65", "scarf", "scarves", scarf),
    CategoryTemplate("51", "belt", "accessories", belt),
    CategoryTemplate("15", "long-sleeve shirt", "tops", long_sleeve_shirt),
    CategoryTemplate("29", "shorts", "bottoms", shorts),
    CategoryTemplate("43", "boot", "shoes", boot),
    CategoryTemplate("38", "backpack", "bags", backpack),
    CategoryTemplate("57", "cap", "hats", cap),
    CategoryTemplate("74", "earrings", "jewellery", earrings),
    CategoryTemplate("17", "tank top", "tops", tank_top),
    CategoryTemplate("31", "skirt", "bottoms", skirt),
    CategoryTemplate("47", "high heel", "shoes", high_heel),
    CategoryTemplate("39", "clutch", "bags", clutch),
)
