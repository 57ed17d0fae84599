"""Distributed embedding extraction: Lightning predict on two CPU processes gives the same embeddings
as one process (a cropped gallery, through the cache), each image exactly once, unreadable ones skipped
and reported."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.embed.test_cache import split
from visual_search.detect import Cropper, CropSettings
from visual_search.detect.foreground import ForegroundDetector
from visual_search.embed.distributed import merge_shards
from visual_search.embed.embedder import Embedder, EmbeddingSettings
from visual_search.encode.timm_encoder import TimmEncoder


@pytest.mark.slow
def test_two_processes_embed_exactly_what_one_does(tiny_polyvore: Path, tmp_path: Path, caplog):
    root = Path(shutil.copytree(tiny_polyvore, tmp_path / "polyvore_outfits"))
    gallery = split(root)
    broken = gallery["image"].iloc[5]
    Path(broken).write_bytes(b"not an image")
    torch.manual_seed(0)
    encoder = TimmEncoder(weights=None, input_size=32)
    cropper = Cropper(ForegroundDetector(threshold=30, closing=0.0), CropSettings(padding=0.1))
    one = Embedder(encoder, cropper, batch_size=8).embed(gallery, "gallery", crop=True)
    assert (one.boxes["source"] == "detected").sum() > len(gallery) // 2  # cropped indeed
    caplog.clear()
    cache = tmp_path / "cache"
    two_processes = Embedder(encoder, cropper, EmbeddingSettings(devices=2, cache_dir=str(cache)), 8)
    with caplog.at_level(logging.INFO):
        two = two_processes.embed(gallery, "gallery", cache=True, crop=True)
    assert two.frame.index.equals(one.frame.index) and len(two.frame) == len(gallery) - 1
    np.testing.assert_allclose(two.embeddings, one.embeddings, atol=1e-5)
    size = len(gallery)
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
