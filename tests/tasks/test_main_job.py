"""The README's main job and its variants, end to end on tiny data, as a user runs them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from tests.conftest import run_script
from visual_search.evaluation.publish import offline_summary

HEADLINE = ("mAP", "mAP@10", "recall@10", "qps_single")


def printed_metrics(log: str) -> dict[str, float]:
    return {key: float(value) for key, value in re.findall(r"\] - {3}(\S+) +([0-9.]+|nan)", log)}


def only_run_dir(log_dir: Path) -> Path:
    (run_dir,) = (log_dir / "evaluate" / "runs").iterdir()
    return run_dir


@pytest.fixture(scope="module")
def main_job(tmp_path_factory) -> tuple[Path, str]:
    """`python evaluate.py debug=tiny` once for the tests below: (log dir, console output)."""
    log_dir = tmp_path_factory.mktemp("main_job")
    result = run_script("evaluate.py", "debug=tiny", f"paths.log_dir={log_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return log_dir, result.stdout + result.stderr


def test_prints_quality_and_speed(main_job):
    _, log = main_job
    assert "dataset synthetic: 48 items, 4 labels" in log
    metrics = printed_metrics(log)
    assert set(HEADLINE) <= set(metrics)
    assert 0 < metrics["mAP"] <= 1 and 0 < metrics["mAP@10"] <= 1 and 0 < metrics["recall@10"] <= 1
    assert metrics["ann_recall@10"] == 1.0  # nlist shrinks to 1 on 36 vectors: IVF is exact
    assert metrics["qps_single"] > 0 and metrics["encoder_ips"] > 0
    assert {"baseline_color_histogram/mAP", "baseline_silhouette/mAP"} <= set(metrics)
    assert "Traceback" not in log


def test_run_folder_keeps_every_result(main_job):
    log_dir, log = main_job
    run_dir = only_run_dir(log_dir)
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["mAP@10"] == pytest.approx(printed_metrics(log)["mAP@10"], abs=1e-4)
    queries = pd.read_csv(run_dir / "queries.csv")
    assert len(queries) == 12 and queries["retrieved"].str.split().str.len().eq(10).all()
    assert Image.open(run_dir / "retrievals.png").size[0] > 0
    assert (run_dir / ".hydra" / "config.yaml").is_file() and "mAP@10" in (
        run_dir / "evaluate.log"
    ).read_text()
    assert len(list((log_dir / "data").glob("synthetic-*"))) == 1  # generated data cached for the next run


def test_wandb_offline_run_has_the_metrics(main_job):
    log_dir, log = main_job
    summary = offline_summary(only_run_dir(log_dir))
    printed = printed_metrics(log)
    for key in (*HEADLINE, "baseline_silhouette/mAP"):
        assert summary[key] == pytest.approx(printed[key], abs=1e-4), key


def test_leaderboard_row_points_at_the_run(main_job):
    log_dir, _ = main_job
    board = pd.read_csv(log_dir / "leaderboard.csv")
    assert board["approach"].tolist() == ["efficientnet_lite0"]
    assert board["run_dir"].tolist() == [str(only_run_dir(log_dir))]
    assert "debug=tiny" in board["overrides"][0] and "IVF_FLAT" in board["index"][0]
    assert "efficientnet_lite0" in (log_dir / "leaderboard.md").read_text()


def test_oracle_filter_returns_only_the_true_category(tmp_path):
    result = run_script(
        "evaluate.py",
        "debug=tiny",
        f"paths.log_dir={tmp_path}",
        "filter=oracle",
        "evaluation.baselines=false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = printed_metrics(result.stdout + result.stderr)
    # 9 gallery items per category: every one comes back, then one empty slot
    assert metrics["mAP@10"] == 1.0 and metrics["recall@10"] == 1.0 and metrics["precision@10"] == 0.9


def test_predicted_filter_reports_category_accuracy(tmp_path):
    result = run_script(
        "evaluate.py",
        "debug=tiny",
        f"paths.log_dir={tmp_path}",
        "filter=predicted",
        "evaluation.baselines=false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "filter=predicted by the centroid classifier" in log
    assert 0 <= printed_metrics(log)["category_accuracy"] <= 1
    assert "predicted" in pd.read_csv(only_run_dir(tmp_path) / "queries.csv").columns


def test_sweep_of_two_approaches_lands_on_the_leaderboard(tmp_path):
    result = run_script(
        "evaluate.py", "-m", "experiment=efficientnet_lite0_pretrained,resnet50_pretrained",
        "encoder.weights=null", "debug=tiny", f"paths.log_dir={tmp_path}", "evaluation.baselines=false",
        "logger=none", "evaluation.timing.single_queries=3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert sorted(board["approach"]) == ["efficientnet_lite0_pretrained", "resnet50_pretrained"]
    assert board["mAP"].is_monotonic_decreasing
    assert len(list((tmp_path / "evaluate" / "multiruns").glob("*/*/metrics.json"))) == 2


def test_a_users_catalogue_csv(tmp_path, tiny_polyvore):
    metadata = json.loads((tiny_polyvore / "polyvore_item_metadata.json").read_text())
    rows = [
        {
            "image": str(tiny_polyvore / "images" / f"{item_id}.jpg"),
            "title": m["title"],
            "category": m["category_id"],
        }
        for item_id, m in metadata.items()
    ]
    csv = tmp_path / "shop.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    result = run_script(
        "evaluate.py", "dataset=catalog", f"dataset.path={csv}", f"paths.log_dir={tmp_path}",
        "encoder.input_size=64", "datamodule.num_workers=0", "evaluation.baselines=false", "logger=none",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "dataset catalog: 48 items, 4 labels (category)" in log
    assert 0 < printed_metrics(log)["mAP"] <= 1
