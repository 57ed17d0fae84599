"""A local leaderboard: each evaluation run appends a row to a CSV and re-renders its Markdown beside it."""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from visual_search.errors import UserError

# The columns leaderboard.md shows (regular expressions; the CSV keeps every column).
KEY_COLUMNS = (
    "approach", "weights", "queries", "filter", "debug", "mAP", r"mAP@\d+", r"recall@\d+",
    "qps_single", "qps_batch", "load_1m", "index", "time", "run_dir",
)  # fmt: skip


class Leaderboard:
    """Runs' results in ``<stem>.csv`` (+ ``<stem>.md``), best first by ``sort_by`` (descending, NaN last)."""

    def __init__(self, path: str | Path, sort_by: str = "mAP") -> None:
        self.path = Path(path)
        self.markdown_path = self.path.with_suffix(".md")
        self.lock_path = self.path.with_suffix(".lock")
        self.sort_by = sort_by

    def append(self, row: Mapping[str, object]) -> pd.DataFrame:
        """Add one run's row (new columns go last, missing values stay empty); returns the sorted table."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            records = [*self._load().to_dict("records"), dict(row)]
            table = self._sorted(pd.DataFrame.from_records(records))
            _atomic_write(self.path, table.to_csv(index=False))
            _atomic_write(self.markdown_path, self._markdown(table))
        return table

    def read(self) -> pd.DataFrame:
        """The sorted table; empty when there is no leaderboard yet."""
        return self._sorted(self._load())

    def best(self, where: Mapping[str, object] | None = None) -> dict | None:
        """The top row among those whose columns equal ``where``'s values (default: all); None if none."""
        table = self.read()
        for column, value in (where or {}).items():
            table = table[table[column] == value] if column in table else table.iloc[:0]
        return None if table.empty else table.iloc[0].to_dict()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive lock on ``<stem>.lock`` (released when the file closes)."""
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _load(self) -> pd.DataFrame:
        """The CSV as written (unsorted); a clear UserError when it cannot be parsed."""
        if not self.path.exists():
            return pd.DataFrame()
        try:
            return pd.read_csv(self.path)
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise UserError(f"cannot read the leaderboard {self.path} ({err}); fix or move it away") from err

    def _sorted(self, table: pd.DataFrame) -> pd.DataFrame:
        """Rows by ``sort_by`` descending (non-numbers and NaN last, ties in insertion order)."""
        if self.sort_by not in table:
            return table
        key = lambda column: pd.to_numeric(column, errors="coerce")  # noqa: E731
        ordered = table.sort_values(self.sort_by, ascending=False, na_position="last", kind="stable", key=key)
        return ordered.reset_index(drop=True)

    def _markdown(self, table: pd.DataFrame) -> str:
        """A title line, then one table per dataset identity (rows scored on other data do not compete)
        with a 1-based rank and the key columns only; the CSV keeps every column."""
        groups = (
            table.groupby(table["dataset_id"].fillna("(unknown)"), sort=False)
            if "dataset_id" in table
            else [("", table)]
        )
        sections = [f"# Leaderboard (best {self.sort_by} first; every column in {self.path.name})\n"]
        for dataset, rows in groups:
            columns = [c for c in rows.columns if any(re.fullmatch(k, c) for k in KEY_COLUMNS)]
            shown = rows[columns].astype(object).where(rows[columns].notna(), None)  # tabulate blanks None
            if "run_dir" in shown:
                shown["run_dir"] = [Path(str(d)).name if d else d for d in shown["run_dir"]]
            shown.insert(0, "rank", range(1, len(shown) + 1))
            body = shown.to_markdown(index=False, floatfmt=".4f", missingval="")
            sections.append(f"## {dataset}\n\n{body}\n" if dataset else f"{body}\n")
        return "\n".join(sections)


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path``, then os.replace it, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; the leaderboard is meant to be shared
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
