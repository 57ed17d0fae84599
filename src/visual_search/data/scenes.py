"""The synthetic outfit scenes (`scenes.json` beside `scenes/`: each scene lists its items with `box` =
x0, y0, x1, y1 in scene pixels and names the largest as `target_item_id`).

They are split once and for all by a hash of their id: half train detectors, the other half are the scene
queries of the evaluation (relevant = gallery items of the target's category; the target's true box is the
box a user would draw), so a trained detector never sees the scenes it is evaluated on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from visual_search.data.items import ItemTable
from visual_search.errors import UserError

SCENES_FILE = "scenes.json"
QUERY_SHARE = 0.5  # share of the scenes kept out of detector training: the evaluation's scene queries
QUERY_SOURCES = ("items", "scenes")


def is_query_scene(scene_id: str) -> bool:
    """Whether a scene is an evaluation query (never used to train a detector): a stable hash of its id."""
    digest = int(hashlib.sha256(scene_id.encode()).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < QUERY_SHARE


def read_scene_records(root: str | Path) -> list[dict]:
    """The scene records of a synthetic dataset folder; UserError when it has none."""
    path = Path(root) / SCENES_FILE
    if not path.is_file():
        raise UserError(f"{path} not found: scene queries and detector training need the synthetic scenes")
    return json.loads(path.read_text(encoding="utf-8"))


def scene_queries(items: ItemTable) -> pd.DataFrame:
    """The query scenes of the dataset's folder as a query frame (indexed by scene id; the item columns of
    the target, its `label`, the scene `image` and the target's `box`)."""
    if items.root is None:
        raise UserError(
            f"queries=scenes needs a dataset folder with synthetic scenes; {items.name} has none "
            "(dataset=synthetic)"
        )
    root = items.root
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
