"""Evaluating a pipeline end to end: index the gallery, search with the queries, measure quality and
speed, and record the run (printed, saved in the run folder, sent to the loggers, appended to the
leaderboard). evaluate.py and train.py's final evaluation both run `evaluate_pipeline`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from visual_search.data.scenes import QUERY_SOURCES, scene_queries
from visual_search.detect.crop import CropSettings
from visual_search.embed.embedder import Embedded
from visual_search.errors import UserError
from visual_search.evaluation.leaderboard import Leaderboard
from visual_search.evaluation.publish import publish
from visual_search.evaluation.quality import crop_quality, retrieval_quality
from visual_search.evaluation.report import leaderboard_row, qualitative_grid, query_table, summary_lines
from visual_search.evaluation.speed import speed, timed_search
from visual_search.index.search import SearchResult
from visual_search.metrics.baselines import score_baselines
from visual_search.metrics.retrieval import topk_relevance
from visual_search.pipeline import Pipeline
from visual_search.search.classifier import check_filter

log = logging.getLogger(__name__)


def check_settings(cfg: DictConfig) -> None:
    """UserError now, before any slow work, for evaluation settings that cannot work."""
    check_filter(cfg.filter)
    if cfg.queries not in QUERY_SOURCES:
        raise UserError(f"queries={cfg.queries!r}; choose one of {', '.join(QUERY_SOURCES)}")
    if cfg.crop.user_box and cfg.queries != "scenes":
        raise UserError(f"crop.user_box={cfg.crop.user_box} needs queries=scenes (their boxes are known)")
    if isinstance(cfg.k, bool) or not isinstance(cfg.k, int) or cfg.k < 1:
        raise UserError(f"k={cfg.k!r}; expected a positive number of results")
    CropSettings(**cfg.crop)  # its own one-line errors (policy, user_box)
    checkpoint = cfg.get("checkpoint")
    if checkpoint and not Path(checkpoint).expanduser().is_file():
        raise UserError(f"checkpoint={checkpoint}: no such file (train.py writes them under outputs/train/)")


@dataclass(frozen=True)
class RunContext:
    """This run's folder, its command-line overrides and its debug config (`none`: a real run)."""

    folder: Path
    overrides: str = ""
    debug: str = "none"

    @classmethod
    def current(cls) -> RunContext:
        """The Hydra run's (plain values outside one)."""
        if not HydraConfig.initialized():
            return cls(Path.cwd())
        hydra_cfg = HydraConfig.get()
        debug = hydra_cfg.runtime.choices.get("debug") or "none"
        return cls(Path(hydra_cfg.runtime.output_dir), " ".join(hydra_cfg.overrides.task), debug)


def embed_queries(pipeline: Pipeline, source: str, user_box: str | None) -> tuple[pd.DataFrame, Embedded]:
    """The query frame (the query split, or the scene queries) and its embeddings; scene queries are cut
    to their true boxes with `user_box=ground_truth`."""
    frame = scene_queries(pipeline.items) if source == "scenes" else pipeline.items.split("query")
    user_boxes = frame["box"].tolist() if user_box == "ground_truth" else None
    return frame, pipeline.embed_queries(frame, user_boxes, desc=f"{source} queries")


def category_filter(
    pipeline: Pipeline, mode: str, query: Embedded
) -> tuple[list[str] | None, dict[str, float]]:
    """Per-query filter values for the search (None: unfiltered) and the classifier's accuracy."""
    classes = pipeline.items.classes
    if mode == "none":
        return None, {}
    if mode == "oracle":
        log.info("filter=oracle: each query searches its true category (an upper bound, not a product)")
        return [classes[label] for label in query.labels], {}
    predicted = pipeline.predict_categories(query.embeddings)
    truth = [classes[label] for label in query.labels]
    accuracy = float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)])) if truth else np.nan
    log.info(
        "filter=predicted by the %s classifier: category accuracy %.4f", pipeline.classifier.method, accuracy
    )
    return predicted, {"category_accuracy": accuracy}


def evaluate_pipeline(
    pipeline: Pipeline, cfg: DictConfig, known: dict[str, float] | None = None
) -> dict[str, float]:
    """Evaluate `pipeline` as `cfg` says (k, filter, queries, crop, evaluation); returns its metrics, with
    `known` ones (e.g. the training time) recorded beside them."""
    run = RunContext.current()
    gallery = pipeline.index_gallery()
    frame, query = embed_queries(pipeline, cfg.queries, cfg.crop.user_box)
    filter_values, metrics = category_filter(pipeline, cfg.filter, query)
    metrics |= known or {}
    result, search_seconds = timed_search(pipeline, query.embeddings, cfg.k, filter_values)
    metrics = retrieval_quality(pipeline, gallery, query, result, filter_values, cfg.k) | metrics
    metrics |= crop_quality(query, frame, pipeline.cropper.settings.padding)
    (run.folder / "metrics.json").write_text(json.dumps(metrics, indent=2))  # kept if timing fails

    def embed_again() -> Embedded:  # the batched end-to-end figure's later rounds
        return embed_queries(pipeline, cfg.queries, cfg.crop.user_box)[1]

    timing = cfg.evaluation.timing
    metrics |= speed(pipeline, query, embed_again, filter_values, search_seconds, cfg.k, timing)
    if cfg.evaluation.baselines:
        metrics |= score_baselines(gallery.frame, query.frame)
    record(pipeline, cfg, run, gallery, query, result, filter_values, metrics)
    return metrics


def record(
    pipeline: Pipeline,
    cfg: DictConfig,
    run: RunContext,
    gallery: Embedded,
    query: Embedded,
    result: SearchResult,
    filter_values: list[str] | None,
    metrics: dict[str, float],
) -> None:
    """What the run leaves behind: metrics.json, boxes.csv, queries.csv, retrievals.png, the loggers'
    runs and the leaderboard row (with what makes rows comparable: the dataset's identity, queries,
    filter, k, debug config, and where the weights came from); and the summary, printed."""
    run_dir = run.folder
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    boxes = {name: e.boxes for name, e in (("gallery", gallery), ("query", query)) if e.boxes is not None}
    if boxes:
        pd.concat(boxes, names=["split"]).reset_index().to_csv(run_dir / "boxes.csv", index=False)
    relevance = topk_relevance(result.rows, query.labels, gallery.labels)
    predicted = filter_values if cfg.filter == "predicted" else None
    table = query_table(query, gallery, result, relevance, pipeline.items.label_field, predicted)
    table.to_csv(run_dir / "queries.csv", index=False)
    grid = qualitative_grid(query, gallery, result, relevance, cfg.evaluation.grid.queries)
    grid.save(run_dir / "retrievals.png")
    loggers = [instantiate(logger) for logger in cfg.logger.values()]
    publish(loggers, OmegaConf.to_container(cfg, resolve=True), metrics, table=table, image=grid)
    setup = {
        "dataset_id": pipeline.items.identity,
        "weights": pipeline.encoder.weights,
        "index": pipeline.describe(),
        "filter": cfg.filter,
        "queries": cfg.queries,
        "k": cfg.k,
        "debug": run.debug,
        "detector": pipeline.cropper.describe(),
        "overrides": run.overrides,
        "checkpoint": cfg.get("checkpoint") or "",  # with the collection: what serve.py serves
        "collection": pipeline.index.collection,
    }
    board = Leaderboard(cfg.paths.leaderboard)
    board.append(leaderboard_row(pipeline.approach, pipeline.items.name, setup, metrics, str(run_dir)))
    title = (
        f"{pipeline.approach} ({setup['weights']}) on {pipeline.items.identity}: {setup['index']}, "
        f"filter={cfg.filter}"
    )
    for line in summary_lines(title, metrics, cfg.k):
        log.info(line)
    log.info(
        "results in %s (metrics.json, queries.csv, retrievals.png); leaderboard %s",
        run_dir,
        board.markdown_path,
    )
