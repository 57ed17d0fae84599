"""Speed measurements: the arithmetic by hand, the end-to-end loop on real images and a real index."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from visual_search.data.transforms import eval_transform
from visual_search.encoders.timm_encoder import TimmEncoder
from visual_search.evaluation.timing import encoder_throughput, latency_summary, time_single_queries
from visual_search.index.milvus import MilvusIndex


def test_latency_summary_by_hand():
    summary = latency_summary([0.010, 0.020, 0.030, 0.040], "single")
    assert math.isclose(summary["qps_single"], 40.0)  # mean 25 ms
    assert math.isclose(summary["single_p50_ms"], 25.0)
    assert math.isclose(summary["single_p95_ms"], 38.5)
    assert latency_summary([], "single") == {}


@pytest.fixture(scope="module")
def encoder() -> TimmEncoder:
    return TimmEncoder("tf_efficientnet_lite0", weights=None, input_size=64)


def test_end_to_end_queries_skip_unreadable_images_and_the_warm_up(encoder, tiny_polyvore, tmp_path):
    images = sorted((tiny_polyvore / "images").glob("*.jpg"))[:6]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    gallery = np.random.default_rng(0).normal(size=(20, encoder.embed_dim)).astype(np.float32)
    fields = pd.DataFrame({"item_id": [str(i) for i in range(20)], "label": ["x"] * 20})
    with MilvusIndex(str(tmp_path / "m.db"), index_type="FLAT") as index:
        index.build(gallery, fields, tag="t")
        paths: list[str | Path] = [*images[:3], broken, *images[3:]]
        summary = time_single_queries(encoder, eval_transform(encoder.preprocess), index, paths, k=5)
    # the unreadable image is skipped, not fatal
    assert summary["qps_single"] > 0 and 0 < summary["single_p50_ms"] <= summary["single_p95_ms"]


def test_encoder_throughput_is_positive(encoder):
    assert encoder_throughput(encoder, batch_size=2, repeats=1) > 0
