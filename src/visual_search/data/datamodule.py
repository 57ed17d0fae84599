"""Lightning DataModule serving train / val / gallery / query images with the encoder's transforms.

Unreadable images never stop a run: the dataset marks them, the collate function drops them and
lists them in the batch's `skipped`, and whoever iterates reports them (see `SkippedImages`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from visual_search.data.images import ImageLoadError, cut, load_rgb
from visual_search.data.items import ItemTable
from visual_search.data.transforms import Transform
from visual_search.errors import UserError

Batch = dict[str, Any]


class ItemImages(Dataset):
    """Images of one split: (image tensor or None, row position, label, title, skip reason).

    With `boxes` (one `(x0, y0, x1, y1)` per row, or None for the whole image) each image is cut to its
    box first, padded to a square when `square`."""

    def __init__(
        self,
        frame: pd.DataFrame,
        transform: Transform,
        boxes: Sequence[tuple[int, int, int, int] | None] | None = None,
        square: bool = False,
    ) -> None:
        self.paths = frame["image"].tolist()
        self.labels = frame["label"].tolist()
        self.titles = frame["title"].fillna("").astype(str).tolist()
        self.transform = transform
        self.boxes = list(boxes) if boxes is not None else [None] * len(self.paths)
        self.square = square

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = {"index": index, "label": self.labels[index], "title": self.titles[index], "skipped": None}
        try:
            image = load_rgb(self.paths[index])
        except ImageLoadError as e:
            return {**sample, "image": None, "skipped": str(e)}
        box = self.boxes[index]
        return {**sample, "image": self.transform(image if box is None else cut(image, box, self.square))}


def titled(frame: pd.DataFrame, template: str) -> pd.DataFrame:
    """`frame` with each title rewritten by `template`, a format string over the item's columns (e.g.
    "{category}: {title}", so that image-title training sees the category); "{title}": unchanged."""
    if template == "{title}":
        return frame
    try:
        titles = [template.format_map(row) for row in frame.fillna("").to_dict("records")]
    except KeyError as e:
        raise UserError(f"datamodule.titles={template!r} names {e}; the items have {', '.join(frame)}") from e
    return frame.assign(title=titles)


def collate_skipping(samples: list[dict[str, Any]]) -> Batch:
    """Stack the readable samples; list the reasons for the others under `skipped`."""
    good = [s for s in samples if s["image"] is not None]
    return {
        "image": torch.stack([s["image"] for s in good]) if good else torch.empty(0),
        "index": torch.tensor([s["index"] for s in good], dtype=torch.long),
        "label": torch.tensor([s["label"] for s in good], dtype=torch.long),
        "title": [s["title"] for s in good],
        "skipped": [s["skipped"] for s in samples if s["image"] is None],
    }


class RetrievalDataModule(pl.LightningDataModule):
    """DataLoaders for every split of an item table; `frame(split)` gives the rows behind `index`."""

    def __init__(
        self,
        items: ItemTable,
        eval_transform: Transform,
        train_transform: Transform | None = None,
        batch_size: int = 32,
        num_workers: int = 2,
        titles: str = "{title}",
    ) -> None:
        super().__init__()
        self.items = items
        self.titles = titles
        self.eval_transform = eval_transform
        self.train_transform = train_transform or eval_transform
        self.batch_size = batch_size
        self.num_workers = num_workers
        self._frames: dict[str, pd.DataFrame] = {}

    def frame(self, split: str) -> pd.DataFrame:
        """The items of a split, in loader order."""
        if split not in self._frames:
            self._frames[split] = self.items.split(split)
        return self._frames[split]

    def loader(self, split: str, train: bool = False) -> DataLoader:
        """A DataLoader over one split (shuffled and augmented when `train`)."""
        frame = titled(self.frame(split), self.titles)
        dataset = ItemImages(frame, self.train_transform if train else self.eval_transform)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            collate_fn=collate_skipping,
        )

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def predict_dataloader(self) -> list[DataLoader]:
        return [self.loader("gallery"), self.loader("query")]
