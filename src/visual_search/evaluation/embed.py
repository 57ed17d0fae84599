"""Embed the images of a split with an encoder (progress bar, unreadable images skipped and reported)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from visual_search.data.datamodule import RetrievalDataModule
from visual_search.data.images import SkippedImages
from visual_search.encoders.base import Encoder


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


def embed_split(encoder: Encoder, data: RetrievalDataModule, split: str) -> Embedded:
    """Embed one split (decode + preprocess + forward, timed together)."""
    start = time.perf_counter()
    embeddings, rows = embed_loader(encoder, data.loader(split), split)
    seconds = time.perf_counter() - start
    frame = data.frame(split).iloc[rows.numpy()]
    return Embedded(frame, embeddings.numpy(), seconds)
