"""`python -m benchmarks`: every benchmark, side by side on this machine, in one Markdown report.

    python -m benchmarks                       # every step below (~2.5 h)
    python -m benchmarks --skip quality recipe serve  # the fast ones
    python -m benchmarks --only encoders --publish   # and write docs/benchmarks/encoders.md from the run

Each benchmark runs in its own process (memory comes back between them) and writes its own folder under
outputs/benchmarks/suite/<time>/; report.md there links them with the machine they ran on. Serving needs a
leaderboard run to serve: run `python evaluate.py` first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks"  # --publish: one page per benchmark, written from its run's report
STEPS = {  # name: (title, command after `python`)
    "runtimes": ("Inference runtimes: torch, OpenVINO, ONNX Runtime", ["-m", "benchmarks.runtimes"]),
    "encoders": ("Encoder speed: forward only vs the embedding pipeline", ["-m", "benchmarks.encoders"]),
    "search": (
        "Search speed: Milvus vs raw FAISS",
        [
            *("-m", "benchmarks.search", "--server", "--sizes", "10000", "100000", "1000000"),
            *("--dims", "128", "512", "2048", "--nprobes", "8", "32", "128", "--max-gib", "0.5"),
        ],
    ),
    "serve": ("serve.py under loopback load", ["-m", "benchmarks.serve_load"]),
    "quality": ("Quality on real images (emoji, cross-vendor)", ["-m", "benchmarks.quality"]),
    "recipe": ("The fine-tuning recipe on real images (emoji), lever by lever", ["-m", "benchmarks.recipe"]),
    "icons": (
        "The default recipe on a second real set (icons, cross-style)",
        ["-m", "benchmarks.recipe", "--data", "icons", "--only", "baseline", "default"],
    ),
}


def machine() -> str:
    """One line about where the figures come from."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    load = os.getloadavg()[0]
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load:.1f}"


def publish(name: str, title: str, command: list[str], report: Path, machine_line: str) -> Path:
    """`docs/benchmarks/<name>.md`: the benchmark's own report (its figures copied beside it) under a
    header saying when, where and how it was measured. Nothing in it is edited by hand."""
    DOCS.mkdir(parents=True, exist_ok=True)
    figures = DOCS / name
    shutil.rmtree(figures, ignore_errors=True)
    body = report.read_text().split("\n", 1)[1]  # its own title dropped
    for link in sorted(set(re.findall(r"\]\(([^)]+\.png)\)", body))):
        figures.mkdir(exist_ok=True)
        shutil.copy(report.parent / link, figures / Path(link).name)
        body = body.replace(f"]({link})", f"]({name}/{Path(link).name})")
    when = dt.date.today().isoformat()
    parts = (str(Path(part).relative_to(ROOT)) if part.startswith(str(ROOT)) else part for part in command)
    how = " ".join(["python", *parts])
    header = (
        f"# {title}\n\nWritten by `python -m benchmarks --publish` from the run of {when} "
        f"(`{how}`) on {machine_line}.\n"
    )
    page = DOCS / f"{name}.md"
    page.write_text(f"{header}\n{body}")
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip", nargs="*", choices=list(STEPS), default=[])
    parser.add_argument("--only", nargs="*", choices=list(STEPS), default=None, help="run only these")
    parser.add_argument("--publish", action="store_true", help="write docs/benchmarks/<name>.md per run")
    args = parser.parse_args()
    suite = ROOT / "outputs" / "benchmarks" / "suite" / dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    where = machine()
    sections = [f"# Benchmarks\n\nMachine: {where} (at the start).\n"]
    for name, (title, command) in STEPS.items():
        if name in args.skip or (args.only is not None and name not in args.only):
            continue
        out = suite / name
        print(f"== {title}", flush=True)
        result = subprocess.run([sys.executable, *command, "--out", str(out)], cwd=ROOT)
        reports = sorted(out.rglob("report.md"))
        if result.returncode != 0 or not reports:
            sections.append(
                f"## {title}\n\nfailed (exit code {result.returncode}); see the console output.\n"
            )
            continue
        if args.publish:
            print(f"published: {publish(name, title, command, reports[-1], where)}")
        body = reports[-1].read_text().split("\n", 1)[1]  # its own title dropped
        folder = reports[-1].parent.relative_to(suite)
        body = body.replace("](", f"]({folder}/").replace(f"]({folder}/http", "](http")
        sections.append(f"## {title}\n{body}")
    (suite / "report.md").write_text("\n".join(sections))
    print(f"report: {suite / 'report.md'}")


if __name__ == "__main__":
    main()
