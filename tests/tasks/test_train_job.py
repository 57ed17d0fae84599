"""`train.py` as a user runs it, on tiny data: fit, keep the best checkpoint, evaluate it, resume, DDP."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from tests.conftest import run_script
from tests.tasks.test_main_job import printed_metrics

TINY = (
    "debug=tiny",
    "logger=none",
    "evaluation.baselines=false",
    "evaluation.timing.single_queries=3",
    "evaluation.timing.forward_batches=0",
)


def checkpoints(run_dir: Path) -> dict[str, Path]:
    return {p.name: p for p in (run_dir / "checkpoints").glob("*.ckpt")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """`python train.py debug=tiny trainer.max_epochs=2` once, with CSV and offline W&B logs: (log dir,
    console output)."""
    log_dir = tmp_path_factory.mktemp("train_job")
    result = run_script("train.py", *TINY, "trainer.max_epochs=2", "logger=many", f"paths.log_dir={log_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return log_dir, result.stdout + result.stderr


def only_train_run(log_dir: Path) -> Path:
    (run_dir,) = (log_dir / "train" / "runs").iterdir()
    return run_dir


def test_training_keeps_the_best_checkpoint_and_evaluates_it(trained):
    log_dir, log = trained
    run_dir = only_train_run(log_dir)
    kept = checkpoints(run_dir)
    assert "last.ckpt" in kept and len(kept) == 2
    best = re.search(r"best checkpoint: (\S+) \(val/mAP ([0-9.]+)\)", log)
    assert best and Path(best.group(1)).parent == run_dir / "checkpoints" and 0 < float(best.group(2)) <= 1
    epochs = pd.read_csv(run_dir / "csv" / "version_0" / "metrics.csv")  # the CSV logger's record
    assert epochs["val/mAP"].notna().sum() == 2
    board = pd.read_csv(log_dir / "leaderboard.csv")
    assert board["approach"].tolist() == ["efficientnet_lite0_finetune_head_and_metric"]
    assert 0 < board["mAP"][0] <= 1 and board["run_dir"][0] == str(run_dir)


def test_training_records_its_speed_and_draws_its_curves(trained):
    log_dir, _ = trained
    run_dir = only_train_run(log_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train_images_per_s"] > 0 and 0 < metrics["val_mAP_best"] <= 1
    epochs = pd.read_csv(run_dir / "csv" / "version_0" / "metrics.csv")
    assert metrics["val_mAP_best"] == pytest.approx(epochs["val/mAP"].max())
    with Image.open(run_dir / "curves.png") as curves:
        assert curves.format == "PNG" and curves.width > 500
    assert list(run_dir.glob("wandb/offline-run-*/files/media/images/train/curves_*.png"))  # sent to W&B


def test_training_stops_within_its_time_budget(tmp_path):
    result = run_script(
        "train.py", *TINY, "trainer.max_epochs=1000", "trainer.max_time=00:00:00:08", "evaluate_after=false",
        "callbacks.early_stopping.patience=1000", f"paths.log_dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Time limit reached" in result.stdout + result.stderr
    last = torch.load(checkpoints(only_train_run(tmp_path))["last.ckpt"], weights_only=False)
    assert last["epoch"] < 1000  # stopped by the clock, not the epoch count


def test_evaluate_loads_the_checkpoint_and_its_head_predicts_categories(trained, tmp_path):
    _, log = trained
    best = re.search(r"best checkpoint: (\S+)", log).group(1)
    result = run_script(
        "evaluate.py", *TINY, f"checkpoint={best}", "filter=predicted", f"paths.log_dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = result.stdout + result.stderr
    assert "filter=predicted by the head classifier" in evaluated
    # the same fine-tuned vectors as train.py's own evaluation: the exact mAP is identical
    assert printed_metrics(evaluated)["mAP"] == printed_metrics(log)["mAP"]
    assert printed_metrics(evaluated)["category_accuracy"] >= 0


def test_resume_continues_the_epoch_count(trained, tmp_path):
    log_dir, _ = trained
    last = checkpoints(only_train_run(log_dir))["last.ckpt"]
    assert torch.load(last, weights_only=False)["epoch"] == 1
    result = run_script(
        "train.py", *TINY, f"ckpt_path={last}", "trainer.max_epochs=3", "evaluate_after=false",
        f"paths.log_dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = checkpoints(only_train_run(tmp_path))["last.ckpt"]
    state = torch.load(resumed, weights_only=False)
    assert state["epoch"] == 2  # one more epoch, not three
    assert state["global_step"] == 3 * torch.load(last, weights_only=False)["global_step"] // 2


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path):
    result = run_script(
        "train.py", *TINY, "trainer=ddp_cpu", "trainer.max_epochs=1", "evaluate_after=false",
        f"paths.log_dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "distributed_backend=gloo" in log and "All distributed processes registered" in log
    assert re.search(r"best checkpoint: \S+/epoch_000.ckpt", log)


def test_missing_resume_checkpoint_is_one_line(tmp_path):
    result = run_script("train.py", *TINY, f"ckpt_path={tmp_path}/nope.ckpt", f"paths.log_dir={tmp_path}")
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"error: ckpt_path={tmp_path}/nope.ckpt: no such checkpoint to resume from"
    )
