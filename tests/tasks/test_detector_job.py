"""The detector approach end to end on tiny data, as a user runs it: train_detector.py, then evaluate.py
on scene queries with the trained detector (reused from the cache) and with the user's box."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import run_script
from tests.tasks.test_main_job import only_run_dir, printed_metrics

pytestmark = pytest.mark.slow

TINY_DETECTOR = (
    "detector.model.image_size=64",
    "detector.training.epochs=1",
    "detector.training.batch_size=2",
    "detector.training.val_share=0",
)
QUIET = (
    "logger=none",
    "evaluation.baselines=false",
    "evaluation.timing.forward_batches=0",
    "evaluation.timing.single_queries=3",
)


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("detector_crop")


@pytest.fixture(scope="module")
def trained_run(log_dir) -> str:
    """train_detector.py, then evaluate.py experiment=detector_crop detector=trained (same settings)."""
    common = ("debug=tiny", f"paths.log_dir={log_dir}", *TINY_DETECTOR)
    trained = run_script("train_detector.py", *common)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "train_seconds" in trained.stdout + trained.stderr
    cropped_gallery = "crop.gallery=true"  # batch-offline: the gallery is detected and cropped too
    result = run_script(
        "evaluate.py", "experiment=detector_crop", "detector=trained", cropped_gallery, *common, *QUIET
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def test_trained_detector_is_reused_and_scene_queries_are_scored(trained_run, log_dir):
    assert "reusing the trained detector" in trained_run and "training a" not in trained_run
    metrics = printed_metrics(trained_run)
    assert 0 < metrics["mAP"] <= 1 and metrics["qps_single"] > 0
    boxes = pd.read_csv(only_run_dir(log_dir) / "boxes.csv")
    assert set(boxes["split"]) == {"gallery", "query"}
    assert set(boxes["source"]) <= {"detected", "whole"}
    queries = pd.read_csv(only_run_dir(log_dir) / "queries.csv")
    assert queries["item_id"].str.startswith("scene_").all()
    board = pd.read_csv(log_dir / "leaderboard.csv")
    assert board["queries"].tolist() == ["scenes"] and board["detector"][0].startswith("trained, largest")
    assert 0 <= board["crop_iou"][0] <= 1


def test_user_box_is_cropped_from_every_scene_query(tmp_path):
    args = ("debug=tiny", f"paths.log_dir={tmp_path}", "experiment=detector_crop", "detector=none")
    result = run_script("evaluate.py", *args, "crop.user_box=ground_truth", *QUIET)
    assert result.returncode == 0, result.stderr[-3000:]
    boxes = pd.read_csv(only_run_dir(tmp_path) / "boxes.csv")
    assert set(boxes["split"]) == {"query"} and (boxes["source"] == "user").all()  # gallery stays whole
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert "user box: ground_truth" in board["detector"][0]
    assert board["crop_iou"][0] > 0.95 and board["crop_iou>=0.5"][0] == 1.0  # whole pixels: ~1


def test_training_a_detector_that_is_not_trained_ends_with_one_line(tmp_path):
    result = run_script("train_detector.py", "debug=tiny", f"paths.log_dir={tmp_path}", "detector=foreground")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "train_detector.py trains detector=trained" in result.stderr.strip().splitlines()[-1]
