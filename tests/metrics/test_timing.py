"""Speed measures: the latency arithmetic by hand, and encoder throughput."""

from __future__ import annotations

import math

import pytest

from visual_search.encode.timm_encoder import TimmEncoder
from visual_search.metrics.timing import encoder_throughput, latency_summary


def test_latency_summary_by_hand():
    summary = latency_summary([0.010, 0.020, 0.030, 0.040], "single")
    assert math.isclose(summary["qps_single"], 40.0)  # mean 25 ms
    assert math.isclose(summary["single_p50_ms"], 25.0)
    assert math.isclose(summary["single_p95_ms"], 38.5)
    assert latency_summary([], "single") == {}


@pytest.fixture(scope="module")
def encoder() -> TimmEncoder:
    return TimmEncoder("tf_efficientnet_lite0", weights=None, input_size=64)


def test_encoder_throughput_is_positive(encoder):
    assert encoder_throughput(encoder, batch_size=2, repeats=1) > 0
