"""Scene queries: the synthetic outfit scenes as queries, relevant = gallery items of the scene's target
category (its largest item), with the target's true box as the box a user would draw."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig

from visual_search.data.items import ItemTable
from visual_search.detection.annotations import is_query_scene, read_scene_records
from visual_search.errors import UserError

QUERY_SOURCES = ("items", "scenes")


def dataset_folder(dataset_cfg: DictConfig) -> Path | None:
    """The dataset's folder (generating the synthetic one if needed), or None for datasets without one."""
    root = dataset_cfg.get("root")
    if root is None:
        return None
    return Path(instantiate(root) if isinstance(root, DictConfig) else root)


def scene_queries(root: Path, items: ItemTable) -> pd.DataFrame:
    """The query scenes as a query frame (indexed by scene id; the item columns of the target, its
    `label`, the scene `image` and the target's `box`)."""
    records = [r for r in read_scene_records(root) if is_query_scene(r["scene_id"])]
    known = [r for r in records if r["target_item_id"] in items.items.index]
    if not known:
        raise UserError(f"{root}: no query scene whose target item is in the dataset")
    targets = items.items.loc[[r["target_item_id"] for r in known]]
    lookup = {c: i for i, c in enumerate(items.classes)}
    frame = targets.assign(
        image=[str(root / r["image"]) for r in known],
        target_item_id=targets.index,
        box=[
            next(item["box"] for item in r["items"] if item["item_id"] == r["target_item_id"]) for r in known
        ],
        label=targets[items.label_field].astype(str).map(lookup).to_numpy(),
    )
    frame.index = pd.Index([r["scene_id"] for r in known], name="item_id")
    return frame
