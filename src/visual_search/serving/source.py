"""What `serve.py` serves: the best run on the leaderboard, a chosen evaluate run, or a trained checkpoint.

A run is served exactly as it was evaluated: its own composed config (`<run>/.hydra/config.yaml`) gives the
dataset, encoder (with its checkpoint), detector and index, and its leaderboard row the approach and the
Milvus collection it built.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

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


def best_run(leaderboard: Path) -> Served:
    """The best leaderboard row whose run folder still exists."""
    table = Leaderboard(leaderboard).read()
    for row in table.to_dict("records"):
        run_dir = Path(str(row.get("run_dir", "")))
        if (run_dir / ".hydra" / "config.yaml").is_file():
            return _served_run(run_dir, run_config(run_dir), row)
        log.warning("leaderboard row of %s skipped: its run folder %s is gone", row.get("approach"), run_dir)
    where = (
        f"no run to serve on the leaderboard {leaderboard}"
        if len(table)
        else f"no leaderboard at {leaderboard}"
    )
    raise UserError(f"{where}: {HOW_TO_CREATE}")


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
    return best_run(leaderboard_path(cfg))
