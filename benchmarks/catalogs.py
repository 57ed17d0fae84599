"""What the real-image catalogues (benchmarks/emoji.py, benchmarks/icons.py) share: the split by item and
the catalogue CSV that `dataset=catalog dataset/split=column` reads."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def split_by_item(items: pd.DataFrame, eval_fraction: float, val_fraction: float, seed: int) -> pd.Series:
    """Per category: `eval` (gallery + query) for a share of its items, `val` and `train` for the rest."""
    rng = np.random.default_rng(seed)
    role = pd.Series("train", index=items.index)
    for _, group in items.groupby("category"):
        order = rng.permutation(group.index.to_numpy())
        n_eval = max(2, round(len(order) * eval_fraction))
        n_val = max(1, round((len(order) - n_eval) * val_fraction))
        role[order[:n_eval]] = "eval"
        role[order[n_eval : n_eval + n_val]] = "val"
    return role


def write_catalog(rows: list[dict], out: Path, name: str) -> Path:
    """`rows` as out/catalog.csv (one image per row, with its split), logged with its counts."""
    catalog = pd.DataFrame(rows)
    path = out / "catalog.csv"
    catalog.to_csv(path, index=False)
    counts = catalog.groupby("split").size().to_dict()
    log.info("%s catalogue: %s, %d categories -> %s", name, counts, catalog["category"].nunique(), path)
    return path
