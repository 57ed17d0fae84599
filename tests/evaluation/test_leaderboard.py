"""The local leaderboard: sorting, column union, Markdown, atomic and concurrent appends."""

from __future__ import annotations

import math
import multiprocessing
from pathlib import Path

import pytest

from visual_search.errors import UserError
from visual_search.evaluation.leaderboard import Leaderboard


def test_append_sorts_descending_with_nan_last(tmp_path: Path):
    board = Leaderboard(tmp_path / "outputs" / "leaderboard.csv")  # parent directory does not exist yet
    board.append({"approach": "b", "mAP": 0.5})
    board.append({"approach": "failed", "mAP": float("nan")})
    table = board.append({"approach": "a", "mAP": 0.7})
    assert table["approach"].tolist() == ["a", "b", "failed"]
    assert board.read()["approach"].tolist() == ["a", "b", "failed"]
    assert board.read()["mAP"].tolist()[:2] == [0.7, 0.5]


def test_sort_by_another_metric(tmp_path: Path):
    board = Leaderboard(tmp_path / "lb.csv", sort_by="qps_single")
    board.append({"approach": "slow", "mAP": 0.9, "qps_single": 3.0})
    board.append({"approach": "fast", "mAP": 0.1, "qps_single": 30.0})
    assert board.read()["approach"].tolist() == ["fast", "slow"]


def test_union_of_columns_keeps_order(tmp_path: Path):
    board = Leaderboard(tmp_path / "lb.csv")
    board.append({"approach": "a", "mAP": 0.5, "mAP@10": 0.6})
    board.append({"approach": "b", "recall@10": 0.1, "mAP": 0.6})
    table = board.read()
    assert table.columns.tolist() == ["approach", "mAP", "mAP@10", "recall@10"]
    assert (tmp_path / "lb.csv").read_text().splitlines() == [
        "approach,mAP,mAP@10,recall@10",
        "b,0.6,,0.1",
        "a,0.5,0.6,",
    ]


def test_markdown_has_title_rank_key_columns_and_blank_missing_values(tmp_path: Path):
    board = Leaderboard(tmp_path / "leaderboard.csv")
    board.append({"approach": "a", "mAP": 0.5, "overrides": "x" * 500})
    board.append({"approach": "b", "mAP": 0.71234, "qps_single": 35.2, "ann_recall@10": 1.0})
    lines = (tmp_path / "leaderboard.md").read_text().splitlines()
    assert lines[0].startswith("# ")
    header, rows = lines[2], lines[4:]
    assert [cell.strip() for cell in header.strip("|").split("|")] == [
        "rank",
        "approach",
        "mAP",
        "qps_single",
    ]
    assert [[cell.strip() for cell in row.strip("|").split("|")] for row in rows] == [
        ["1", "b", "0.7123", "35.2000"],
        ["2", "a", "0.5000", ""],
    ]
    assert (
        (tmp_path / "leaderboard.csv")
        .read_text()
        .startswith("approach,mAP,overrides,qps_single,ann_recall@10")
    )


def test_markdown_ranks_each_dataset_on_its_own(tmp_path: Path):
    board = Leaderboard(tmp_path / "leaderboard.csv")
    board.append({"approach": "a", "mAP": 0.9, "dataset_id": "shop-1"})
    board.append({"approach": "b", "mAP": 0.5, "dataset_id": "synthetic-2"})
    board.append({"approach": "c", "mAP": 0.7, "dataset_id": "shop-1"})
    text = (tmp_path / "leaderboard.md").read_text()
    shop, synthetic = text.split("## shop-1")[1].split("## synthetic-2")
    assert "| a " in shop and "| c " in shop and "| b " in synthetic
    assert [line.split("|")[1].strip() for line in synthetic.strip().splitlines()[2:]] == ["1"]


def test_best_with_and_without_where(tmp_path: Path):
    board = Leaderboard(tmp_path / "lb.csv")
    assert board.best() is None
    board.append({"approach": "clip", "nprobe": 8, "mAP": 0.6})
    board.append({"approach": "clip", "nprobe": 16, "mAP": 0.8})
    board.append({"approach": "resnet", "nprobe": 8, "mAP": 0.7})
    assert board.best() == {"approach": "clip", "nprobe": 16, "mAP": 0.8}
    assert board.best({"nprobe": 8})["approach"] == "resnet"
    assert board.best({"approach": "clip", "nprobe": 8})["mAP"] == 0.6
    assert board.best({"approach": "vit"}) is None
    assert board.best({"no_such_column": 1}) is None


def test_read_without_file_is_empty(tmp_path: Path):
    assert Leaderboard(tmp_path / "missing.csv").read().empty


def test_no_temp_files_left_behind(tmp_path: Path):
    board = Leaderboard(tmp_path / "leaderboard.csv")
    for value in (0.1, 0.2):
        board.append({"mAP": value})
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "leaderboard.csv",
        "leaderboard.lock",
        "leaderboard.md",
    ]


def test_corrupt_csv_is_a_user_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "leaderboard.csv"
    path.write_text('approach,mAP\na,0.5\nb,0.6,extra,"unterminated\n')
    board = Leaderboard(path)
    with pytest.raises(UserError, match=r"leaderboard\.csv"):
        board.read()
    with pytest.raises(UserError, match=r"leaderboard\.csv"):
        board.append({"mAP": 0.1})
    assert path.read_text().startswith("approach,mAP\na,0.5\n")  # left as it was


def _append_many(path: str, worker: int, count: int) -> None:
    """Append ``count`` rows from one process."""
    board = Leaderboard(path)
    for step in range(count):
        board.append({"worker": worker, "step": step, "mAP": worker + step / 100})


def test_concurrent_appends_lose_no_rows(tmp_path: Path):
    path = str(tmp_path / "leaderboard.csv")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(path, worker, 10)) for worker in range(2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [process.exitcode for process in workers] == [0, 0]
    table = Leaderboard(path).read()
    assert len(table) == 20
    pairs = sorted(zip(table["worker"], table["step"], strict=True))
    assert pairs == [(worker, step) for worker in range(2) for step in range(10)]
    assert math.isclose(table["mAP"].iloc[0], 1.09)
