"""The one Embedder: a frame of items in, their embeddings out (progress bar; unreadable images skipped
and reported). Evaluation, training's final evaluation, serving and the benchmarks all embed here.

How it embeds is the `embedding` config (`EmbeddingSettings`): with a `cache_dir`, cached calls (the
gallery, the training split for PCA) read what the on-disk cache holds (`cache.py`) and embed the rest;
what is embedded runs on one process or, with `devices > 1`, on several (`distributed.py`). With `crop`,
each image is first cut to the box the `Cropper` finds for it (a detected object or the user's box), and
the cache keys each entry by its box too. Queries are embedded uncached: their embedding time is measured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from visual_search.data.datamodule import ItemImages, collate_skipping
from visual_search.data.images import SkippedImages
from visual_search.data.transforms import eval_transform
from visual_search.detect.boxes import BoxLike
from visual_search.detect.crop import Cropper, PixelBox, crop_boxes
from visual_search.embed.cache import EmbeddingCache, image_keys
from visual_search.embed.distributed import predict_embeddings
from visual_search.encode.base import Encoder
from visual_search.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddingSettings:
    """`cache_dir` (None: no cache) with `shard_size` embeddings per cache file, and how many `devices`
    (processes, or GPUs with accelerator=gpu) embed what the cache lacks."""

    cache_dir: str | None = None
    shard_size: int = 4096
    devices: int = 1
    accelerator: str = "cpu"

    def __post_init__(self) -> None:
        if not isinstance(self.devices, int) or self.devices < 1:
            raise UserError(f"embedding.devices={self.devices!r}; expected a positive number of processes")
        if not isinstance(self.shard_size, int) or self.shard_size < 1:
            raise UserError(f"embedding.shard_size={self.shard_size!r}; expected a positive integer")


@dataclass(frozen=True)
class Embedded:
    """The readable images of a frame: their rows of the frame, embeddings and embedding time, and (when
    cropped) the crop box of every row of the frame given (`Cropper.locate`'s columns)."""

    frame: pd.DataFrame
    embeddings: np.ndarray
    seconds: float
    boxes: pd.DataFrame | None = None

    @property
    def labels(self) -> np.ndarray:
        return self.frame["label"].to_numpy()


@torch.inference_mode()
def embed_loader(encoder: Encoder, loader: DataLoader, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings, row positions in the split) for every readable image of `loader`."""
    encoder.eval()
    skipped = SkippedImages()
    chunks, rows = [], []
    with tqdm(total=len(loader.dataset), desc=desc, unit="img", dynamic_ncols=True) as bar:
        for batch in loader:
            skipped.add(batch["skipped"])
            if len(batch["index"]):
                chunks.append(encoder(batch["image"]).float())
                rows.append(batch["index"])
            bar.update(len(batch["index"]) + len(batch["skipped"]))
    skipped.report(f"{desc} images")
    if not chunks:
        return torch.empty(0, encoder.embed_dim), torch.empty(0, dtype=torch.long)
    return torch.cat(chunks), torch.cat(rows)


class Embedder:
    """Embeds frames of items (`image`, `label`, `title` columns) with `encoder`, cropping through
    `cropper` when asked, batched by `batch_size` with `num_workers` loader processes."""

    def __init__(
        self,
        encoder: Encoder,
        cropper: Cropper | None = None,
        settings: EmbeddingSettings | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
    ) -> None:
        self.encoder = encoder
        self.cropper = cropper or Cropper()
        self.settings = settings or EmbeddingSettings()
        runtime = getattr(encoder, "runtime", "torch")
        if self.settings.devices > 1 and runtime != "torch":
            raise UserError(
                f"embedding.devices={self.settings.devices} embeds with torch in every process: "
                f"set inference.runtime=torch (not {runtime}) or embedding.devices=1"
            )
        self.batch_size, self.num_workers = batch_size, num_workers
        self.transform = eval_transform(encoder.preprocess)

    def embed(
        self,
        frame: pd.DataFrame,
        desc: str,
        cache: bool = False,
        crop: bool = False,
        user_boxes: Sequence[BoxLike | None] | None = None,
    ) -> Embedded:
        """Embed the images of `frame` (detect + crop + decode + preprocess + forward, timed together):
        cut to their crop boxes when `crop` (`user_boxes`: one per row, or None to detect), read from and
        written to the cache when `cache` and the settings name one."""
        start = time.perf_counter()
        boxes = None
        if crop:
            label = f"{desc} ({self.cropper.detector.name})"
            boxes = self.cropper.locate(frame["image"].tolist(), user_boxes, self.batch_size, label)
            boxes.index = frame.index
        cuts = crop_boxes(boxes) if boxes is not None else None
        if cache and self.settings.cache_dir:
            embeddings, rows = self._cached(frame, cuts, desc)
        else:
            embeddings, rows = self._embed(frame, cuts, desc)
        seconds = time.perf_counter() - start
        return Embedded(frame.iloc[rows], embeddings.astype(np.float32, copy=False), seconds, boxes)

    def _embed(
        self, frame: pd.DataFrame, boxes: list[PixelBox | None] | None, desc: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, positions in `frame`) of its readable images, on one process or several."""
        dataset = ItemImages(frame, self.transform, boxes, self.cropper.settings.square)
        s = self.settings
        if s.devices == 1:
            loader = DataLoader(
                dataset, batch_size=self.batch_size, num_workers=self.num_workers, collate_fn=collate_skipping
            )
            embeddings, rows = embed_loader(self.encoder, loader, desc)
        else:
            embeddings, rows, reasons = predict_embeddings(
                self.encoder, dataset, self.batch_size, self.num_workers, s.devices, s.accelerator
            )
            skipped = SkippedImages()
            skipped.add(reasons)
            skipped.report(f"{desc} images")
        return embeddings.numpy(), rows.numpy()

    def _cached(
        self, frame: pd.DataFrame, boxes: list[PixelBox | None] | None, desc: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """`_embed` through the on-disk cache: what it holds is read, the rest embedded in chunks of
        `shard_size` and stored once each chunk is done."""
        s = self.settings
        cache = EmbeddingCache(s.cache_dir, self.encoder, self.transform, s.shard_size)
        keys = image_keys(frame["image"].tolist(), boxes, self.cropper.settings.square)
        found, cached = cache.lookup(keys)
        missing = np.flatnonzero(~found)
        log.info(
            "%s: %d of %d embeddings from the cache %s, %d to embed",
            desc, found.sum(), len(frame), cache.folder, len(missing),
        )  # fmt: skip
        embeddings = [cached] if found.any() else []
        rows = [np.flatnonzero(found)]
        chunks = range(0, len(missing), s.shard_size)
        for number, start in enumerate(chunks, 1):
            chunk = missing[start : start + s.shard_size]
            label = desc if len(chunks) == 1 else f"{desc} {number}/{len(chunks)}"
            chunk_boxes = [boxes[i] for i in chunk] if boxes is not None else None
            done, positions = self._embed(frame.iloc[chunk], chunk_boxes, label)
            cache.add(keys[chunk[positions]], done)
            embeddings.append(done)
            rows.append(chunk[positions])
        rows_all = np.concatenate(rows)
        if not embeddings:  # no readable image at all
            return np.empty((0, self.encoder.embed_dim), np.float32), rows_all
        order = np.argsort(rows_all, kind="stable")
        return np.concatenate(embeddings)[order], rows_all[order]
