"""Load test of serve.py on loopback: a fixed number of image searches at each concurrency (1, 4, 16), with
micro-batching on and off (batching.max_batch=1); QPS, p50/p95 latency, errors, mean batch size, and the
server's CPU time per request (from its /metrics), which shared, busy machines disturb far less than QPS.
Then the same searches in this process without HTTP (the served model and index, one at a time and in
batches of the highest concurrency): what the server adds.

    python -m benchmarks.serve_load                        # the best run of outputs/leaderboard.csv
    python -m benchmarks.serve_load --requests 400 paths.log_dir=/elsewhere run=...   # serve.py overrides

The queries are the served dataset's query images, sent as multipart uploads by an asyncio client in this
process (the server runs in its own). Results: outputs/benchmarks/serve_load/<time>/{report.md,results.json}.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import time
from itertools import cycle
from pathlib import Path

import httpx
import numpy as np
from hydra import compose, initialize_config_dir
from tests.serve_process import ROOT, serve_process

from visual_search.data.build import build_items
from visual_search.serving.app import Settings
from visual_search.serving.engine import ImageQuery, SearchEngine
from visual_search.serving.http.imaging import decode_image
from visual_search.serving.source import Served, choose
from visual_search.utils.runtime import keep_freed_memory

MODES = {"micro-batching": [], "one at a time": ["batching.max_batch=1"]}


def served_run(overrides: list[str]) -> Served:
    """The run serve.py would serve with `overrides`."""
    os.environ.setdefault("PROJECT_ROOT", str(ROOT))
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return choose(compose("serve", overrides=overrides))


def query_images(served: Served, count: int) -> list[bytes]:
    """The first `count` query images of the served run's dataset."""
    paths = build_items(served.cfg).split("query")["image"].tolist()[:count]
    return [Path(p).read_bytes() for p in paths]


async def load(base: str, images: list[bytes], requests: int, concurrency: int, k: int) -> dict[str, float]:
    """`requests` searches, `concurrency` in flight at a time; latency of each, errors, batch sizes."""
    queue = iter(cycle(images))
    latencies: list[float] = []
    batch_sizes: list[int] = []
    errors = 0
    remaining = requests

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            response = await client.post("/search", files={"image": ("q.jpg", next(queue))}, data={"k": k})
            latencies.append(time.perf_counter() - start)
            if response.status_code == 200:
                batch_sizes.append(response.json()["batch_size"])
            else:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {
        "concurrency": concurrency,
        "requests": requests,
        "errors": errors,
        "qps": requests / seconds,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_batch": float(np.mean(batch_sizes)) if batch_sizes else float("nan"),
    }


def in_process(served: Served, images: list[bytes], requests: int, batches: list[int], k: int) -> list[dict]:
    """The server's work without HTTP: decode, preprocess, embed and search `requests` images, `batch` at a
    time for each of `batches`, with the served engine loaded in this process."""
    engine = SearchEngine.load(served)
    queue = cycle(images)

    def search(count: int) -> None:
        pixels = [
            engine.pipeline.preprocess(decode_image(next(queue), Settings.max_pixels)) for _ in range(count)
        ]
        engine.search_images([ImageQuery(p, k) for p in pixels])

    results = []
    try:
        for batch in batches:
            search(batch)  # warm-up
            latencies = []
            start = time.perf_counter()
            for done in range(0, requests, batch):
                began = time.perf_counter()
                search(min(batch, requests - done))
                latencies.append(time.perf_counter() - began)
            seconds = time.perf_counter() - start
            ms = np.array(latencies) * 1000
            result = {
                "mode": "in-process, no HTTP",
                "concurrency": batch,
                "requests": requests,
                "errors": 0,
                "qps": requests / seconds,
                "p50_ms": float(np.percentile(ms, 50)),
                "p95_ms": float(np.percentile(ms, 95)),
                "mean_batch": float(batch),
                "cpu_ms_per_request": float("nan"),
            }
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        engine.close()
    return results


def server_cpu_seconds(base: str) -> float:
    """The server process's CPU time so far (user + system), from its Prometheus metrics."""
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith("process_cpu_seconds_total "):
            return float(line.split()[1])
    raise RuntimeError("the server's /metrics has no process_cpu_seconds_total")


def measure(base: str, images: list[bytes], requests: int, concurrency: int, k: int) -> dict[str, float]:
    """One load level, with the server CPU time it cost per request."""
    cpu = server_cpu_seconds(base)
    result = asyncio.run(load(base, images, requests, concurrency, k))
    return result | {"cpu_ms_per_request": 1000 * (server_cpu_seconds(base) - cpu) / requests}


def report(results: list[dict], note: str) -> str:
    """The results as a Markdown table, then micro-batching's gain at the highest concurrency."""
    lines = [
        "# serve.py under load (loopback)",
        "",
        note,
        "",
        "| mode | concurrency | requests | errors | QPS | p50 ms | p95 ms | mean batch | server CPU ms/req |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['mode']} | {r['concurrency']} | {r['requests']} | {r['errors']} | {r['qps']:.1f} | "
        f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['mean_batch']:.2f} | {r['cpu_ms_per_request']:.1f} |"
        for r in results
    ]
    top = max(r["concurrency"] for r in results)
    at_top = {r["mode"]: r for r in results if r["concurrency"] == top}
    if len(at_top) == 2:
        on, off = at_top["micro-batching"], at_top["one at a time"]
        lines += [
            "",
            f"Micro-batching at concurrency {top}: {on['qps'] / off['qps']:.2f}x the throughput of one at a "
            f"time, {off['cpu_ms_per_request'] / on['cpu_ms_per_request']:.2f}x less server CPU per request.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--requests", type=int, default=160, help="searches per concurrency level")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated levels")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "serve_load")
    args, overrides = parser.parse_known_args()
    keep_freed_memory()  # as serve.py does: the in-process rows then compute as the server does
    levels = [int(c) for c in args.concurrency.split(",")]
    served = served_run(overrides)
    images = query_images(served, 64)
    out = args.out / dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True)
    load_before = os.getloadavg()[0]
    results = []
    for mode, extra in MODES.items():
        with serve_process(out / f"serve-{mode.replace(' ', '-')}.log", *overrides, *extra) as base:
            asyncio.run(load(base, images, 2 * levels[-1], levels[-1], args.k))  # warm-up
            health = httpx.get(f"{base}/health").json()
            for level in levels:
                result = {"mode": mode, **measure(base, images, args.requests, level, args.k)}
                print(json.dumps(result), flush=True)
                results.append(result)
    # last: Milvus Lite's in-process server keeps the file locked until this process exits
    results += in_process(served, images, args.requests, [1, levels[-1]], args.k)
    note = (
        f"{health['approach']} on {health['dataset']} ({health['items']} items, {health['index']}); "
        f"{len(images)} query images, k={args.k}, {os.cpu_count()} CPUs shared by client and server; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after."
    )
    (out / "results.json").write_text(json.dumps({"note": note, "results": results}, indent=2))
    text = report(results, note)
    (out / "report.md").write_text(text)
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
