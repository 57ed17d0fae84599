"""Quality on real images no one here drew: every approach on the emoji catalogue (cross-vendor
retrieval, relevance = same subcategory; see benchmarks/emoji.py), through the real entry scripts, each
run landing on this benchmark's own leaderboard.

    python -m benchmarks.quality                 # all runs (about 90 min on 2 cores)
    python -m benchmarks.quality --only pretrained

Results: outputs/benchmarks/quality/<time>/{leaderboard.csv, report.md} and every run's folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path

import pandas as pd

from benchmarks import emoji, icons
from benchmarks.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
# (group, script, overrides): evaluate.py runs score pretrained encoders, train.py runs fine-tune and score
RUNS = [
    ("pretrained", "evaluate.py", ["experiment=efficientnet_lite0_pretrained"]),
    ("pretrained", "evaluate.py", ["experiment=efficientnet_lite0_pretrained", "encoder.input_size=128"]),
    ("pretrained", "evaluate.py", ["experiment=efficientnet_lite0_pretrained", "filter=predicted"]),
    ("pretrained", "evaluate.py", ["experiment=efficientnet_lite0_pretrained", "filter=oracle"]),
    (
        "pretrained",
        "evaluate.py",
        ["experiment=efficientnet_lite0_pretrained", "index/reduction=pca", "index.reduction.dim=128"],
    ),
    (
        "pretrained",
        "evaluate.py",
        ["experiment=efficientnet_lite0_pretrained", "index/reduction=pca", "index.reduction.dim=32"],
    ),
    ("finetuned", "train.py", ["experiment=efficientnet_lite0_finetune"]),
    ("finetuned", "train.py", ["experiment=efficientnet_lite0_finetune", "filter=predicted"]),
    ("finetuned", "train.py", ["experiment=efficientnet_lite0_finetune", "model.projection_dim=128"]),
    ("finetuned", "train.py", ["experiment=efficientnet_lite0_finetune", "loss=multi_similarity"]),
    ("finetuned", "train.py", ["experiment=clip_finetune"]),
]
COLUMNS = [
    "approach",
    "overrides",
    "index",
    "filter",
    "mAP",
    "mAP@10",
    "recall@10",
    "qps_single",
    "qps_search_batch",
]
BASELINE_COLUMNS = ["baseline_raw_pixels/mAP", "baseline_color_histogram/mAP", "baseline_silhouette/mAP"]


def run_all(runs: list[tuple[str, str, list[str]]], data: list[str], only: Collection[str] = ()) -> None:
    """Each (group, script, overrides) run of `runs` (those of the groups `only` names, when it names any)
    as a user runs it, on `data` (the dataset and log-dir overrides every run shares); a failed run is
    reported and skipped."""
    for group, script, overrides in runs:
        if only and group not in only:
            continue
        print(f"{script} {' '.join(overrides)}", flush=True)
        result = subprocess.run(
            [sys.executable, str(ROOT / script), *data, *overrides, "logger=none"], cwd=ROOT
        )
        if result.returncode != 0:
            print(f"  failed with exit code {result.returncode}", flush=True)


def results_table(board: pd.DataFrame, data: list[str], columns: list[str]) -> pd.DataFrame:
    """The leaderboard's `columns`, each run's overrides without those every run shares."""
    table = board[[c for c in columns if c in board]].copy()
    shared = {*data, "logger=none"}  # every run's: shown once, above the table
    table["overrides"] = [" ".join(o for o in row.split() if o not in shared) for row in table["overrides"]]
    return table


CATALOGS = {"emoji": emoji.build, "icons": icons.build}  # real-image catalogues: name -> builder


def catalog_data(name: str, out: Path) -> list[str]:
    """The overrides that point a run at catalogue `name` of CATALOGS (built if needed) and log to `out`."""
    catalog = CATALOGS[name](ROOT / "outputs" / "benchmarks" / name)
    return ["dataset=catalog", "dataset/split=column", f"dataset.path={catalog}", f"paths.log_dir={out}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["pretrained", "finetuned"], default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = args.out or ROOT / "outputs" / "benchmarks" / "quality" / stamp
    data = catalog_data("emoji", out)
    run_all(RUNS, data, [args.only] if args.only else [])
    board = pd.read_csv(out / "leaderboard.csv")
    table = results_table(board, data, COLUMNS)
    baselines = board[[c for c in BASELINE_COLUMNS if c in board]].dropna().head(1)
    report = [
        "# Quality on the emoji catalogue (Google drawings = gallery, Twitter drawings = queries)\n",
        f"Every run: `{' '.join(data)} logger=none`.\n",
        markdown_table(table),
        "\nModel-free baselines (mAP):\n",
        markdown_table(baselines) if len(baselines) else "(none)",
    ]
    (out / "report.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))


if __name__ == "__main__":
    main()
