"""`compare.py`: one job of the comparison of every approach (a Hydra multirun over `approaches`): a
pretrained approach is evaluated, a fine-tuned one (an experiment named `*_finetune`) trained with
train.py's recipe and then evaluated. Whatever happens, the job records what it did in `comparison.json`
(done, skipped with the reason and the fix, or failed), so one job's trouble never loses the others';
`evaluation.comparison.ComparisonReport` gathers them when the multirun ends."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from visual_search.data.build import build_items
from visual_search.evaluation.comparison import COLUMNS, RESULT_FILE
from visual_search.evaluation.run import check_settings, evaluate_pipeline
from visual_search.pipeline import Pipeline
from visual_search.training.fit import fit
from visual_search.utils.cli import user_error

log = logging.getLogger(__name__)


def run_approach(cfg: DictConfig, experiment: str) -> dict[str, float]:
    """Evaluate, or train and then evaluate, the approach `cfg` describes; its metrics."""
    pl.seed_everything(cfg.seed, workers=True)
    check_settings(cfg)
    items = build_items(cfg)
    known: dict[str, float] = {}
    if experiment.endswith("_finetune"):
        fitted = fit(cfg, items)
        if not fitted.best:
            raise RuntimeError("training kept no checkpoint (fast_dev_run?): nothing to evaluate")
        with open_dict(cfg):
            cfg.checkpoint = fitted.best
        known["train_seconds"] = fitted.seconds
    with Pipeline.from_config(cfg, items) as pipeline:
        metrics = evaluate_pipeline(pipeline, cfg, known)
        return metrics | {"weights": pipeline.encoder.weights, "dataset_id": items.identity}


def compare_job(cfg: DictConfig) -> dict[str, float]:
    """Run one approach and record the outcome in its job folder; never raises for a user error (the
    approach is reported skipped) nor for a failure (reported failed, with its traceback in the log)."""
    runtime = HydraConfig.get().runtime
    experiment = runtime.choices.get("experiment") or str(cfg.approach)
    outcome: dict[str, object] = {
        "approach": str(cfg.approach),
        "experiment": experiment,
        "queries": cfg.queries,
    }
    try:
        metrics = run_approach(cfg, experiment)
        outcome |= {"status": "done", **{k: v for k, v in metrics.items() if k in COLUMNS}}
    except Exception as error:  # the comparison goes on: this job's outcome says what happened
        reason = user_error(error)
        if reason is None:
            log.exception("%s failed", experiment)
        else:
            log.warning("%s skipped: %s", experiment, reason)
        outcome |= {"status": "skipped" if reason else "failed", "reason": reason or repr(error)[:300]}
        metrics = {}
    outcome["run_dir"] = runtime.output_dir
    (Path(runtime.output_dir) / RESULT_FILE).write_text(json.dumps(outcome, indent=2, default=str))
    return metrics
