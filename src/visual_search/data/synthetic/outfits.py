"""Outfits over the items and their train/valid/test splits, in the nondisjoint and disjoint versions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .catalogue import Item
from .categories import TEMPLATES
from .spec import SyntheticSpec

_NONDISJOINT_SET_ID_BASE = 200_000_000
_DISJOINT_SET_ID_BASE = 300_000_000
_SPLIT_FRACTIONS = {"train": 0.7, "valid": 0.1, "test": 0.2}


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


def nondisjoint_splits(
    items: Sequence[Item], spec: SyntheticSpec, rng: np.random.Generator
) -> dict[str, list]:
    """One pool of outfits over all items, split 70/10/20 by outfit (items may recur across splits)."""
    outfits = _build_outfits(items, spec.num_outfits, rng)
    records = _outfit_records(outfits, _NONDISJOINT_SET_ID_BASE)
    return _split_sequence(records, rng)


def disjoint_splits(items: Sequence[Item], spec: SyntheticSpec, rng: np.random.Generator) -> dict[str, list]:
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
