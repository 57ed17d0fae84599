"""`train.py`: fine-tune an encoder with Lightning, keep the best checkpoint, then evaluate it as
evaluate.py evaluates (the same Pipeline and evaluation)."""

from __future__ import annotations

import pytorch_lightning as pl
from omegaconf import DictConfig, open_dict

from visual_search.data.build import build_items
from visual_search.errors import UserError
from visual_search.evaluation.run import check_settings, evaluate_pipeline
from visual_search.pipeline import Pipeline
from visual_search.training.fit import BEST, fit

KEPT = {BEST: "val_mAP_best", "train/images_per_s": "train_images_per_s"}  # training figures in metrics.json


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, then (with `evaluate_after`) evaluate the best checkpoint; returns the final metrics."""
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.evaluate_after:
        check_settings(cfg)  # before any slow work
    items = build_items(cfg)
    fitted = fit(cfg, items)
    if not (fitted.best and fitted.is_global_zero and cfg.evaluate_after):
        return fitted.metrics
    with open_dict(cfg):
        cfg.checkpoint = fitted.best
        cfg.task_name = "evaluate"  # what the loggers call the evaluation's runs
    known = {"train_seconds": fitted.seconds}
    known |= {name: fitted.metrics[key] for key, name in KEPT.items() if key in fitted.metrics}
    with Pipeline.from_config(cfg, items) as pipeline:
        return fitted.metrics | evaluate_pipeline(pipeline, cfg, known)


def train_and_score(cfg: DictConfig) -> float | dict[str, float]:
    """`train`, returning what Hydra's sweeper wants: the metric `optimized_metric` names (set by the
    `hparams_search=` configs; what the Optuna sweeper maximises; NaN fails the trial), else every metric."""
    metrics = train(cfg)
    name = cfg.get("optimized_metric")
    if name is None:
        return metrics
    if name not in metrics:
        known = ", ".join(sorted(metrics))
        raise UserError(f"optimized_metric={name} is not among the run's metrics: {known}")
    return float(metrics[name])
