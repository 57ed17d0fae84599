"""`evaluate.py`: embed the gallery, index it in Milvus, search with the queries, and report quality and
speed (printed, saved in the run folder, sent to the loggers and appended to the leaderboard)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from visual_search.data.build import build_items
from visual_search.data.datamodule import RetrievalDataModule
from visual_search.data.items import ItemTable
from visual_search.data.transforms import Transform, eval_transform
from visual_search.detection import Detector, build_detector
from visual_search.detection.embed import CropSettings, crop_quality, crop_transform, embed_for_evaluation
from visual_search.encoders.base import Encoder
from visual_search.encoders.build import build_encoder
from visual_search.errors import UserError
from visual_search.evaluation import filters, timing
from visual_search.evaluation.baselines import BASELINES, score_baseline
from visual_search.evaluation.embed import Embedded, EmbeddingSettings, embed_split, embedding_settings
from visual_search.evaluation.embed_cache import encoder_fingerprint
from visual_search.evaluation.leaderboard import Leaderboard
from visual_search.evaluation.metrics import (
    ann_recall,
    exact_top_k,
    mean_average_precision,
    topk_metrics,
    topk_relevance,
)
from visual_search.evaluation.publish import publish
from visual_search.evaluation.report import leaderboard_row, qualitative_grid, query_table, summary_lines
from visual_search.index.milvus import STORED_FIELDS, MilvusIndex, SearchResult

log = logging.getLogger(__name__)


def category_filter(
    cfg: DictConfig, encoder: Encoder, items: ItemTable, gallery: Embedded, query: Embedded
) -> tuple[list[str] | None, dict[str, float]]:
    """Per-query filter values for the search (None: unfiltered) and the classifier's accuracy."""
    if cfg.filter not in filters.FILTERS:
        raise UserError(f"filter={cfg.filter!r}; choose one of {', '.join(filters.FILTERS)}")
    if cfg.filter == "none":
        return None, {}
    if cfg.filter == "oracle":
        log.info("filter=oracle: each query searches its true category (an upper bound, not a product)")
        return [items.classes[label] for label in query.labels], {}
    method = filters.resolve_classifier(cfg.classifier.method, encoder)
    predicted = filters.predict_labels(
        method, encoder, items.classes, cfg.classifier.template,
        gallery.embeddings, gallery.labels, query.embeddings,
    )  # fmt: skip
    accuracy = float(np.mean(predicted == query.labels)) if len(predicted) else float("nan")
    log.info("filter=predicted by the %s classifier: category accuracy %.4f", method, accuracy)
    return [items.classes[label] for label in predicted], {"category_accuracy": accuracy}


def quality(
    index: MilvusIndex,
    gallery: Embedded,
    query: Embedded,
    result: SearchResult,
    filter_values: list[str] | None,
    items: ItemTable,
    k: int,
) -> dict[str, float]:
    """Exact full-ranking mAP of the indexed vectors, the top-K metrics of what the index returned, and
    how much of the exact (same-filter) top K the approximate index found."""
    g = index.transform(gallery.embeddings)
    q = index.transform(query.embeddings)
    full = mean_average_precision(
        torch.from_numpy(q), query.labels, torch.from_numpy(g), gallery.labels, index.metric
    )
    allowed = None
    if filter_values is not None:
        wanted = np.array([items.classes.index(v) for v in filter_values])
        allowed = gallery.labels[None, :] == wanted[:, None]
    exact = exact_top_k(torch.from_numpy(q), torch.from_numpy(g), k, index.metric, allowed)
    return {
        "mAP": full,
        **topk_metrics(result.rows, query.labels, gallery.labels, k),
        f"ann_recall@{k}": ann_recall(result.rows, exact),
    }


def speed(
    cfg: DictConfig,
    encoder: Encoder,
    data: RetrievalDataModule,
    index: MilvusIndex,
    query: Embedded,
    filter_values: list[str] | None,
    batch_search_seconds: float,
    transform: Transform | None = None,
) -> dict[str, float]:
    """QPS and latency end to end (one at a time and batched), of the search alone, and of the encoder.
    `transform` (default: the encoder's) turns a decoded query image into the encoder's input."""
    n, k = cfg.timing.single_queries, cfg.k
    values = filter_values[:n] if filter_values is not None else None
    paths = query.frame["image"].tolist()[:n]
    results = {
        **timing.time_single_queries(encoder, transform or data.eval_transform, index, paths, k, values),
        "qps_batch": len(query.frame) / (query.seconds + batch_search_seconds),
        "qps_search": len(query.frame) / batch_search_seconds,
        **timing.time_single_searches(index, query.embeddings[:n], k, values),
    }
    if cfg.timing.forward_batches:
        batch_size = cfg.datamodule.batch_size
        results["encoder_ips"] = timing.encoder_throughput(encoder, batch_size, cfg.timing.forward_batches)
    return results


def gallery_fields(gallery: Embedded, label_field: str) -> pd.DataFrame:
    """The metadata stored beside each gallery vector (`label`: the relevance class, filtered on)."""
    frame = gallery.frame.reset_index()
    return frame.assign(label=frame[label_field].astype(str))[list(STORED_FIELDS)]


def index_gallery(
    cfg: DictConfig,
    encoder: Encoder,
    data: RetrievalDataModule,
    items: ItemTable,
    index: MilvusIndex,
    gallery: Embedded,
) -> str:
    """Fit the index's reduction (on the gallery or the training split) and index the gallery under the
    approach's collection name (reused when identical; the encoder's weights recorded with it).
    evaluate.py and serve.py both index here."""
    fit = embed_split(encoder, data, "train").embeddings if index.reduction.fit_on == "train" else None
    fields = gallery_fields(gallery, items.label_field)
    made_by = f"{cfg.approach} weights={encoder_fingerprint(encoder)[:12]}"
    return index.build(gallery.embeddings, fields, f"{items.name}_{cfg.approach}", fit, encoder=made_by)


def run_context() -> tuple[Path, str]:
    """This run's folder and its command-line overrides (plain values outside a Hydra run)."""
    if not HydraConfig.initialized():
        return Path.cwd(), ""
    hydra_cfg = HydraConfig.get()
    return Path(hydra_cfg.runtime.output_dir), " ".join(hydra_cfg.overrides.task)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate one approach end to end; returns its metrics."""
    pl.seed_everything(cfg.seed, verbose=False)
    run_dir, overrides = run_context()
    crops = CropSettings(**cfg.crop)
    crops.check_queries(cfg.queries)  # before any slow work
    items = build_items(cfg)
    encoder = build_encoder(cfg)
    make_data = instantiate(cfg.datamodule, _partial_=True)  # objects can't pass through OmegaConf
    data: RetrievalDataModule = make_data(items=items, eval_transform=eval_transform(encoder.preprocess))
    detector: Detector = build_detector(cfg)
    embedding = EmbeddingSettings(**cfg.get("embedding", {}))  # cache, processes
    index: MilvusIndex = instantiate(cfg.index)
    index.check_reachable()  # a Milvus server that is down fails here, not after the embedding
    with embedding_settings(embedding):
        gallery, query, boxes = embed_for_evaluation(
            encoder, data, items, detector, crops, cfg.queries, cfg.dataset
        )
    if len(boxes):
        boxes.to_csv(run_dir / "boxes.csv", index=False)
    with index, embedding_settings(embedding):
        index_gallery(cfg, encoder, data, items, index, gallery)
        filter_values, metrics = category_filter(cfg, encoder, items, gallery, query)
        if len(query.embeddings):  # untimed: Milvus Lite builds its index on the first search
            index.search(query.embeddings[:1], cfg.k)
        start = time.perf_counter()
        result = index.search(query.embeddings, cfg.k, filter_values)
        search_seconds = time.perf_counter() - start
        metrics = quality(index, gallery, query, result, filter_values, items, cfg.k) | metrics
        metrics |= crop_quality(boxes, query.frame, crops.padding)
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))  # kept if timing fails
        query_transform = crop_transform(detector, crops, data.eval_transform)
        metrics |= speed(cfg, encoder, data, index, query, filter_values, search_seconds, query_transform)
        setup = {
            "index": index.describe(),
            "filter": cfg.filter,
            "queries": cfg.queries,
            "detector": crops.describe(detector),
            "overrides": overrides,
            "checkpoint": cfg.get("checkpoint") or "",  # with the collection: what serve.py serves
            "collection": index.collection,
        }
    if cfg.baselines:
        metrics |= {
            f"baseline_{name}/mAP": score_baseline(gallery.frame, query.frame, name) for name in BASELINES
        }
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    relevance = topk_relevance(result.rows, query.labels, gallery.labels)
    predicted = filter_values if cfg.filter == "predicted" else None
    table = query_table(query, gallery, result, relevance, items.label_field, predicted)
    table.to_csv(run_dir / "queries.csv", index=False)
    grid = qualitative_grid(query, gallery, result, relevance, cfg.grid.queries)
    grid.save(run_dir / "retrievals.png")
    loggers = [instantiate(logger) for logger in cfg.logger.values()]
    publish(loggers, OmegaConf.to_container(cfg, resolve=True), metrics, table=table, image=grid)
    board = Leaderboard(cfg.leaderboard)
    board.append(leaderboard_row(cfg.approach, items.name, setup, metrics, str(run_dir)))

    title = f"{cfg.approach} on {items.name}: {setup['index']}, filter={cfg.filter}"
    for line in summary_lines(title, metrics, cfg.k):
        log.info(line)
    log.info(
        "results in %s (metrics.json, queries.csv, retrievals.png); leaderboard %s",
        run_dir,
        board.markdown_path,
    )
    return metrics
