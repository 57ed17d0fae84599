"""Embed the images of a split with an encoder (progress bar, unreadable images skipped and reported).

How a run embeds (`EmbeddingSettings`: the `embedding` block of the evaluation config) is set for the
duration of a run with `embedding_settings(...)`: the gallery and the training split (PCA) are read
from the on-disk cache where possible (`embed_cache.py`) and what is missing is embedded on one process
or, with `devices > 1`, on several (`distributed.py`). Queries are always embedded: their embedding
time is measured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from visual_search.data.datamodule import ItemImages, RetrievalDataModule, collate_skipping
from visual_search.data.images import SkippedImages
from visual_search.encoders.base import Encoder
from visual_search.errors import UserError
from visual_search.evaluation.distributed import predict_embeddings
from visual_search.evaluation.embed_cache import EmbeddingCache, image_keys

log = logging.getLogger(__name__)

CACHED_SPLITS = ("gallery", "train")  # queries are always embedded: their embedding time is measured


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


_settings: ContextVar[EmbeddingSettings | None] = ContextVar("embedding_settings", default=None)


@contextmanager
def embedding_settings(settings: EmbeddingSettings) -> Iterator[EmbeddingSettings]:
    """Embed every split inside the block as `settings` say (cache, devices)."""
    token = _settings.set(settings)
    try:
        yield settings
    finally:
        _settings.reset(token)


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


@dataclass(frozen=True)
class Embedded:
    """The readable images of a split: their rows of the split's frame, embeddings and embedding time."""

    frame: pd.DataFrame
    embeddings: np.ndarray
    seconds: float

    @property
    def labels(self) -> np.ndarray:
        return self.frame["label"].to_numpy()


def embed_frame(
    encoder: Encoder,
    data: RetrievalDataModule,
    frame: pd.DataFrame,
    desc: str,
    devices: int,
    accelerator: str,
) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, positions in `frame`) of its readable images, on one process or `devices`."""
    dataset = ItemImages(frame, data.eval_transform)
    if devices == 1:
        loader = DataLoader(
            dataset, batch_size=data.batch_size, num_workers=data.num_workers, collate_fn=collate_skipping
        )
        embeddings, rows = embed_loader(encoder, loader, desc)
    else:
        embeddings, rows, reasons = predict_embeddings(
            encoder, dataset, data.batch_size, data.num_workers, devices, accelerator
        )
        skipped = SkippedImages()
        skipped.add(reasons)
        skipped.report(f"{desc} images")
    return embeddings.numpy(), rows.numpy()


def embed_cached(
    encoder: Encoder, data: RetrievalDataModule, split: str, settings: EmbeddingSettings
) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, positions in the split's frame) of its readable images: read from the cache where
    present; the rest embedded one shard at a time, each shard stored as soon as it is done."""
    frame = data.frame(split)
    cache = EmbeddingCache(settings.cache_dir, encoder, data.eval_transform, settings.shard_size)
    keys = image_keys(frame["image"].tolist())
    found, cached = cache.lookup(keys)
    missing = np.flatnonzero(~found)
    log.info(
        "%s: %d of %d embeddings from the cache %s, %d to embed",
        split, found.sum(), len(frame), cache.folder, len(missing),
    )  # fmt: skip
    embeddings = [cached] if found.any() else []
    rows = [np.flatnonzero(found)]
    chunks = range(0, len(missing), settings.shard_size)
    for number, start in enumerate(chunks, 1):
        chunk = missing[start : start + settings.shard_size]
        desc = split if len(chunks) == 1 else f"{split} {number}/{len(chunks)}"
        done, positions = embed_frame(
            encoder, data, frame.iloc[chunk], desc, settings.devices, settings.accelerator
        )
        cache.add(keys[chunk[positions]], done)
        embeddings.append(done)
        rows.append(chunk[positions])
    rows_all = np.concatenate(rows)
    if not embeddings:  # no readable image at all
        return np.empty((0, encoder.embed_dim), np.float32), rows_all
    order = np.argsort(rows_all, kind="stable")
    return np.concatenate(embeddings)[order], rows_all[order]


def embed_split(encoder: Encoder, data: RetrievalDataModule, split: str) -> Embedded:
    """Embed one split (decode + preprocess + forward, timed together), as the active
    `EmbeddingSettings` say: cached (gallery and training split) and on one or several processes."""
    settings = _settings.get() or EmbeddingSettings()
    start = time.perf_counter()
    if settings.cache_dir and split in CACHED_SPLITS:
        embeddings, rows = embed_cached(encoder, data, split, settings)
    else:
        frame = data.frame(split)
        embeddings, rows = embed_frame(encoder, data, frame, split, settings.devices, settings.accelerator)
    seconds = time.perf_counter() - start
    return Embedded(data.frame(split).iloc[rows], embeddings.astype(np.float32, copy=False), seconds)
