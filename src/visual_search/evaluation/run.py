"""`evaluate.py`: prepare the dataset and score it. The encoder + Milvus pipeline builds on this."""

from __future__ import annotations

import logging

import pytorch_lightning as pl
from omegaconf import DictConfig

from visual_search.data.build import build_items
from visual_search.evaluation.baselines import BASELINES, embed_paths
from visual_search.evaluation.metrics import mean_average_precision

log = logging.getLogger(__name__)


def score_baselines(cfg: DictConfig) -> dict[str, float]:
    """mAP (full ranking, L2) of each model-free baseline on the gallery/query split."""
    pl.seed_everything(cfg.seed, verbose=False)
    items = build_items(cfg)
    gallery, query = items.split("gallery"), items.split("query")
    results = {}
    for name in BASELINES:
        results[f"baseline/{name}/mAP"] = mean_average_precision(
            embed_paths(query["image"].tolist(), name),
            query["label"].to_numpy(),
            embed_paths(gallery["image"].tolist(), name),
            gallery["label"].to_numpy(),
        )
    for key, value in results.items():
        log.info("%s = %.4f", key, value)
    return results


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Prepare the data, print its summary and the model-free baselines' mAP."""
    return score_baselines(cfg)
