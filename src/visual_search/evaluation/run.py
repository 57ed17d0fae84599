"""`evaluate.py`: embed the gallery and the queries, rank exactly, and report mAP beside model-free
baselines. (Milvus indexing, QPS and logging build on this.)"""

from __future__ import annotations

import logging

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig

from visual_search.data.build import build_items
from visual_search.data.datamodule import RetrievalDataModule
from visual_search.data.transforms import eval_transform
from visual_search.encoders.base import Encoder
from visual_search.evaluation.baselines import BASELINES, score_baseline
from visual_search.evaluation.embed import embed_loader
from visual_search.evaluation.metrics import mean_average_precision

log = logging.getLogger(__name__)


def score_encoder(encoder: Encoder, data: RetrievalDataModule) -> float:
    """mAP over the full gallery ranking (L2 on the embeddings)."""
    gallery, gallery_rows = embed_loader(encoder, data.loader("gallery"), "gallery")
    query, query_rows = embed_loader(encoder, data.loader("query"), "query")
    return mean_average_precision(
        query,
        data.frame("query")["label"].to_numpy()[query_rows.numpy()],
        gallery,
        data.frame("gallery")["label"].to_numpy()[gallery_rows.numpy()],
    )


def score_baselines(data: RetrievalDataModule) -> dict[str, float]:
    """mAP of each model-free baseline (colour only, shape only) on the same split."""
    return {name: score_baseline(data.frame("gallery"), data.frame("query"), name) for name in BASELINES}


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Score the configured encoder and the baselines; log and return `{name/mAP: value}`."""
    pl.seed_everything(cfg.seed, verbose=False)
    items = build_items(cfg)
    encoder: Encoder = instantiate(cfg.encoder)
    make_data = instantiate(cfg.datamodule, _partial_=True)  # objects can't pass through OmegaConf
    data: RetrievalDataModule = make_data(items=items, eval_transform=eval_transform(encoder.preprocess))
    results = {f"{cfg.approach}/mAP": score_encoder(encoder, data)}
    results |= {f"baseline_{name}/mAP": value for name, value in score_baselines(data).items()}
    for key, value in results.items():
        log.info("%-40s %.4f", key, value)
    return results
