"""Polyvore Outfits loader (also reads the synthetic generator's output, which uses the same layout).

Layout: images/<item_id>.jpg, polyvore_item_metadata.json ({item_id: {url_name, description,
catgeories (sic), title, related, category_id, semantic_category}}), categories.csv (no header:
category_id, fine category, semantic category), and nondisjoint/ + disjoint/ outfit splits
(train.json, valid.json, test.json: [{set_id, items: [{item_id, index}]}]).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

import pandas as pd

from visual_search.data.items import ItemTable, LoadReport
from visual_search.data.splits import SplitSpec, outfit_protocol, seed_protocol
from visual_search.errors import UserError

log = logging.getLogger(__name__)

METADATA = "polyvore_item_metadata.json"
CATEGORIES = "categories.csv"
LABELS = ("category_id", "semantic_category")


def read_categories(path: Path) -> dict[str, tuple[str, str]]:
    """category_id -> (fine category name, semantic category) from the header-less categories.csv."""
    with path.open(newline="", encoding="utf-8") as f:
        return {row[0].strip(): (row[1].strip(), row[2].strip()) for row in csv.reader(f) if len(row) >= 3}


def read_outfit_items(root: Path, version: str) -> dict[str, list[str]]:
    """Item ids of each outfit split file (train, valid, test) of one version (nondisjoint | disjoint)."""
    items: dict[str, list[str]] = {}
    for split in ("train", "valid", "test"):
        path = root / version / f"{split}.json"
        if not path.is_file():
            raise UserError(f"outfit split file not found: {path} (dataset.split.outfits={version!r})")
        outfits = json.loads(path.read_text(encoding="utf-8"))
        items[split] = [str(entry["item_id"]) for outfit in outfits for entry in outfit["items"]]
    return items


def _image_names(images_dir: Path) -> set[str]:
    with os.scandir(images_dir) as entries:
        return {entry.name for entry in entries}


def read_items(root: Path, report: LoadReport) -> pd.DataFrame:
    """The item table of a Polyvore-layout folder; rows without a usable image or category are reported."""
    categories = read_categories(root / CATEGORIES)
    metadata = json.loads((root / METADATA).read_text(encoding="utf-8"))
    images = _image_names(root / "images")
    rows = []
    for item_id, meta in metadata.items():
        if not isinstance(meta, dict):
            report.skip("malformed metadata entry", item_id)
            continue
        category_id = str(meta.get("category_id") or "").strip()
        if category_id not in categories:
            report.skip("unknown or empty category_id", item_id)
            continue
        if f"{item_id}.jpg" not in images:
            report.skip("missing image", str(root / "images" / f"{item_id}.jpg"))
            continue
        fine, semantic = categories[category_id]
        rows.append(
            {
                "item_id": str(item_id),
                "image": str(root / "images" / f"{item_id}.jpg"),
                "title": (meta.get("title") or meta.get("url_name") or "").strip(),
                "description": (meta.get("description") or "").strip(),
                "category_id": category_id,
                "category": fine,
                "semantic_category": (meta.get("semantic_category") or semantic).strip(),
            }
        )
    return pd.DataFrame(rows).set_index("item_id", drop=True).sort_index()


def load_polyvore(
    root: str | Path, split: SplitSpec, label: str = "category_id", name: str = "polyvore"
) -> ItemTable:
    """Load a Polyvore-layout folder and split it (seed protocol or the outfit files)."""
    root = Path(root).expanduser()
    for required in (root / METADATA, root / CATEGORIES, root / "images"):
        if not required.exists():
            raise UserError(
                f"{name}: {required} not found (dataset.root={str(root)!r}; expected the Polyvore layout)"
            )
    if label not in LABELS:
        raise UserError(f"dataset.label={label!r}; choose one of {', '.join(LABELS)}")
    if split.protocol == "column":
        raise UserError("dataset.split=column needs a catalogue CSV; Polyvore uses seed or outfits")
    report = LoadReport()
    items = read_items(root, report)
    if items.empty:
        raise UserError(f"{name}: no usable items in {root}")
    labels = items[label]
    if split.protocol == "outfits":
        splits = outfit_protocol(labels, read_outfit_items(root, split.outfits), split)
    else:
        splits = seed_protocol(labels, split)
    report.log(name)
    return ItemTable(
        name=name, items=items, splits=splits, label_field=label, report=report, root=root.resolve()
    )
