"""The indexed gallery as the server shows it: result rows to items, the categories, and the item image
files (looked up by id, never by a path from the request, and only inside the dataset's image root)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from visual_search.serving.http.errors import NotFound, Unprocessable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Category:
    """A value of the dataset's label field (what searches filter on) with its display name."""

    id: str
    name: str
    count: int  # gallery items


class Gallery:
    """Gallery items by index row, categories, and image files.

    `items`: the dataset's item table (indexed by item_id); `row_ids[r]`: the item_id of index row r;
    `labels[r]`: its label value (the filter field); `names`: label value -> category name; `root`: the
    only folder images are served from."""

    def __init__(
        self,
        items: pd.DataFrame,
        row_ids: list[str],
        labels: list[str],
        names: Mapping[str, str],
        root: Path,
    ) -> None:
        self.items = items.set_axis(items.index.astype(str))
        unknown = [item_id for item_id in row_ids if item_id not in self.items.index]
        if unknown:
            raise ValueError(f"{len(unknown)} indexed items are not in the dataset (e.g. {unknown[:3]})")
        self.row_ids, self.labels, self.root = row_ids, labels, root
        self._rows = {item_id: row for row, item_id in enumerate(row_ids)}
        # what a hit shows, looked up once per row: a DataFrame row lookup per hit took 0.1 ms
        shown = self.items.loc[row_ids, ["title", "category"]].astype(str)
        self._titles, self._categories = shown["title"].tolist(), shown["category"].tolist()
        counts = Counter(labels)
        self.categories = sorted(
            (Category(label, names.get(label, label), counts[label]) for label in counts),
            key=lambda c: (c.name, c.id),
        )
        self._ids = {c.id for c in self.categories}
        self._by_name = {c.name.casefold(): c.id for c in self.categories}

    def __len__(self) -> int:
        return len(self.row_ids)

    def category_id(self, value: str) -> str:
        """The label value of a category given by id or (case-insensitive) name; Unprocessable if unknown."""
        if value in self._ids:
            return value
        if value.casefold() in self._by_name:
            return self._by_name[value.casefold()]
        shown = ", ".join(f"{c.id} ({c.name})" for c in self.categories[:20])
        raise Unprocessable(f"unknown category {value!r}; categories: {shown}")

    def row_of(self, item_id: str) -> int:
        """The index row of an indexed item; NotFound otherwise."""
        row = self._rows.get(item_id)
        if row is None:
            raise NotFound(f"unknown item {item_id!r}")
        return row

    def category_name(self, label: str) -> str:
        return next((c.name for c in self.categories if c.id == label), label)

    def hit(self, row: int, rank: int, distance: float, score: float) -> dict[str, object]:
        """What a search result shows about gallery row `row`."""
        item_id = self.row_ids[row]
        return {
            "rank": rank,
            "id": item_id,
            "title": self._titles[row],
            "category": self._categories[row],
            "category_id": self.labels[row],
            "score": score,
            "distance": distance,
            "image_url": f"/items/{quote(item_id, safe='')}/image",
        }

    def image_path(self, item_id: str) -> Path:
        """The image file of a known item, if it lies inside the root; NotFound otherwise."""
        if item_id not in self.items.index:
            raise NotFound(f"unknown item {item_id!r}")
        path = Path(str(self.items.loc[item_id, "image"])).resolve()
        if not path.is_relative_to(self.root):
            log.warning("not serving the image of item %s: %s lies outside %s", item_id, path, self.root)
            raise NotFound(f"item {item_id!r} has no image the server may show")
        if not path.is_file():
            raise NotFound(f"the image of item {item_id!r} is missing")
        return path

    def category_dicts(self) -> list[dict[str, object]]:
        return [asdict(c) for c in self.categories]
