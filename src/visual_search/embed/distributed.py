"""Embedding extraction on several processes or GPUs: Lightning `predict` with DDP.

Lightning gives each rank its own slice of the images (an unrepeated distributed sampler: no image twice,
none padded in); each rank embeds its slice and writes it to its own shard file, `rank-<r>.pt`; the
launching process then merges the shards exactly once (every image embedded or skipped exactly once, or
an error), in the dataset's order, and removes them.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, Dataset

from visual_search.data.datamodule import collate_skipping
from visual_search.encode.base import Encoder

log = logging.getLogger(__name__)


class PredictEmbeddings(pl.LightningModule):
    """Wraps an encoder for `Trainer.predict`: a batch in, its embeddings and row positions out."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        if len(batch["index"]):
            embeddings = self.encoder(batch["image"]).float()
        else:
            embeddings = torch.empty(0, self.encoder.embed_dim)
        return {"index": batch["index"], "embeddings": embeddings.cpu(), "skipped": batch["skipped"]}


class RankShardWriter(BasePredictionWriter):
    """Collects what this rank embedded and writes it, at the end, to the rank's own shard file."""

    def __init__(self, folder: str | Path) -> None:
        super().__init__(write_interval="batch")
        self.folder = Path(folder)
        self.parts: list[dict[str, Any]] = []

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: dict[str, Any],
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self.parts.append(prediction)

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        shard = {
            "index": torch.cat([p["index"] for p in self.parts])
            if self.parts
            else torch.empty(0, dtype=torch.long),
            "embeddings": torch.cat([p["embeddings"] for p in self.parts])
            if self.parts
            else torch.empty(0, pl_module.encoder.embed_dim),
            "skipped": [reason for p in self.parts for reason in p["skipped"]],
        }
        path = self.folder / f"rank-{trainer.global_rank}.pt"
        torch.save(shard, path.with_suffix(".partial"))
        os.replace(path.with_suffix(".partial"), path)
        self.parts = []


def merge_shards(folder: Path, size: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(embeddings, row positions in order, skip reasons) from every rank's shard, each image exactly once."""
    shards = [torch.load(path, weights_only=True) for path in sorted(folder.glob("rank-*.pt"))]
    rows = torch.cat([s["index"] for s in shards])
    embeddings = torch.cat([s["embeddings"] for s in shards])
    skipped = [reason for s in shards for reason in s["skipped"]]
    if len(torch.unique(rows)) != len(rows) or len(rows) + len(skipped) != size:
        raise RuntimeError(
            f"rank shards in {folder} hold {len(rows)} embeddings ({len(torch.unique(rows))} distinct) and "
            f"{len(skipped)} skipped images for {size} images"
        )
    log.info(
        "merged %d embeddings and %d skipped images from %d rank shards", len(rows), len(skipped), len(shards)
    )
    order = torch.argsort(rows)
    return embeddings[order], rows[order], skipped


def predict_embeddings(
    encoder: Encoder,
    dataset: Dataset,
    batch_size: int,
    num_workers: int,
    devices: int,
    accelerator: str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Embed `dataset` (samples as `ItemImages` yields them) on `devices` processes; returns (embeddings,
    row positions, skip reasons) in dataset order."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_skipping)
    with tempfile.TemporaryDirectory(prefix="embed-shards-") as folder:
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=devices,
            strategy="ddp_spawn" if devices > 1 else "auto",
            callbacks=[RankShardWriter(folder)],
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            default_root_dir=folder,
        )
        trainer.predict(PredictEmbeddings(encoder.eval()), loader, return_predictions=False)
        return merge_shards(Path(folder), len(dataset))
