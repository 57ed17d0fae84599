"""Speed measures: the latency arithmetic by hand, and encoder throughput."""

from __future__ import annotations

import math

import pytest

from visual_search.encode.timm_encoder import TimmEncoder
from visual_search.metrics.timing import encoder_throughput, latency_summary, machine_load, spread


def test_latency_summary_by_hand():
    summary = latency_summary([[0.010, 0.020, 0.030, 0.040]], "single")
    assert math.isclose(summary["qps_single"], 40.0)  # mean 25 ms
    assert math.isclose(summary["single_p50_ms"], 25.0)
    assert math.isclose(summary["single_p95_ms"], 38.5)
    assert latency_summary([], "single") == latency_summary([[]], "single") == {}


def test_rounds_give_the_median_and_range_by_hand():
    summary = latency_summary([[0.010, 0.010], [0.020, 0.020], [0.040, 0.040]], "single")
    assert summary["qps_single"] == 50.0 and summary["qps_single_min"] == 25.0
    assert summary["qps_single_max"] == 100.0 and summary["single_p50_ms"] == 20.0  # over every request
    assert spread([3.0, 1.0, 2.0], "x") == {"x": 2.0, "x_min": 1.0, "x_max": 3.0} and spread([], "x") == {}
    load = machine_load()
    assert load["load_1m"] >= 0 and load["cpus"] >= 1


@pytest.fixture(scope="module")
def encoder() -> TimmEncoder:
    return TimmEncoder("tf_efficientnet_lite0", weights=None, input_size=64)


def test_encoder_throughput_is_positive(encoder):
    ips = encoder_throughput(encoder, batch_size=2, repeats=1, rounds=2)
    assert 0 < ips["encoder_ips_min"] <= ips["encoder_ips"] <= ips["encoder_ips_max"]
