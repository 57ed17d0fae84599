"""Shared pieces of the benchmark reports: Markdown tables and line plots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import pandas as pd


def markdown_table(table: pd.DataFrame, floatfmt: str = ".3g") -> str:
    """A GitHub Markdown table of `table` (numbers to 3 significant digits)."""
    return table.to_markdown(index=False, floatfmt=floatfmt)


def line_plots(table: pd.DataFrame, x: str, series: str, panels: Sequence[str], out: Path) -> list[Path]:
    """One PNG per panel column: its value against `x` (log scale), one line per `series` value and per
    other varying column (e.g. dim). Returns the files written."""
    others = [c for c in ("dim",) if c in table and table[c].nunique() > 1]
    written = []
    for panel in panels:
        figure, axis = plt.subplots(figsize=(5, 3.5))
        for key, group in table.groupby([series, *others]):
            label = " ".join(str(k) for k in (key if isinstance(key, tuple) else (key,)))
            group = group.sort_values(x)
            axis.plot(group[x], group[panel], marker="o", label=label)
        axis.set_xscale("log")
        axis.set_xlabel(x)
        axis.set_ylabel(panel)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
        figure.tight_layout()
        path = out / f"{panel}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written
