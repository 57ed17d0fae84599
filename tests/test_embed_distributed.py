"""Distributed embedding extraction: Lightning predict on two CPU processes gives the same embeddings
as one process, each image exactly once, unreadable ones skipped and reported."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.test_datamodule import datamodule
from visual_search.encoders.timm_encoder import TimmEncoder
from visual_search.evaluation.distributed import merge_shards
from visual_search.evaluation.embed import EmbeddingSettings, embed_split, embedding_settings


@pytest.mark.slow
def test_two_processes_embed_exactly_what_one_does(tiny_polyvore: Path, tmp_path: Path, caplog):
    root = Path(shutil.copytree(tiny_polyvore, tmp_path / "polyvore_outfits"))
    data = datamodule(root)
    broken = data.frame("gallery")["image"].iloc[5]
    Path(broken).write_bytes(b"not an image")
    torch.manual_seed(0)
    encoder = TimmEncoder(weights=None, input_size=32)
    one = embed_split(encoder, data, "gallery")
    caplog.clear()
    cache = tmp_path / "cache"
    with (
        embedding_settings(EmbeddingSettings(devices=2, cache_dir=str(cache))),
        caplog.at_level(logging.INFO),
    ):
        two = embed_split(encoder, data, "gallery")
    assert two.frame.index.equals(one.frame.index) and len(two.frame) == len(data.frame("gallery")) - 1
    np.testing.assert_allclose(two.embeddings, one.embeddings, atol=1e-5)
    size = len(data.frame("gallery"))
    assert f"merged {size - 1} embeddings and 1 skipped images from 2 rank shards" in caplog.text
    assert f"skipped 1 unreadable gallery images: {broken}: not an image" in caplog.text
    (shard,) = cache.glob("*/shard-*.npz")  # the ranks' shards, merged once into one cache shard
    assert len(np.load(shard)["keys"]) == len(two.frame)


def test_merging_needs_every_image_exactly_once(tmp_path: Path):
    def shard(rank: int, rows: list[int], skipped: list[str]) -> None:
        embeddings = torch.tensor(rows, dtype=torch.float32)[:, None].repeat(1, 3)
        torch.save(
            {"index": torch.tensor(rows), "embeddings": embeddings, "skipped": skipped},
            tmp_path / f"rank-{rank}.pt",
        )

    shard(0, [0, 2, 4], [])
    shard(1, [1, 5], ["img3.jpg: not an image"])
    embeddings, rows, skipped = merge_shards(tmp_path, 6)
    assert rows.tolist() == [0, 1, 2, 4, 5] and embeddings[:, 0].tolist() == [0, 1, 2, 4, 5]
    assert skipped == ["img3.jpg: not an image"]
    shard(1, [1, 4], ["img3.jpg: not an image"])  # row 4 twice, row 5 never
    with pytest.raises(RuntimeError, match=r"hold 5 embeddings \(4 distinct\) and 1 skipped images for 6"):
        merge_shards(tmp_path, 6)
