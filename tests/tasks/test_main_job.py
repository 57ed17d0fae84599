"""The README's main job and its variants, end to end on tiny data, as a user runs them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf
from PIL import Image

from tests.conftest import ROOT, run_script
from visual_search.evaluation.publish import offline_identity, offline_summary

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
    identity = offline_identity(only_run_dir(log_dir))
    assert identity["name"] == "evaluate/efficientnet_lite0_pretrained/synthetic"
    assert identity["group"].startswith("evaluate-") and {
        "efficientnet_lite0_pretrained",
        "synthetic",
    } <= set(identity["tags"])


def test_leaderboard_row_points_at_the_run(main_job):
    log_dir, _ = main_job
    board = pd.read_csv(log_dir / "leaderboard.csv")
    assert board["approach"].tolist() == ["efficientnet_lite0_pretrained"]
    assert board["run_dir"].tolist() == [str(only_run_dir(log_dir))]
    assert "debug=tiny" in board["overrides"][0] and "IVF_FLAT" in board["index"][0]
    row = board.iloc[0]  # what makes rows comparable, and where the weights came from
    assert row["dataset_id"].startswith("synthetic-") and row["debug"] == "tiny" and row["k"] == 10
    assert (row["queries"], row["filter"], row["weights"]) == ("items", "none", "imagenet (pip)")
    markdown = (log_dir / "leaderboard.md").read_text()
    assert f"## {row['dataset_id']}" in markdown and "efficientnet_lite0" in markdown
    assert "overrides" not in markdown and max(len(line) for line in markdown.splitlines()) < 400


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
    assert set(board["weights"]) == {"random"}  # encoder.weights=null: marked, and announced
    logs = [path.read_text() for path in (tmp_path / "evaluate" / "multiruns").glob("*/*/evaluate.log")]
    assert sum(log.count("has random weights (none given)") for log in logs) == 2
    assert board["mAP"].is_monotonic_decreasing
    jobs = sorted(p.parent.name for p in (tmp_path / "evaluate" / "multiruns").glob("*/*/metrics.json"))
    assert len(jobs) == 2 and "experiment=resnet50_pretrained" in jobs[1]  # the folder names the approach


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
        "evaluate.py", "dataset=catalog", f"dataset.path={csv}", "dataset.allow_outside=true",
        f"paths.log_dir={tmp_path}",
        "encoder.input_size=64", "datamodule.num_workers=0", "evaluation.baselines=false", "logger=none",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "dataset catalog: 48 items, 4 labels (category)" in log
    assert 0 < printed_metrics(log)["mAP"] <= 1


def evaluate_process(log_dir: Path, *overrides: str) -> subprocess.Popen:
    """`python evaluate.py debug=tiny` started in the background (its output captured)."""
    args = [sys.executable, str(ROOT / "evaluate.py"), "debug=tiny", f"paths.log_dir={log_dir}"]
    quiet = ["logger=none", "evaluation.baselines=false", "evaluation.timing.single_queries=0"]
    return subprocess.Popen(
        [*args, *quiet, *overrides], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
    )


@pytest.mark.slow
def test_runs_started_at_once_keep_their_own_folders(tmp_path):
    own_file = "index.uri=${hydra:runtime.output_dir}/milvus.db"  # Milvus Lite: one process per file
    runs = [evaluate_process(tmp_path, own_file, f"index.nprobe={nprobe}") for nprobe in (1, 4)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    folders = sorted((tmp_path / "evaluate" / "runs").iterdir())
    assert len(folders) == 2
    assert all((f / "metrics.json").is_file() for f in folders)
    nprobes = {OmegaConf.load(f / ".hydra" / "config.yaml").index.nprobe for f in folders}
    assert nprobes == {1, 4}  # each folder holds its own run's config (and metrics)
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert sorted(board["run_dir"]) == [str(f) for f in folders]


def test_a_milvus_lite_file_held_by_another_process_is_one_line_before_any_work(tmp_path):
    db = tmp_path / "held.db"
    hold = f"from pymilvus import MilvusClient; c = MilvusClient({str(db)!r}); print('open', flush=True)"
    hold += "; input()"  # holds the file until killed
    holder = subprocess.Popen(
        [sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        start = time.perf_counter()
        result = run_script("evaluate.py", "debug=tiny", f"paths.log_dir={tmp_path}", f"index.uri={db}")
        elapsed = time.perf_counter() - start
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: the Milvus Lite file index.uri={db} is open in pid {holder.pid}"), last
    assert "index.uri=..." in last and "index=milvus_server" in last
    assert "gallery:" not in result.stderr and elapsed < 60  # before any embedding


def test_pretrained_weights_that_cannot_be_downloaded_are_one_line_at_once(tmp_path):
    """Offline (as here: no route to the hubs), a hub tag ends in one line naming it, where it would come
    from and the ways out, in seconds rather than after the hub client's retries."""
    for experiment, arg in (("resnet50_pretrained", "weights"), ("clip_pretrained", "pretrained")):
        start = time.perf_counter()
        result = run_script(
            "evaluate.py", f"experiment={experiment}", "debug=tiny", f"paths.log_dir={tmp_path}"
        )
        last = result.stderr.strip().splitlines()[-1]
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
        assert (
            last.startswith(f"error: encoder.{arg}=") and "cannot be reached, and no copy is cached" in last
        )
        assert f"encoder.{arg}=null" in last and "encoder=efficientnet_lite0" in last
        assert time.perf_counter() - start < 45
