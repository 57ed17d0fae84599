"""Inference runtimes side by side in one run: each encoder's forward on torch (bf16 autocast +
channels_last, the old default; and fp32), OpenVINO and ONNX Runtime at batch 1 and 32, with its cosine to
torch fp32; the main job end to end (one query at a time and batched, with mAP) on each runtime, quiet and
while another process keeps every core busy; and the framework's batched search against a bare
`MilvusClient.search` on the same collection. Every figure is the median of rounds with its range; the
targets of issue 16 are checked as ratios of figures measured here.

    python -m benchmarks.runtimes                 # about 10 min on 2 cores
    python -m benchmarks.runtimes --rounds 5 --only-encoders efficientnet_lite0

Results: outputs/benchmarks/runtimes/<time>/{forward.csv, main_job.csv, search.csv, report.md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir

from benchmarks.report import markdown_table
from visual_search.embed.embedder import Embedded
from visual_search.encode.build import build_encoder
from visual_search.evaluation.run import embed_queries
from visual_search.evaluation.speed import STAGES, speed, timed_search
from visual_search.index.schema import ROW
from visual_search.metrics.retrieval import mean_average_precision
from visual_search.metrics.timing import machine_load, spread
from visual_search.pipeline import Pipeline
from visual_search.utils.runtime import keep_freed_memory

ROOT = Path(__file__).resolve().parents[1]
ENCODERS = {  # name: overrides (random weights where only a download has real ones: speed is the same)
    "efficientnet_lite0": [],
    "resnet50": ["encoder=resnet50"],
    "clip ViT-B-32": ["encoder=clip"],
}
RUNTIMES = {  # name: inference overrides
    "torch bf16 channels_last": ["inference.runtime=torch", "inference.precision=bf16"],
    "torch fp32": ["inference.runtime=torch", "inference.precision=fp32", "inference.channels_last=false"],
    "openvino": ["inference.runtime=openvino"],
    "onnxruntime": ["inference.runtime=onnxruntime", "inference.precision=fp32"],
}
OLD_DEFAULT, DEFAULT = "torch bf16 channels_last", "openvino"
BATCHES = (1, 32)


def config(*overrides: str):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("evaluate", overrides=["logger=none", *overrides])


def timed_rounds(fn: Callable[[], object], rounds: int, calls: int) -> list[float]:
    """Seconds per call of `fn`, one figure per round of `calls` calls (after one untimed call)."""
    fn()
    per_round = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        per_round.append((time.perf_counter() - start) / calls)
    return per_round


def forward(encoders: list[str], rounds: int) -> pd.DataFrame:
    """ms per image of each encoder's forward on each runtime and batch size, and cosine to torch fp32."""
    rows = []
    for name in encoders:
        built = {}
        for runtime, overrides in RUNTIMES.items():
            cfg = config(*ENCODERS[name], *overrides)
            torch.manual_seed(0)  # the same random weights on every runtime
            built[runtime] = build_encoder(cfg.encoder, None, cfg.inference)
        with torch.inference_mode():
            rows += timed_forwards(name, built, rounds)
    return pd.DataFrame(rows)


def timed_forwards(name: str, built: dict[str, torch.nn.Module], rounds: int) -> list[dict]:
    """One encoder on each runtime (built outside inference mode, as the pipeline builds them)."""
    rows = []
    size = built["torch fp32"].preprocess.input_size
    images = {batch: torch.randn(batch, 3, size, size) for batch in BATCHES}
    reference = built["torch fp32"](images[BATCHES[-1]]).float()
    for runtime, encoder in built.items():
        out = encoder(images[BATCHES[-1]]).float()
        cosine = torch.nn.functional.cosine_similarity(out, reference, dim=1).min().item()
        for batch in BATCHES:
            seconds = timed_rounds(partial(encoder, images[batch]), rounds, max(1, 32 // batch))
            ms = spread([1000 * s / batch for s in seconds], "ms_per_image")
            rows.append({"encoder": name, "runtime": runtime, "batch": batch, **ms, "cosine": cosine})
            print(rows[-1], flush=True)
    return rows


def spin(stop: mp.Event) -> None:  # type: ignore[valid-type]
    while not stop.is_set():
        sum(i * i for i in range(10_000))


@contextmanager
def busy_cores(on: bool) -> Iterator[None]:
    """Another process per core computing in a loop (nothing when `on` is false)."""
    if not on:
        yield
        return
    stop = mp.get_context("spawn").Event()
    spawn = mp.get_context("spawn")
    workers = [spawn.Process(target=spin, args=(stop,)) for _ in range(os.cpu_count() or 1)]
    for worker in workers:
        worker.start()
    time.sleep(2)
    try:
        yield
    finally:
        stop.set()
        for worker in workers:
            worker.join()


def main_job(rounds: int, queries: int, tmp: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The main job (`python evaluate.py`'s pipeline) on each runtime: mAP, encoder forward, end to end
    one at a time and batched, quiet and under load; and its batched search against a bare client."""
    rows, search_rows = [], []
    timing = {"single_queries": queries, "forward_batches": 3, "rounds": rounds}
    for runtime in (DEFAULT, OLD_DEFAULT, "onnxruntime"):
        cache = f"paths.cache_dir={tmp}/{runtime.replace(' ', '_')}"
        cfg = config(*RUNTIMES[runtime], cache, "approach=efficientnet_lite0_pretrained")  # no Hydra run
        with Pipeline.from_config(cfg) as pipeline:
            gallery = pipeline.index_gallery()
            query = queries_again(pipeline)
            _, seconds = timed_search(pipeline, query.embeddings, cfg.k, None)
            quality = mean_average_precision(
                torch.from_numpy(query.embeddings), query.labels,
                torch.from_numpy(gallery.embeddings), gallery.labels,
            )  # fmt: skip
            for loaded in (False, True):
                with busy_cores(loaded):
                    again = partial(queries_again, pipeline)
                    figures = speed(pipeline, query, again, None, seconds, cfg.k, timing)
                load = "busy" if loaded else "quiet"
                rows.append({"runtime": runtime, "load": load, "mAP": quality, **figures})
                print({k: rows[-1][k] for k in ("runtime", "load", "qps_single", "qps_batch")}, flush=True)
            if runtime == DEFAULT:
                search_rows = search_path(pipeline, query.embeddings, cfg.k, rounds)
    return pd.DataFrame(rows), pd.DataFrame(search_rows)


def queries_again(pipeline: Pipeline) -> Embedded:
    return embed_queries(pipeline, "items", None)[1]


def search_path(pipeline: Pipeline, embeddings: np.ndarray, k: int, rounds: int) -> list[dict]:
    """The framework's batched search and a bare client call with the same parameters, interleaved."""
    index = pipeline.index
    vectors = pipeline.vectors(embeddings)
    params = {"params": index.spec.search_params(k)}
    batch = index.search_batch_size

    def bare() -> None:
        for start in range(0, len(vectors), batch):
            index.client.search(
                index.collection, data=vectors[start : start + batch], limit=k,
                output_fields=[ROW], search_params=params,
            )  # fmt: skip

    framework, client = [], []
    for _ in range(rounds):
        framework += timed_rounds(lambda: pipeline.search(embeddings, k), 1, 3)
        client += timed_rounds(bare, 1, 3)
    ratios = [c / f for f, c in zip(framework, client, strict=True)]
    return [
        {"path": "framework (Pipeline.search)", **spread([len(vectors) / s for s in framework], "qps")},
        {"path": "bare MilvusClient.search", **spread([len(vectors) / s for s in client], "qps")},
        {"path": "framework / bare", **spread(ratios, "qps")},
    ]


def targets(fwd: pd.DataFrame, job: pd.DataFrame, search: pd.DataFrame) -> pd.DataFrame:
    """Issue 16's targets as ratios of figures of this run."""

    def ms(runtime: str, batch: int) -> float:
        row = fwd[(fwd.encoder == "efficientnet_lite0") & (fwd.runtime == runtime) & (fwd.batch == batch)]
        return float(row["ms_per_image"].iloc[0]) if len(row) else float("nan")

    quiet = job[job.load == "quiet"].set_index("runtime")
    busy = job[job.load == "busy"].set_index("runtime")
    d, old, loaded = quiet.loc[DEFAULT], quiet.loc[OLD_DEFAULT], busy.loc[DEFAULT]
    checks = [
        ("default encoder, batch 1 forward vs torch bf16", ms(OLD_DEFAULT, 1) / ms(DEFAULT, 1), ">= 3x"),
        ("default encoder, batch 32 forward vs torch bf16", ms(OLD_DEFAULT, 32) / ms(DEFAULT, 32), ">= 1.5x"),
        ("main job one at a time: p50 / encoder batch-1 p50", d.single_p50_ms / ms(DEFAULT, 1), "<= 1.5x"),
        (
            "the same, the search call left out (Milvus Lite's share)",
            (d.single_p50_ms - d.single_search_p50_ms) / ms(DEFAULT, 1),
            "(where the framework stands)",
        ),
        ("main job one at a time: QPS vs runtime=torch", d.qps_single / old.qps_single, ">= 2.5x"),
        ("main job batched: QPS / encoder forward img/s", d.qps_batch / d.encoder_ips, ">= 0.9x"),
        ("main job, cores busy: batched / one at a time", loaded.qps_batch / loaded.qps_single, ">= 1x"),
        ("framework batched search / bare client", float(search.iloc[2]["qps"]), ">= 0.9x"),
        ("main job mAP: |openvino - torch|", abs(d.mAP - old.mAP), "<= 0.005"),
        ("main job mAP: |onnxruntime - torch|", abs(quiet.loc["onnxruntime"].mAP - old.mAP), "<= 0.005"),
    ]  # fmt: skip
    return pd.DataFrame(checks, columns=["target", "measured", "wanted"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=100, help="one-at-a-time queries per round")
    parser.add_argument("--only-encoders", nargs="*", default=list(ENCODERS), choices=list(ENCODERS))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("PROJECT_ROOT", str(ROOT))
    keep_freed_memory()  # as the entry scripts do
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = args.out or ROOT / "outputs" / "benchmarks" / "runtimes" / stamp
    out.mkdir(parents=True, exist_ok=True)
    load_before = machine_load()["load_1m"]
    fwd = forward(args.only_encoders, args.rounds)
    fwd.to_csv(out / "forward.csv", index=False)
    job, search = main_job(args.rounds, args.queries, out / "cache")
    job.to_csv(out / "main_job.csv", index=False)
    search.to_csv(out / "search.csv", index=False)
    checks = targets(fwd, job, search)
    shown = [
        *("runtime", "load", "mAP", "qps_single", "qps_single_min", "qps_single_max", "single_p50_ms"),
        *("qps_batch", "qps_batch_min", "qps_batch_max", "encoder_ips", "qps_search_batch", "load_1m"),
    ]
    stages = ["runtime", "load", *(f"single_{stage}_p50_ms" for stage in STAGES), "single_p50_ms"]
    report = "\n\n".join([
        "# Inference runtimes",
        f"Load average {load_before:.1f} at the start; medians of {args.rounds} rounds, range beside.",
        "## Targets (ratios of figures from this run)",
        markdown_table(checks),
        "## Encoder forward, ms per image (random input; cosine: the worst of 32 images to torch fp32)",
        markdown_table(fwd, ".4g"),
        "## Main job end to end (`python evaluate.py`'s pipeline; busy: one spinning process per core)",
        markdown_table(job[[c for c in shown if c in job]], ".4g"),
        "## One query at a time, stage by stage (medians, ms)",
        markdown_table(job[[c for c in stages if c in job]], ".3g"),
        "## Search path: the same 400 queries, batched, on the main job's collection (QPS)",
        markdown_table(search, ".4g"),
    ])  # fmt: skip
    (out / "report.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
