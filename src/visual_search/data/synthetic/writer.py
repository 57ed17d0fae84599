"""Writes a dataset folder (:func:`generate`) and caches one per spec (:func:`ensure_synthetic`)."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from .catalogue import Item, make_items, metadata
from .categories import TEMPLATES
from .outfits import disjoint_splits, nondisjoint_splits
from .render import render_item_image
from .scenes import render_scene
from .spec import SyntheticSpec, as_spec, spec_hash

log = logging.getLogger(__name__)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, sort_keys=True, indent=1) + "\n", encoding="utf-8")


def _write_images(items: Sequence[Item], spec: SyntheticSpec, root: Path) -> None:
    (root / "images").mkdir()
    for item in tqdm(items, desc="synthetic items", unit="img", leave=False):
        image = render_item_image(item, spec.image_size)
        image.save(root / "images" / f"{item.item_id}.jpg", "JPEG", quality=spec.jpeg_quality)


def _write_categories(spec: SyntheticSpec, root: Path) -> None:
    with (root / "categories.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerows((t.category_id, t.name, t.semantic) for t in TEMPLATES[: spec.num_categories])


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
        image, records = render_scene(chosen, spec.scene_size, rng)
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


def generate(spec: SyntheticSpec | Mapping[str, Any], root: str | Path) -> Path:
    """Write the dataset into `root` (created; must not exist or be empty) and return it."""
    spec, root = as_spec(spec), Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"synthetic dataset folder {root} is not empty")
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    items = make_items(spec, rng)
    _write_images(items, spec, root)
    _write_json(root / "polyvore_item_metadata.json", metadata(items, rng))
    _write_categories(spec, root)
    nondisjoint = nondisjoint_splits(items, spec, rng)
    for version, splits in (("nondisjoint", nondisjoint), ("disjoint", disjoint_splits(items, spec, rng))):
        for name, outfits in splits.items():
            _write_json(root / version / f"{name}.json", outfits)
    _write_scenes(items, [o for split in nondisjoint.values() for o in split], spec, root, rng)
    return root


def ensure_synthetic(spec: SyntheticSpec | Mapping[str, Any], cache_dir: str | Path) -> Path:
    """Return the dataset folder for `spec` under cache_dir (`synthetic-<hash>`), generating it once.

    Generation happens in a temporary sibling folder that is renamed into place when complete, so a crash
    never leaves a partial dataset behind.
    """
    spec, cache_dir = as_spec(spec), Path(cache_dir)
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
