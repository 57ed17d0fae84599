"""The comparison report: when compare.py's multirun ends, every job's outcome (`comparison.json`) becomes
one table (report.md and report.csv), a mAP-against-QPS plot, the approaches' retrieval grids side by side
and a W&B table, in the sweep's folder; its path is the last line printed."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

RESULT_FILE = "comparison.json"
# What the report shows of each approach (and what a job keeps of its metrics), in order.
COLUMNS = (
    "approach", "weights", "queries", "status", "mAP", "mAP@10", "recall@10", "qps_single", "qps_batch",
    "train_seconds", "dataset_id", "reason", "run_dir",
)  # fmt: skip


def gather(sweep_dir: Path) -> pd.DataFrame:
    """One row per job of the sweep, in job order, with the report's columns."""
    rows = [json.loads(path.read_text()) for path in sorted(sweep_dir.glob(f"*/{RESULT_FILE}"))]
    table = pd.DataFrame(rows)
    return table.reindex(columns=[c for c in COLUMNS if c in table.columns or c in ("approach", "status")])


def markdown(table: pd.DataFrame, dataset: str) -> str:
    """The report's text: the table (best mAP first; skipped and failed approaches last, with why)."""
    done = table[table["status"] == "done"].sort_values("mAP", ascending=False, kind="stable")
    rest = table[table["status"] != "done"]
    shown = pd.concat([done, rest]).drop(columns=["run_dir", "dataset_id"], errors="ignore")
    shown = shown.astype(object).where(shown.notna(), None)
    lines = [
        f"# Comparison on {dataset}",
        "",
        f"{len(done)} of {len(table)} approaches ran; mAP ranks the whole gallery, QPS is end to end.",
        "",
        shown.to_markdown(index=False, floatfmt=".4g", missingval=""),
        "",
        "![mAP against QPS](map_vs_qps.png)",
        "",
        "![retrievals](retrievals.png)",
        "",
    ]
    return "\n".join(lines)


def plot(table: pd.DataFrame, path: Path) -> None:
    """mAP against one-at-a-time QPS, one labelled point per approach that ran."""
    done = table[(table["status"] == "done") & table.get("qps_single", pd.Series(dtype=float)).notna()]
    figure, axis = plt.subplots(figsize=(6, 4))
    for row in done.itertuples():
        axis.scatter(row.qps_single, row.mAP)
        axis.annotate(
            row.approach, (row.qps_single, row.mAP), fontsize=7, xytext=(4, 4), textcoords="offset points"
        )
    axis.margins(x=0.35, y=0.15)  # room for the labels
    axis.set_xlabel("QPS, one query at a time (end to end)")
    axis.set_ylabel("mAP")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def side_by_side(table: pd.DataFrame, path: Path, height: int = 360) -> None:
    """Each approach's retrieval grid (its run's retrievals.png), scaled to one height, labelled, in a row."""
    tiles = []
    for row in table[table["status"] == "done"].itertuples():
        grid = Path(str(row.run_dir)) / "retrievals.png"
        if grid.is_file():
            image = Image.open(grid).convert("RGB")
            image = image.resize((max(1, image.width * height // image.height), height))
            tiles.append((row.approach, image))
    if not tiles:
        return
    label = 16
    canvas = Image.new("RGB", (sum(t.width for _, t in tiles) + 10 * len(tiles), height + label), "white")
    draw, font, x = ImageDraw.Draw(canvas), ImageFont.load_default(), 0
    for name, tile in tiles:
        draw.text((x + 2, 2), str(name), fill="black", font=font)
        canvas.paste(tile, (x, label))
        x += tile.width + 10
    canvas.save(path)


def publish_table(table: pd.DataFrame, folder: Path, dataset: str, logger_cfg: DictConfig) -> None:
    """The report's table as a W&B Table in a comparison run of its own (offline unless told otherwise)."""
    wandb_cfg = (logger_cfg or {}).get("wandb")
    if wandb_cfg is None:
        return
    from pytorch_lightning.loggers import WandbLogger

    logger = WandbLogger(
        project=wandb_cfg.get("project", "visual-search"),
        name=f"compare/{dataset}",
        group=str(wandb_cfg.get("group", "compare")),
        tags=["compare", dataset],
        save_dir=str(folder),
        offline=wandb_cfg.get("offline", True),
    )
    logger.log_table("comparison", dataframe=table.astype(str))
    logger.experiment.finish()


class ComparisonReport(Callback):
    """Hydra callback of compare.py: writes the report when the multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(config.hydra.sweep.dir)
        table = gather(folder)
        if table.empty:
            log.warning("no job of the comparison left an outcome in %s", folder)
            return
        dataset = ", ".join(sorted(set(table.get("dataset_id", pd.Series(dtype=str)).dropna()))) or "?"
        table.to_csv(folder / "report.csv", index=False)
        plot(table, folder / "map_vs_qps.png")
        side_by_side(table, folder / "retrievals.png")
        (folder / "report.md").write_text(markdown(table, dataset))
        publish_table(table, folder, dataset, config.get("logger"))
        print(f"comparison report: {folder / 'report.md'}", flush=True)
