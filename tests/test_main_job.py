"""The README's main job, end to end on tiny data: data generated, encoder scored, baselines printed."""

import re
from pathlib import Path

from tests.conftest import run_script


def test_evaluate_runs_end_to_end_and_reports_map(tmp_path: Path):
    result = run_script("evaluate.py", "debug=tiny", f"paths.log_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    log = result.stdout + result.stderr
    assert "dataset synthetic: 48 items, 4 labels" in log
    scores = dict(re.findall(r"(\S+/mAP)\s+([0-9.]+)", log))
    assert set(scores) == {
        "efficientnet_lite0/mAP",
        "baseline_color_histogram/mAP",
        "baseline_silhouette/mAP",
    }
    assert all(0.0 < float(v) <= 1.0 for v in scores.values())
    # the run's folder keeps the composed config and the log
    run_dirs = list((tmp_path / "evaluate" / "runs").iterdir())
    assert len(run_dirs) == 1
    assert (run_dirs[0] / ".hydra" / "config.yaml").is_file()
    assert "efficientnet_lite0/mAP" in (run_dirs[0] / "evaluate.log").read_text()
    # the generated data is cached for the next run
    assert len(list((tmp_path / "data").glob("synthetic-*"))) == 1
