"""The objects the page offers to search (`POST /detect`, `POST /search/objects`): found by the served run's
own detector when it has one, else by the page's detector (`page.detector`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from omegaconf import DictConfig

from visual_search.detect import Detections, Detector, NoDetector, build_detector
from visual_search.detect import boxes as B
from visual_search.errors import UserError

log = logging.getLogger(__name__)
CHOICES = ("auto", "trained", "foreground", "none")


def page_detector(
    page: DictConfig | None, run_detector: Detector, dataset_root: Path, inference: Mapping | None
) -> Detector:
    """`run_detector` when it detects; else as `page.detector` says: `auto` (the trained detector when
    one is cached for this dataset, else the classical foreground one), `trained` (trained on first use),
    `foreground` or `none`."""
    if not isinstance(run_detector, NoDetector):
        return run_detector
    choice = str(page.detector) if page is not None else "none"
    if choice not in CHOICES:
        raise UserError(f"page.detector={choice!r}; choose one of {', '.join(CHOICES)}")
    if choice == "none":
        return NoDetector()
    if choice in ("auto", "trained"):
        trained = build_detector(page.detectors.trained, dataset_root, inference, train=choice == "trained")
        if trained is not None:
            log.info("the page's objects: the trained detector")
            return trained
        log.info("the page's objects: the foreground detector (no trained detector cached for this data)")
    return build_detector(page.detectors.foreground, dataset_root, inference)


def objects(detections: Detections, width: int, height: int, detector: Detector) -> list[dict]:
    """Each usable detected object (clamped to the image, at least 2 px a side), largest first: its box
    in pixels, score and class name (None when unnamed)."""
    clamped = B.clamp(detections.boxes, width, height)
    usable = B.is_valid(clamped, 2.0)
    found = [
        {"box": [float(v) for v in box], "score": float(score), "label": detector.label_name(int(label))}
        for box, score, label, ok in zip(
            clamped.tolist(),
            detections.scores.tolist(),
            detections.labels.tolist(),
            usable.tolist(),
            strict=True,
        )
        if ok
    ]
    return sorted(found, key=lambda o: -(o["box"][2] - o["box"][0]) * (o["box"][3] - o["box"][1]))
