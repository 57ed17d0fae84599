"""Embed the images of a split with an encoder (progress bar, unreadable images skipped and reported)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

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
