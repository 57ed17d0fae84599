"""The fine-tuning recipe, lever by lever, on real images no one here drew: the emoji catalogue (Google
drawings = gallery, Twitter drawings = queries, split by emoji; benchmarks/emoji.py) or the icon catalogue
(Phosphor outline drawings = gallery, solid drawings = queries, split by icon; benchmarks/icons.py). Each
row is a real `python train.py` run (the best checkpoint by validation mAP, then evaluated like
evaluate.py), on this benchmark's own leaderboard, beside the pretrained encoder it starts from.

    python -m benchmarks.recipe                  # every group below: about 4 h on 2 cores
    python -m benchmarks.recipe --only baseline levers default   # the levers table (about 55 min)
    python -m benchmarks.recipe --only seeds     # the default against the category head alone, two seeds
    python -m benchmarks.recipe --only search    # an Optuna search (about 70 min)
    python -m benchmarks.recipe --only wide      # the second search: the first one's best region, the loss
    python -m benchmarks.recipe --only baseline clip   # experiment=clip_finetune's levers
    python -m benchmarks.recipe --data icons --only baseline default

Results: outputs/benchmarks/recipe/<data>_<time>/{leaderboard.csv, report.md} and every run's folder (with its
curves.png).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
from pathlib import Path

import pandas as pd

from benchmarks.quality import CATALOGS, catalog_data, results_table, run_all
from benchmarks.report import markdown_table

ROOT = Path(__file__).resolve().parents[1]
HEAD = [  # the category head alone, the default until the wide search (docs/training.md)
    *("loss=cross_entropy", "model.unfreeze_last=8", "model.lr=3.0e-3", "model.backbone_lr=5.0e-4"),
    "augment.color_jitter=0.2",
]
OLD = [*HEAD, "trainer.max_epochs=3", "trainer.max_time=null"]  # the first recipe: 3 epochs
BUDGET = ["trainer.max_epochs=40", "trainer.max_time=00:00:08:00"]  # early stopping decides, within 8 min
SEARCH = [  # Optuna over conf/hparams_search/optuna.yaml's space: 10 trials of at most 5 min each
    *("hparams_search=optuna", "hydra.sweeper.n_trials=10", "hydra.sweeper.sampler.n_startup_trials=4"),
    "loss=cross_entropy", "trainer.max_time=00:00:05:00",  # its objective (the rest is searched)
]  # fmt: skip
WIDE = [  # Optuna over conf/hparams_search/optuna_wide.yaml's space: 12 trials, each until early stopping
    *("hparams_search=optuna_wide", "hydra.sweeper.n_trials=12", "hydra.sweeper.sampler.n_startup_trials=4"),
]
CATEGORY_TITLES = 'datamodule.titles="{category}: {title}"'  # image-title pairs that name the category
RUNS = [  # (group, script, overrides); the levers on top of the category head alone, as they were measured
    ("baseline", "evaluate.py", ["experiment=efficientnet_lite0_pretrained"]),
    ("baseline", "train.py", OLD),
    ("levers", "train.py", [*HEAD, *BUDGET]),
    ("levers", "train.py", [*HEAD, *BUDGET, "model.projection_dim=128"]),
    ("levers", "train.py", [*HEAD, *BUDGET, "loss=head_and_metric"]),
    ("levers", "train.py", [*HEAD, *BUDGET, "model.unfreeze_last=-1"]),
    ("levers", "train.py", [*HEAD, *BUDGET, "encoder.input_size=224"]),
    ("default", "train.py", []),  # the default recipe (Optuna's pick), as `python train.py` runs it
    ("search", "train.py", SEARCH),  # every trial a row; the best by validation mAP is Optuna's pick
    ("wide", "train.py", WIDE),
    *(("seeds", "train.py", [f"seed={seed}", *recipe]) for seed in (42, 7) for recipe in (HEAD, [])),
    ("clip", "train.py", ["experiment=clip_finetune", "trainer.max_epochs=3"]),  # CLIP levers, 3 epochs
    ("clip", "train.py", ["experiment=clip_finetune", "trainer.max_epochs=3", "model.backbone_lr=1.0e-4"]),
    ("clip", "train.py", ["experiment=clip_finetune", "trainer.max_epochs=3", "model.lock_image=true"]),
    ("clip", "train.py", ["experiment=clip_finetune", "trainer.max_epochs=3", CATEGORY_TITLES]),
    ("clip", "train.py", ["experiment=clip_finetune", *BUDGET]),  # until early stopping, within 8 min
    ("clip", "train.py", ["experiment=clip_finetune"]),  # the experiment's default: the same, within 30 min
]
TITLES = {  # what each catalogue searches with what
    "emoji": "Google drawings = gallery, Twitter = queries",
    "icons": "outline drawings = gallery, solid = queries",
}
COLUMNS = [
    *("approach", "overrides", "mAP", "mAP@10", "recall@10"),
    *("val_mAP_best", "train_seconds", "train_images_per_s"),
]


def figures(run_dir: Path, out: Path, prefix: str) -> list[str]:
    """Markdown links to a run's curves and retrievals, copied into `out` as <prefix>_<name>.png."""
    links = []
    for name in ("curves", "retrievals"):
        if (run_dir / f"{name}.png").is_file():
            shutil.copy(run_dir / f"{name}.png", out / f"{prefix}_{name}.png")
            links.append(f"![{prefix} {name}]({prefix}_{name}.png)")
    return links


def report(out: Path, data_name: str, data: list[str]) -> str:
    """report.md of the runs on `out`'s leaderboard: their table, the best against the pretrained encoder,
    Optuna's pick, and the default recipe's curves and retrievals."""
    board = pd.read_csv(out / "leaderboard.csv")
    table = results_table(board, data, COLUMNS)
    pretrained = board.loc[board["approach"].str.endswith("pretrained"), "mAP"]
    lines = [
        f"# The fine-tuning recipe on the {data_name} catalogue ({TITLES[data_name]})\n",
        f"Every run: `{' '.join(data)} logger=none`.\n",
        markdown_table(table),
    ]
    if len(pretrained):
        best = table.loc[table["mAP"].idxmax()]
        ratio = best["mAP"] / pretrained.iloc[0]
        name = f"`{best['overrides']}`" if best["overrides"] else "the default recipe"
        shown = f"{name}, {best['mAP']:.3f} = {ratio:.2f}x the pretrained encoder's"
        lines.append(f"\nBest mAP: {shown}.")
    trials = table[table["overrides"].str.contains("hparams_search=", regex=False)]
    if len(trials):
        pick = trials.loc[trials["val_mAP_best"].idxmax()]
        lines.append(
            f"\nOptuna's pick (the best validation mAP of {len(trials)} trials): `{pick['overrides']}`: "
            f"mAP {pick['mAP']:.3f}, mAP@10 {pick['mAP@10']:.3f}."
        )
    default = board[table["overrides"] == ""]
    if len(default) and isinstance(default["run_dir"].iloc[0], str):
        shown = figures(Path(default["run_dir"].iloc[0]), out, "default")
        lines += ["\nThe default recipe's validation curves and first queries' results:\n", *shown]
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=sorted({group for group, _, _ in RUNS}), default=[])
    parser.add_argument("--data", choices=list(CATALOGS), default="emoji", help="the real-image catalogue")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-run", action="store_true", help="only (re)write the report of --out's runs")
    args = parser.parse_args()
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = args.out or ROOT / "outputs" / "benchmarks" / "recipe" / f"{args.data}_{stamp}"
    data = catalog_data(args.data, out)
    if not args.no_run:
        run_all(RUNS, data, args.only)
    print(report(out, args.data, data))


if __name__ == "__main__":
    main()
