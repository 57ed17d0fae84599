"""`evaluate.py`: evaluate one approach: embed and index the gallery, search with the queries, report."""

from __future__ import annotations

import pytorch_lightning as pl
from omegaconf import DictConfig

from visual_search.evaluation.run import check_settings, evaluate_pipeline
from visual_search.pipeline import Pipeline


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate the approach `cfg` describes end to end; returns its metrics."""
    pl.seed_everything(cfg.seed, verbose=False)  # random-init encoders come out alike in every task
    check_settings(cfg)  # before any slow work
    with Pipeline.from_config(cfg) as pipeline:
        return evaluate_pipeline(pipeline, cfg)
