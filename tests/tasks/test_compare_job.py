"""compare.py as a user runs it, on tiny data: a pretrained approach evaluated, a fine-tuned one trained
then evaluated, one whose weights cannot be had skipped with the fix, and one report of them all."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_script

pytestmark = pytest.mark.slow
APPROACHES = "[efficientnet_lite0_pretrained,efficientnet_lite0_finetune,resnet50_pretrained]"


def test_every_approach_lands_in_one_report(tmp_path):
    result = run_script(
        "compare.py", "debug=tiny", f"paths.log_dir={tmp_path}", f"approaches={APPROACHES}",
        "trainer.max_epochs=1", "evaluation.timing.single_queries=3", "evaluation.baselines=false",
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("comparison report: ") and last.endswith("report.md")
    report = Path(last.removeprefix("comparison report: "))
    table = pd.read_csv(report.parent / "report.csv").set_index("approach")
    assert table["status"].to_dict() == {
        "efficientnet_lite0_pretrained": "done",
        "efficientnet_lite0_finetune_head_and_metric": "done",
        "resnet50_pretrained": "skipped",
    }
    pretrained, finetuned = (
        table.loc["efficientnet_lite0_pretrained"],
        table.loc["efficientnet_lite0_finetune_head_and_metric"],
    )
    assert (
        pretrained["weights"] == "imagenet (pip)"
        and 0 < pretrained["mAP"] <= 1
        and pretrained["qps_single"] > 0
    )
    assert finetuned["weights"].startswith("checkpoint:") and finetuned["train_seconds"] > 0
    assert pretrained["dataset_id"] == finetuned["dataset_id"]  # the same data for every approach
    assert "encoder.weights=null" in table.loc["resnet50_pretrained", "reason"]  # why, and the fix
    text = report.read_text()
    assert "2 of 3 approaches ran" in text and "| resnet50_pretrained" in text
    assert (report.parent / "map_vs_qps.png").is_file() and (report.parent / "retrievals.png").is_file()
    jobs = sorted(p.name for p in report.parent.iterdir() if p.is_dir() and p.name[0].isdigit())
    assert jobs == [
        "0_efficientnet_lite0_pretrained",
        "1_efficientnet_lite0_finetune",
        "2_resnet50_pretrained",
    ]
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert set(board["approach"]) == {
        "efficientnet_lite0_pretrained",
        "efficientnet_lite0_finetune_head_and_metric",
    }
