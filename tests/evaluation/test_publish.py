"""Publishing to real Lightning loggers (W&B offline + CSV) and reading the offline W&B run back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import wandb
import yaml
from PIL import Image
from pytorch_lightning.loggers import CSVLogger, WandbLogger

from visual_search.evaluation.publish import (
    newest_offline_run,
    offline_config,
    offline_summary,
    publish,
    read_records,
)

CONFIG = {"model": {"name": "efficientnet_lite0", "dim": 64}, "k": [1, 10], "seed": 0}
METRICS = {"mAP@10": 0.5, "recall@1": 0.75, "baseline_silhouette/mAP": 0.25, "empty/mAP": float("nan")}
GREEN = (30, 160, 60)


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Offline, silent W&B whose every directory lies in tmp_path (nothing in $HOME)."""
    for name in ("DIR", "CACHE_DIR", "CONFIG_DIR", "DATA_DIR"):
        path = tmp_path / f"wandb_{name.lower()}"
        path.mkdir()
        monkeypatch.setenv(f"WANDB_{name}", str(path))
    monkeypatch.setenv("WANDB_MODE", "offline")  # WandbLogger(offline=True) overwrites it; restored after
    monkeypatch.setenv("WANDB_SILENT", "true")
    return tmp_path / "run"


def _wandb_logger(run_dir: Path, name: str = "eval") -> WandbLogger:
    return WandbLogger(
        project="visual-search-test", name=name, save_dir=run_dir, offline=True, log_model=False
    )


def test_publish_to_wandb_and_csv(run_dir: Path):
    csv_logger = CSVLogger(save_dir=run_dir, name="csv")
    table = pd.DataFrame({"category": ["shirt", "shoe"], "mAP": [0.4, 0.6]})
    image = Image.new("RGB", (24, 16), GREEN)
    publish([_wandb_logger(run_dir), csv_logger], CONFIG, METRICS, table, "per_category", image, "retrievals")
    assert wandb.run is None  # the run was finished

    summary = offline_summary(run_dir)
    assert {key: summary[key] for key in ("mAP@10", "recall@1", "baseline_silhouette/mAP")} == {
        "mAP@10": 0.5,
        "recall@1": 0.75,
        "baseline_silhouette/mAP": 0.25,
    }
    assert math.isnan(summary["empty/mAP"])
    assert summary["per_category"]["_type"] == "table-file"
    assert summary["retrievals"]["_type"] == "images/separated"
    config = offline_config(run_dir)
    assert {key: config[key] for key in CONFIG} == CONFIG

    media = newest_offline_run(run_dir).parent / "files" / "media"
    [table_file] = media.glob("table/per_category_*.table.json")
    written = json.loads(table_file.read_text())
    assert written["columns"] == ["category", "mAP"] and written["data"] == [["shirt", 0.4], ["shoe", 0.6]]
    [image_file] = media.glob("images/retrievals_*.png")
    with Image.open(image_file) as logged:
        assert logged.size == (24, 16) and logged.convert("RGB").getpixel((5, 5)) == GREEN

    csv_dir = Path(csv_logger.log_dir)
    rows = pd.read_csv(csv_dir / "metrics.csv")
    assert rows[["mAP@10", "recall@1", "baseline_silhouette/mAP"]].iloc[-1].tolist() == [0.5, 0.75, 0.25]
    assert math.isnan(rows["empty/mAP"].iloc[-1])
    assert yaml.safe_load((csv_dir / "hparams.yaml").read_text()) == CONFIG
    assert sorted(p.name for p in csv_dir.iterdir()) == ["hparams.yaml", "metrics.csv"]  # no table/image


def test_newest_run_and_records_spanning_blocks(run_dir: Path):
    publish([_wandb_logger(run_dir, "first")], CONFIG, {"mAP@10": 0.1})
    big = {"notes": "x" * 100_000}  # one record over three 32 KiB blocks: FIRST, MIDDLE, LAST chunks
    publish([_wandb_logger(run_dir, "second")], big, {"mAP@10": 0.9})
    assert len(list(run_dir.rglob("run-*.wandb"))) == 2
    assert offline_summary(run_dir)["mAP@10"] == 0.9
    assert offline_config(run_dir)["notes"] == big["notes"]


def test_truncated_log_reads_up_to_the_cut(run_dir: Path, tmp_path: Path):
    publish([_wandb_logger(run_dir)], CONFIG, METRICS)
    data = newest_offline_run(run_dir).read_bytes()
    complete = list(read_records(newest_offline_run(run_dir)))
    cut = tmp_path / "cut" / "offline-run-x" / "run-x.wandb"
    cut.parent.mkdir(parents=True)
    cut.write_bytes(data[: len(data) // 2])
    partial = list(read_records(cut))
    assert 0 < len(partial) < len(complete)
    assert partial == complete[: len(partial)]


def test_reader_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        offline_summary(tmp_path)
    fake = tmp_path / "wandb" / "offline-run-1" / "run-1.wandb"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"not a log")
    with pytest.raises(ValueError, match="not a W&B transaction log"):
        offline_summary(tmp_path)
