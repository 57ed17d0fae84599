"""`python train.py hparams_search=optuna` on tiny data: two Optuna trials, each a full train.py run on the
leaderboard, the best one reported."""

from __future__ import annotations

import json

import pandas as pd
from omegaconf import OmegaConf

from tests.conftest import run_script
from tests.tasks.test_train_job import TINY


def test_a_two_trial_search_lands_on_the_leaderboard_and_reports_its_best(tmp_path):
    result = run_script(
        "train.py", "hparams_search=optuna", *TINY, "trainer.max_epochs=1", f"paths.log_dir={tmp_path}",
        "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=1",
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    trials = sorted(p for p in sweep.iterdir() if (p / "metrics.json").is_file())
    assert len(trials) == 2
    scores = [json.loads((trial / "metrics.json").read_text())["val_mAP_best"] for trial in trials]
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert sorted(board["run_dir"]) == [str(trial) for trial in trials]
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best["best_value"] == max(scores)
    assert set(best["best_params"]) >= {"model.lr", "model.unfreeze_last"}
    assert "Best parameters" in result.stdout + result.stderr
