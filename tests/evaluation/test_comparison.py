"""The comparison report from the jobs' outcomes: the table (best first, skipped last with why), the plot
and the grids side by side."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from visual_search.evaluation.comparison import RESULT_FILE, gather, markdown, plot, side_by_side


def job(folder: Path, name: str, **outcome: object) -> None:
    folder.mkdir(parents=True)
    (folder / RESULT_FILE).write_text(json.dumps({"approach": name, "run_dir": str(folder), **outcome}))


def test_a_report_from_the_outcomes_of_every_job(tmp_path):
    job(tmp_path / "0_a", "a", status="done", mAP=0.5, qps_single=30.0, weights="imagenet (pip)")
    job(tmp_path / "1_b", "b", status="skipped", reason="encoder.weights=x: cannot be had; give a file")
    job(tmp_path / "2_c", "c", status="done", mAP=0.7, qps_single=10.0, train_seconds=12.0)
    Image.new("RGB", (300, 100), "red").save(tmp_path / "0_a" / "retrievals.png")
    Image.new("RGB", (150, 100), "blue").save(tmp_path / "2_c" / "retrievals.png")
    table = gather(tmp_path)
    assert table["approach"].tolist() == ["a", "b", "c"] and table.columns[0] == "approach"
    lines = markdown(table, "shop-1234").splitlines()
    assert lines[0] == "# Comparison on shop-1234" and "2 of 3 approaches ran" in lines[2]
    rows = [line.split("|")[1].strip() for line in lines if line.startswith("| ") and "approach" not in line]
    assert rows == ["c", "a", "b"]  # best mAP first, the skipped one last
    assert any("give a file" in line for line in lines)
    plot(table, tmp_path / "plot.png")
    side_by_side(table, tmp_path / "grids.png", height=50)
    assert Image.open(tmp_path / "plot.png").size[0] > 0
    assert Image.open(tmp_path / "grids.png").size == (150 + 75 + 20, 50 + 16)
