"""`train.py`: fine-tune an encoder with Lightning, keep the best checkpoint, then evaluate it as
evaluate.py evaluates (the same Pipeline and evaluation)."""

from __future__ import annotations

import pytorch_lightning as pl
from omegaconf import DictConfig, open_dict

from visual_search.data.build import build_items
from visual_search.evaluation.run import check_settings, evaluate_pipeline
from visual_search.pipeline import Pipeline
from visual_search.training.fit import fit


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
    with Pipeline.from_config(cfg, items) as pipeline:
        return fitted.metrics | evaluate_pipeline(pipeline, cfg, {"train_seconds": fitted.seconds})
