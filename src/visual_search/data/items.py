"""The item table every dataset loads into, its splits and labels, and the report of skipped rows."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

# Columns every loader provides; loaders may add extra metadata columns (kept for filtering).
ITEM_COLUMNS = ("image", "title", "description", "category_id", "category", "semantic_category")
SPLITS = ("train", "val", "gallery", "query")
MAX_EXAMPLES = 5


@dataclass
class LoadReport:
    """Rows a loader skipped, counted by reason, with the first few examples of each."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def skip(self, reason: str, example: str) -> None:
        """Record one skipped row."""
        self.counts[reason] += 1
        if len(self.examples[reason]) < MAX_EXAMPLES:
            self.examples[reason].append(example)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def lines(self) -> list[str]:
        """One line per reason: count and first examples."""
        return [
            f"skipped {n} row(s): {reason} (e.g. {', '.join(self.examples[reason])})"
            for reason, n in self.counts.most_common()
        ]

    def log(self, source: str) -> None:
        """Warn once per reason; silent when nothing was skipped."""
        for line in self.lines():
            log.warning("%s: %s", source, line)


@dataclass(frozen=True)
class ItemTable:
    """Items (indexed by item_id) with their splits and the label space shared by all splits; `root` is
    the folder the dataset was read from (its images, and scenes where it has them)."""

    name: str
    items: pd.DataFrame
    splits: dict[str, pd.Index]
    label_field: str
    report: LoadReport = field(default_factory=LoadReport)
    root: Path | None = None

    def __post_init__(self) -> None:
        missing = [c for c in ITEM_COLUMNS if c not in self.items.columns]
        if missing:
            raise ValueError(f"item table lacks columns {missing}")
        if self.label_field not in self.items.columns:
            raise ValueError(f"label field {self.label_field!r} is not a column: {list(self.items.columns)}")
        unknown = set(self.splits) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown splits {sorted(unknown)}; expected {SPLITS}")

    @cached_property
    def classes(self) -> list[str]:
        """Sorted label values over all items: the class index of a label is its position here."""
        return sorted(self.items[self.label_field].astype(str).unique())

    @cached_property
    def identity(self) -> str:
        """`<name>-<digest>`: the dataset as evaluation sees it (label field, and the gallery and query
        items with their labels). Runs with the same identity were scored on the same data."""
        digest = hashlib.blake2b(self.label_field.encode(), digest_size=4)
        for split in ("gallery", "query"):
            frame = self.split(split)
            digest.update(f"\0{split}\0".encode())
            digest.update(
                "\n".join(f"{i}\t{v}" for i, v in frame[self.label_field].astype(str).items()).encode()
            )
        return f"{self.name}-{digest.hexdigest()}"

    @cached_property
    def category_names(self) -> dict[str, str]:
        """The display name of each label value: the most common `category` of its items."""
        labels = self.items[self.label_field].astype(str)
        names = self.items["category"].astype(str).groupby(labels).agg(lambda v: v.mode().iloc[0])
        return names.to_dict()

    def split(self, name: str) -> pd.DataFrame:
        """The items of one split, with an integer `label` column."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        frame = self.items.loc[self.splits.get(name, pd.Index([], name="item_id"))].copy()
        lookup = {c: i for i, c in enumerate(self.classes)}
        frame["label"] = frame[self.label_field].astype(str).map(lookup).astype(np.int64)
        return frame

    def summary(self) -> str:
        """A few human-readable lines: sizes, labels, skipped rows."""
        sizes = ", ".join(f"{s} {len(self.splits.get(s, [])):,}" for s in SPLITS)
        per_class = self.split("gallery")["label"].value_counts()
        labels = f"{len(self.classes)} labels ({self.label_field})"
        lines = [
            f"dataset {self.name}: {len(self.items):,} items, {labels}",
            f"splits: {sizes}",
        ]
        if len(per_class):
            lines.append(f"gallery items per label: min {per_class.min()}, max {per_class.max()}")
        return "\n".join(lines + self.report.lines())
