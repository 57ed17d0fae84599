"""Encoder speed: forward-only throughput against the same encoder inside the embedding pipeline
(decode + preprocess + forward; in-process or in DataLoader workers), side by side in one process, for
each encoder, input size and runtime (precision, memory format). For the default encoder, the exact
full-ranking mAP of each precision's embeddings (all queries against the timed gallery sample) shows
what bf16 costs.

    python -m benchmarks.encoders                   # the default cases on the default synthetic data
    python -m benchmarks.encoders --images 640 --batches 20 --repeats 5

Results: outputs/benchmarks/encoders/<time>/{results.csv, report.md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir

from benchmarks.report import markdown_table
from visual_search.data.build import build_items
from visual_search.embed.embedder import Embedder
from visual_search.encode.build import build_encoder
from visual_search.metrics.retrieval import mean_average_precision
from visual_search.metrics.timing import encoder_throughput
from visual_search.utils.runtime import keep_freed_memory

ROOT = Path(__file__).resolve().parents[1]
# (name, overrides): random weights where only a download has real ones (speed does not depend on them)
FP32, BF16, CL = "inference.precision=fp32", "inference.precision=bf16", "inference.channels_last=true"
EFF = "efficientnet_lite0 224"
CASES = [
    (
        f"{EFF} fp32, 2 workers (the first default)",
        [FP32, "inference.channels_last=false", "datamodule.num_workers=2"],
    ),
    (f"{EFF} fp32 channels_last", [FP32, CL]),
    (f"{EFF} bf16 channels_last, 2 workers", [BF16, CL, "datamodule.num_workers=2"]),
    (f"{EFF} bf16 channels_last, 1 worker", [BF16, CL, "datamodule.num_workers=1"]),
    (f"{EFF} bf16 channels_last, in-process (default)", [BF16, CL]),
    ("efficientnet_lite0 128 bf16 channels_last", ["encoder.input_size=128", BF16, CL]),
    ("resnet50 224 fp32 channels_last", ["encoder=resnet50", FP32, CL]),
    ("resnet50 224 bf16 channels_last", ["encoder=resnet50", BF16, CL]),
    ("clip ViT-B-32 224 fp32", ["encoder=clip", FP32]),
    ("clip ViT-B-32 224 bf16", ["encoder=clip", BF16]),
]
QUALITY = EFF  # cases whose name starts with this also report mAP (real weights)


def measure(
    overrides: list[str], images: int, batches: int, repeats: int, with_quality: bool
) -> dict[str, float]:
    """Forward-only and pipeline images/s (and mAP) of one configuration: `repeats` rounds of forward-only
    then pipeline, back to back, so both see the same machine; the medians and the median ratio."""
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("evaluate", overrides=overrides)
    items = build_items(cfg)
    encoder = build_encoder(cfg.encoder, None, cfg.inference)
    embedder = Embedder(encoder, batch_size=cfg.datamodule.batch_size, num_workers=cfg.datamodule.num_workers)
    gallery = items.split("gallery")
    gallery = gallery.sample(n=min(images, len(gallery)), random_state=0).sort_index()
    rounds = []
    for _ in range(repeats):
        forward = encoder_throughput(encoder, cfg.datamodule.batch_size, batches)["encoder_ips"]
        embedded = embedder.embed(gallery, "pipeline")
        rounds.append((forward, len(embedded.frame) / embedded.seconds))
    forward_ips, pipeline_ips = np.median(np.array(rounds), axis=0)
    ratios = [pipeline / forward for forward, pipeline in rounds]
    result = {
        "forward_ips": forward_ips,
        "pipeline_ips": pipeline_ips,
        "pipeline_vs_forward": float(np.median(ratios)),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }
    if with_quality:
        query = embedder.embed(items.split("query"), "queries")
        result["mAP"] = mean_average_precision(
            torch.from_numpy(query.embeddings),
            query.labels,
            torch.from_numpy(embedded.embeddings),
            embedded.labels,
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=320, help="gallery images through the pipeline")
    parser.add_argument("--batches", type=int, default=10, help="forward-only batches timed")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of forward-only then pipeline")
    parser.add_argument("--only", nargs="*", default=None, help="case names to run (default: all)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("PROJECT_ROOT", str(ROOT))
    keep_freed_memory()
    torch.manual_seed(0)
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = args.out or ROOT / "outputs" / "benchmarks" / "encoders" / stamp
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, overrides in CASES:
        if args.only and name not in args.only:
            continue
        print(f"{name} ...", flush=True)
        quality = name.startswith(QUALITY)
        rows.append({"case": name, **measure(overrides, args.images, args.batches, args.repeats, quality)})
    table = pd.DataFrame(rows)
    table.to_csv(out / "results.csv", index=False)
    report = f"# Encoder speed: forward only vs the embedding pipeline\n\n{markdown_table(table)}\n"
    (out / "report.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
