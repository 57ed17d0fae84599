"""What `serve.py` serves: the best comparable run on the leaderboard, a chosen evaluate run, or a
trained checkpoint.

A run is served exactly as it was evaluated: its own composed config (`<run>/.hydra/config.yaml`) gives the
dataset, encoder (with its checkpoint), detector and index, and its leaderboard row the approach and the
Milvus collection it built.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from visual_search.data.build import build_items
from visual_search.errors import UserError
from visual_search.evaluation.leaderboard import Leaderboard

log = logging.getLogger(__name__)

HOW_TO_CREATE = "evaluate a model first (`python evaluate.py`), or give run=<evaluate run folder>"


@dataclass(frozen=True)
class Served:
    """The config of the model, data and index to serve, and where it came from."""

    cfg: DictConfig
    source: str  # a run folder, or the checkpoint file
    collection: str | None = None  # the Milvus collection the run built, when it recorded one
    row: dict | None = None  # the run's leaderboard row


def run_config(run_dir: Path) -> DictConfig:
    """The composed config an evaluate run saved; UserError when the folder is not a run."""
    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        raise UserError(
            f"run={run_dir} is not an evaluate run folder (no .hydra/config.yaml); {HOW_TO_CREATE}"
        )
    return OmegaConf.load(path)


def leaderboard_path(cfg: DictConfig) -> Path:
    """The leaderboard a config writes to (`paths.leaderboard`; a root `leaderboard` in older runs)."""
    return Path(OmegaConf.select(cfg, "paths.leaderboard", default=None) or cfg.leaderboard)


def _recorded(row: dict, column: str) -> str | None:
    value = row.get(column)
    return value if isinstance(value, str) and value else None  # an empty CSV cell reads as NaN


def _served_run(run_dir: Path, cfg: DictConfig, row: dict) -> Served:
    # What the run evaluated, as it recorded it: the saved config leaves `approach` as an interpolation
    # of that run's Hydra choices, and train.py evaluates a checkpoint its saved config does not name.
    cfg.approach = str(row["approach"])
    cfg.checkpoint = _recorded(row, "checkpoint") or cfg.get("checkpoint")
    return Served(cfg, str(run_dir), _recorded(row, "collection"), row)


def comparable(table: pd.DataFrame, dataset_id: str) -> pd.DataFrame:
    """The rows a server of `dataset_id` may choose from: scored on that data, on its item queries, by a
    real run (not a debug config), with a filter a server can apply (not the oracle's true labels)."""
    needed = {"dataset_id", "debug", "filter", "queries"}
    if not needed <= set(table.columns):
        return table.iloc[:0]
    keep = (
        (table["dataset_id"] == dataset_id)
        & (table["debug"] == "none")
        & (table["filter"] != "oracle")
        & (table["queries"] == "items")
    )
    return table[keep]


def describe_row(row: dict) -> str:
    """`<approach> (<weights>): mAP <value>` for the log."""
    return f"{row.get('approach')} ({row.get('weights')}): mAP {float(row.get('mAP', float('nan'))):.4f}"


def best_run(leaderboard: Path, dataset_id: str) -> Served:
    """The best leaderboard row comparable to a server of `dataset_id` (see `comparable`) whose run
    folder still exists; the choice, and the runner-up, are logged."""
    table = Leaderboard(leaderboard).read()
    if not len(table):
        raise UserError(f"no leaderboard at {leaderboard}: {HOW_TO_CREATE}")
    rows = comparable(table, dataset_id).to_dict("records")
    for rank, row in enumerate(rows):
        run_dir = Path(str(row.get("run_dir", "")))
        if not (run_dir / ".hydra" / "config.yaml").is_file():
            log.warning(
                "leaderboard row of %s skipped: its run folder %s is gone", row.get("approach"), run_dir
            )
            continue
        runner_up = next((describe_row(r) for r in rows[rank + 1 :]), "none")
        log.info(
            "serving the best of %d comparable rows (dataset %s, item queries, no debug config, no oracle "
            "filter): %s; runner-up: %s",
            len(rows), dataset_id, describe_row(row), runner_up,
        )  # fmt: skip
        return _served_run(run_dir, run_config(run_dir), row)
    others = len(table) - len(rows)
    raise UserError(
        f"no run to serve on the leaderboard {leaderboard} for dataset {dataset_id} (the data serve.py is "
        f"given: dataset=...): {others} row(s) of other data, debug runs, scene queries or filter=oracle, "
        f"{len(rows)} whose folder is gone; {HOW_TO_CREATE}"
    )


def chosen_run(run_dir: Path) -> Served:
    """An explicit run folder, with its row from the leaderboard that run wrote to."""
    cfg = run_config(run_dir)
    leaderboard = leaderboard_path(cfg)
    rows = Leaderboard(leaderboard).read()
    if "run_dir" in rows:
        for row in rows.to_dict("records"):
            if Path(str(row["run_dir"])).resolve() == run_dir:
                return _served_run(run_dir, cfg, row)
    raise UserError(
        f"run={run_dir} has no row on its leaderboard {leaderboard}: it did not finish; re-run evaluate.py"
    )


def choose(cfg: DictConfig) -> Served:
    """The run or checkpoint `cfg` asks for (`run=`, `checkpoint=`), else the best leaderboard run."""
    if cfg.run and cfg.checkpoint:
        raise UserError("give run=<evaluate run folder> or checkpoint=<file>, not both")
    if cfg.checkpoint:
        checkpoint = Path(cfg.checkpoint).expanduser().resolve()
        if not checkpoint.is_file():
            raise UserError(f"checkpoint={cfg.checkpoint}: file not found")
        return Served(cfg, str(checkpoint))
    if cfg.run:
        return chosen_run(Path(cfg.run).expanduser().resolve())
    leaderboard = leaderboard_path(cfg)
    if not leaderboard.is_file():
        raise UserError(f"no leaderboard at {leaderboard}: {HOW_TO_CREATE}")
    return best_run(leaderboard, build_items(cfg).identity)
