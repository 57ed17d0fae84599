"""The on-disk embedding cache behind the Embedder: a second run embeds nothing, a changed image or
encoder is embedded again, uncached calls (queries) never touch it, a run that dies keeps the shards it
finished, and a cropped gallery is cached under its crop boxes."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tests.data.test_datamodule import PRE
from visual_search.data.polyvore import load_polyvore
from visual_search.data.splits import SplitSpec
from visual_search.data.transforms import Preprocess, eval_transform
from visual_search.detect import Cropper, CropSettings
from visual_search.detect.foreground import ForegroundDetector
from visual_search.embed.cache import EmbeddingCache, encoder_fingerprint, image_keys
from visual_search.embed.embedder import Embedder, EmbeddingSettings
from visual_search.encode.timm_encoder import TimmEncoder
from visual_search.errors import UserError

LOGGER = "visual_search.embed.embedder"


@pytest.fixture()
def root(tiny_polyvore: Path, tmp_path: Path) -> Path:
    """A copy of the tiny dataset whose images the test may change."""
    return Path(shutil.copytree(tiny_polyvore, tmp_path / "polyvore_outfits"))


@pytest.fixture()
def encoder() -> TimmEncoder:
    torch.manual_seed(0)
    return TimmEncoder(weights=None, input_size=32)


def split(root: Path, name: str = "gallery") -> pd.DataFrame:
    return load_polyvore(root, SplitSpec()).split(name)


def embedder(encoder: TimmEncoder, cache: Path | None = None, shard_size: int = 4096, **kwargs) -> Embedder:
    settings = EmbeddingSettings(cache_dir=str(cache) if cache else None, shard_size=shard_size)
    return Embedder(encoder, settings=settings, batch_size=8, **kwargs)


def cache_counts(text: str, split: str = "gallery") -> list[tuple[int, int, int]]:
    """(from the cache, total, to embed) of every cache lookup logged for `split`."""
    pattern = rf"{split}: (\d+) of (\d+) embeddings from the cache \S+, (\d+) to embed"
    return [tuple(map(int, found)) for found in re.findall(pattern, text)]


def test_second_run_reads_the_cache_and_changes_invalidate_it(root, encoder, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    gallery = split(root)
    size = len(gallery)
    plain = embedder(encoder).embed(gallery, "gallery", cache=True)  # no cache_dir: no cache
    assert not (tmp_path / "cache").exists() and not cache_counts(caplog.text)
    cached = embedder(encoder, tmp_path / "cache", shard_size=10)
    first = cached.embed(gallery, "gallery", cache=True)
    second = cached.embed(gallery, "gallery", cache=True)
    assert cache_counts(caplog.text) == [(0, size, size), (size, size, 0)]
    (folder,) = (tmp_path / "cache").iterdir()
    assert folder.name.startswith("TimmEncoder-") and len(list(folder.glob("shard-*.npz"))) == -(-size // 10)
    np.testing.assert_array_equal(second.embeddings, first.embeddings)
    assert second.frame.index.equals(first.frame.index) and first.frame.index.equals(plain.frame.index)
    np.testing.assert_allclose(first.embeddings, plain.embeddings, atol=1e-5)

    changed = gallery.iloc[3]  # another picture under the same path
    Image.open(changed["image"]).transpose(Image.Transpose.ROTATE_90).save(changed["image"])
    caplog.clear()
    third = cached.embed(gallery, "gallery", cache=True)
    assert cache_counts(caplog.text) == [(size - 1, size, 1)]
    others = np.arange(size) != 3
    np.testing.assert_array_equal(third.embeddings[others], first.embeddings[others])
    assert not np.allclose(third.embeddings[3], first.embeddings[3], atol=1e-4)

    caplog.clear()
    cached.embed(split(root, "query"), "query")  # queries are embedded uncached
    assert not cache_counts(caplog.text, "query")

    with torch.no_grad():  # other weights (e.g. another checkpoint): another model, nothing cached
        next(encoder.parameters()).mul_(1.01)
    cached.embed(gallery, "gallery", cache=True)
    resized = Preprocess(input_size=24, resize_size=28, mean=PRE.mean, std=PRE.std, interpolation="bicubic")
    cached.transform = eval_transform(resized)  # another preprocessing: another model too
    cached.embed(gallery, "gallery", cache=True)
    assert cache_counts(caplog.text)[-2:] == [(0, size, size), (0, size, size)]
    assert len(list((tmp_path / "cache").iterdir())) == 3


def test_a_run_that_dies_keeps_the_shards_it_finished(root, encoder, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    gallery = split(root)  # batches of 8
    size = len(gallery)
    calls = []

    def crash_on_the_fourth_batch(*_):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("power cut")

    cached = embedder(encoder, tmp_path / "cache", shard_size=16)  # 2 batches per shard
    hook = encoder.register_forward_hook(crash_on_the_fourth_batch)
    with pytest.raises(RuntimeError, match="power cut"):
        cached.embed(gallery, "gallery", cache=True)
    hook.remove()
    cached.embed(gallery, "gallery", cache=True)
    assert cache_counts(caplog.text)[-1] == (16, size, size - 16)  # the first shard survived the crash


def test_unreadable_images_are_reported_every_time_and_never_cached(root, encoder, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    gallery = split(root)
    broken = gallery["image"].iloc[:2]
    Path(broken.iloc[0]).write_bytes(b"")
    Path(broken.iloc[1]).unlink()
    cached = embedder(encoder, tmp_path / "cache")
    first = cached.embed(gallery, "gallery", cache=True)
    second = cached.embed(gallery, "gallery", cache=True)
    size = len(gallery)
    assert len(first.frame) == len(second.frame) == size - 2
    assert caplog.text.count("skipped 2 unreadable gallery images") == 2
    assert f"{broken.iloc[1]}: file not found" in caplog.text
    assert cache_counts(caplog.text)[-1] == (size - 2, size, 2)


def test_a_damaged_shard_is_ignored_and_its_images_embedded_again(root, encoder, tmp_path, caplog):
    gallery = split(root)
    cached = embedder(encoder, tmp_path / "cache", shard_size=10)
    first = cached.embed(gallery, "gallery", cache=True)
    shard = sorted((tmp_path / "cache").glob("*/shard-*.npz"))[0]
    shard.write_bytes(shard.read_bytes()[:100])
    again = cached.embed(gallery, "gallery", cache=True)
    assert f"ignoring unreadable embedding cache shard {shard}" in caplog.text
    np.testing.assert_allclose(again.embeddings, first.embeddings, atol=1e-5)


def test_a_cropped_gallery_is_cached_under_its_crop_boxes(root, encoder, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    gallery = split(root)
    size = len(gallery)
    cropper = Cropper(ForegroundDetector(threshold=30, closing=0.0), CropSettings(padding=0.0, square=True))
    cached = embedder(encoder, tmp_path / "cache", cropper=cropper)
    first = cached.embed(gallery, "gallery", cache=True, crop=True)
    second = cached.embed(gallery, "gallery", cache=True, crop=True)
    assert cache_counts(caplog.text) == [(0, size, size), (size, size, 0)]
    assert (first.boxes["source"] == "detected").mean() > 0.5 and first.boxes.equals(second.boxes)
    np.testing.assert_array_equal(second.embeddings, first.embeddings)
    uncached = embedder(encoder, cropper=cropper).embed(gallery, "gallery", crop=True)
    np.testing.assert_allclose(first.embeddings, uncached.embeddings, atol=1e-5)
    caplog.clear()
    whole = cached.embed(gallery, "gallery", cache=True)  # the same images uncropped: other entries
    cropped = (first.boxes["source"] != "whole").to_numpy()
    assert cache_counts(caplog.text) == [(size - cropped.sum(), size, cropped.sum())]
    assert not np.allclose(whole.embeddings[cropped], first.embeddings[cropped], atol=1e-3)


def test_keys_and_fingerprints(tmp_path, encoder):
    image = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(image)
    before = image_keys([str(image), str(tmp_path / "gone.png")])
    assert before.dtype == np.dtype("S16") and before[0] != before[1]
    Image.new("RGB", (5, 5)).save(image)  # rewritten: new size and time
    assert image_keys([str(image)])[0] != before[0]
    boxed = image_keys([str(image)] * 3, [None, (0, 0, 2, 2), (0, 0, 2, 2)], square=True)
    assert boxed[0] == image_keys([str(image)])[0] and boxed[1] == boxed[2] != boxed[0]
    assert image_keys([str(image)], [(0, 0, 2, 2)])[0] != boxed[1]  # cut as is, not squared
    same = TimmEncoder(weights=None, input_size=32)
    same.load_state_dict(encoder.state_dict())
    assert encoder_fingerprint(same) == encoder_fingerprint(encoder)
    cache = EmbeddingCache(tmp_path, encoder, "transform", shard_size=2)
    cache.add(before, np.ones((2, encoder.embed_dim), np.float32))
    found, embeddings = cache.lookup(np.array([before[1], b"x" * 16, before[0]]))
    assert found.tolist() == [True, False, True] and embeddings.shape == (2, encoder.embed_dim)
    found, embeddings = cache.lookup(np.array([before[0], before[0]]))  # two items, one image file
    assert found.tolist() == [True, True] and embeddings.shape == (2, encoder.embed_dim)


@pytest.mark.parametrize(("field", "value"), [("devices", 0), ("shard_size", -1)])
def test_bad_settings_are_user_errors(field, value):
    with pytest.raises(UserError, match=f"embedding.{field}={value}"):
        EmbeddingSettings(**{field: value})
