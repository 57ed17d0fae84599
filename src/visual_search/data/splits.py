"""Split protocols: the seed's per-category gallery/query split, outfit files, or explicit columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from visual_search.errors import UserError

PROTOCOLS = ("seed", "outfits", "column")


@dataclass(frozen=True)
class SplitSpec:
    """How items are split into train / val / gallery / query."""

    protocol: str = "seed"
    max_per_category: int | None = 100
    gallery_fraction: float = 0.8
    seed: int = 42
    val_fraction: float = 0.1
    train_excludes: Sequence[str] = ("query",)
    outfits: str = "nondisjoint"

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise UserError(f"dataset.split.protocol={self.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if not 0.0 < self.gallery_fraction < 1.0:
            raise UserError(f"dataset.split.gallery_fraction={self.gallery_fraction} must be in (0, 1)")
        if not 0.0 <= self.val_fraction < 1.0:
            raise UserError(f"dataset.split.val_fraction={self.val_fraction} must be in [0, 1)")
        if self.max_per_category is not None and self.max_per_category < 2:
            raise UserError(f"dataset.split.max_per_category={self.max_per_category} must be >= 2 or null")
        bad = set(self.train_excludes) - {"gallery", "query"}
        if bad:
            raise UserError(f"dataset.split.train_excludes has {sorted(bad)}; allowed: gallery, query")


def _ids(ids: Sequence[str] | pd.Index) -> pd.Index:
    return pd.Index(ids, dtype=object, name="item_id")


def gallery_query_split(labels: pd.Series, spec: SplitSpec) -> dict[str, pd.Index]:
    """The seed protocol: per label, shuffle with `spec.seed`, keep at most `max_per_category` items,
    the first `gallery_fraction` (rounded down) go to the gallery and the rest become queries.

    Items are sorted by id before shuffling, so the split does not depend on file order.
    """
    gallery: list[str] = []
    query: list[str] = []
    for _, group in labels.sort_index().groupby(labels.astype(str), sort=True):
        order = np.random.default_rng(spec.seed).permutation(len(group))
        kept = group.index[order][: spec.max_per_category]
        n_gallery = int(len(kept) * spec.gallery_fraction)
        gallery.extend(kept[:n_gallery])
        query.extend(kept[n_gallery:])
    return {"gallery": _ids(gallery), "query": _ids(query)}


def carve_val(train: pd.Index, labels: pd.Series, spec: SplitSpec) -> dict[str, pd.Index]:
    """Move a stratified `val_fraction` of the training items (at least one per label with 2+ items,
    when the fraction is positive) into a validation split."""
    if spec.val_fraction == 0 or len(train) == 0:
        return {"train": train, "val": _ids([])}
    val: list[str] = []
    train_labels = labels.loc[train].sort_index()
    for _, group in train_labels.groupby(train_labels.astype(str), sort=True):
        if len(group) < 2:
            continue
        n_val = max(1, round(len(group) * spec.val_fraction))
        order = np.random.default_rng(spec.seed + 1).permutation(len(group))
        val.extend(group.index[order][:n_val])
    val_ids = _ids(sorted(val))
    return {"train": train.difference(val_ids, sort=False), "val": val_ids}


def seed_protocol(labels: pd.Series, spec: SplitSpec) -> dict[str, pd.Index]:
    """Gallery/query per the seed protocol; training items = all items not excluded; val carved from them."""
    splits = gallery_query_split(labels, spec)
    excluded = _ids([i for name in spec.train_excludes for i in splits[name]])
    train = _ids(labels.index).difference(excluded, sort=False)
    return splits | carve_val(train, labels, spec)


def outfit_protocol(
    labels: pd.Series, outfit_items: Mapping[str, Sequence[str]], spec: SplitSpec
) -> dict[str, pd.Index]:
    """Polyvore outfit files: `train` items train, `valid` items validate, `test` items are split into
    gallery and queries per label. Items of excluded splits are removed from train and val."""
    known = _ids(labels.index)
    test = known.intersection(_ids(outfit_items["test"]), sort=False)
    splits = gallery_query_split(labels.loc[test], spec)
    excluded = _ids([i for name in spec.train_excludes for i in splits[name]])
    for name, key in (("train", "train"), ("val", "valid")):
        ids = known.intersection(_ids(outfit_items[key]), sort=False)
        splits[name] = ids.difference(excluded, sort=False)
    return splits


def column_protocol(labels: pd.Series, split_column: pd.Series, spec: SplitSpec) -> dict[str, pd.Index]:
    """Explicit splits from a column (train | val | gallery | query); val is carved from train if absent."""
    names = split_column.astype(str).str.strip().str.lower().replace({"valid": "val", "validation": "val"})
    splits = {name: _ids(names.index[names == name]) for name in ("train", "val", "gallery", "query")}
    if len(splits["val"]) == 0:
        splits |= carve_val(splits["train"], labels, spec)
    return splits
