"""Search-only speed: Milvus (Lite in-process, optionally a real Milvus server) against raw faiss-cpu
IVF_FLAT with the same nlist / nprobe on the same vectors, side by side in one process, at several sizes.

For each (N, dim): build time and the resident-memory growth of this process and its children while
building; then for each nprobe, single-query p50/p95 latency and QPS (one query after another), batched QPS
and recall@10 against the exact top 10, so QPS can be compared at equal recall. Vectors are synthetic
(overlapping clusters of low intrinsic dimension: IVF lists are uneven and recall grows with nprobe, as with
real embeddings). Settings whose vectors exceed --max-gib are skipped, and Milvus Lite above --lite-max
vectors: at 1M x 128 it grew past 24 GiB while compacting and indexing and was killed for memory (a pure-
Python engine; a server is the tool at that size).

    python -m benchmarks.search                                  # N = 10k, 100k at dim 512
    python -m benchmarks.search --sizes 10000 100000 1000000 --dims 128 512 2048 --server

Results: outputs/benchmarks/search/<time>/{results.csv, report.md, *.png}.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import faiss
import numpy as np
import pandas as pd

from benchmarks.report import line_plots, markdown_table
from visual_search.index.milvus import MilvusIndex

ROOT = Path(__file__).resolve().parents[1]
K = 10
LATENT = 32
SINGLE_QUERY_BUDGET_S = 10.0  # one query at a time: stop early on a slow backend


def clustered_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors like real embeddings: 1,000 overlapping clusters in a 32-d latent space, mapped linearly
    into `dim` dimensions, plus a little isotropic noise. (Isotropic clusters in `dim` dimensions would make
    every point of a cluster about equally near, and the exact top 10 a coin toss.) IVF_FLAT recall@10 at
    N=100k, nlist 1264: about 0.79 / 0.92 / 0.99 at nprobe 8 / 32 / 128."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(1000, LATENT)).astype(np.float32)  # shared by all seeds
    mapping = np.random.default_rng(1).normal(size=(LATENT, dim)).astype(np.float32) / np.sqrt(LATENT)
    latent = centres[rng.integers(0, 1000, n)] + rng.normal(size=(n, LATENT)).astype(np.float32)
    points = latent @ mapping + 0.05 * rng.normal(size=(n, dim)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def exact_top_k(gallery: np.ndarray, queries: np.ndarray) -> np.ndarray:
    index = faiss.IndexFlatL2(gallery.shape[1])
    index.add(gallery)
    return index.search(queries, K)[1]


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact, strict=True)]))


def timed_single(
    search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray, budget_s: float
) -> dict[str, float]:
    """Latency of one query at a time (after a warm-up query), over the queries or as many as `budget_s`
    seconds allow (at least 20)."""
    search(queries[:1])
    seconds: list[float] = []
    for i in range(len(queries)):
        start = time.perf_counter()
        search(queries[i : i + 1])
        seconds.append(time.perf_counter() - start)
        if len(seconds) >= 20 and sum(seconds) > budget_s:
            break
    ms = np.array(seconds) * 1000
    return {
        "p50_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "qps_single": 1000 / ms.mean(),
    }


def timed_batch(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    found = search(queries)
    return len(queries) / (time.perf_counter() - start), found


def rss_bytes(pid: int | None = None) -> int:
    """Resident memory of a process and its descendants (Linux): this one holds FAISS and Milvus Lite's
    server thread; a Milvus server started here is a child process."""
    pid = pid or os.getpid()
    try:
        own = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:  # exited meanwhile
        return 0
    return own + sum(rss_bytes(int(child)) for child in children)


@contextlib.contextmanager
def rss_growth(result: dict[str, float]) -> Iterator[None]:
    """Record the resident-memory growth (MiB) of this process and its children over the block."""
    before = rss_bytes()
    yield
    result["rss_mib"] = (rss_bytes() - before) / 2**20


def timed_searches(
    search: Callable[[np.ndarray], np.ndarray],
    queries: np.ndarray,
    exact: np.ndarray,
    set_threads: Callable[[int], None] = lambda n: None,
) -> dict[str, float]:
    """Single-query latency (one thread: for one query on 2 cores threads only add overhead), batched QPS (all
    threads) and recall@10 of one search setting."""
    set_threads(1)
    result = timed_single(search, queries, SINGLE_QUERY_BUDGET_S)
    set_threads(os.cpu_count() or 1)
    result["qps_batch"], found = timed_batch(search, queries)
    return result | {"recall@10": recall(found, exact)}


def bench_faiss(
    gallery: np.ndarray, queries: np.ndarray, exact: np.ndarray, nlist: int, nprobes: list[int]
) -> list[dict]:
    built: dict[str, float] = {}
    with rss_growth(built):
        start = time.perf_counter()
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(gallery.shape[1]), gallery.shape[1], nlist)
        index.train(gallery)
        index.add(gallery)
        built["build_s"] = time.perf_counter() - start
    rows = []
    for nprobe in nprobes:
        index.nprobe = nprobe
        timed = timed_searches(lambda q: index.search(q, K)[1], queries, exact, faiss.omp_set_num_threads)
        rows.append({"nprobe": nprobe, **built, **timed})
    return rows


def bench_milvus(
    uri: str, gallery: np.ndarray, queries: np.ndarray, exact: np.ndarray, nlist: int, nprobes: list[int]
) -> list[dict]:
    fields = pd.DataFrame({"item_id": np.arange(len(gallery)).astype(str), "label": "x"})
    built: dict[str, float] = {}
    rows = []
    with MilvusIndex(uri, index_type="IVF_FLAT", nlist=nlist, nprobe=nprobes[0]) as index:
        with rss_growth(built):
            start = time.perf_counter()
            index.build(gallery, fields, tag=f"bench_{len(gallery)}_{gallery.shape[1]}")
            built["build_s"] = time.perf_counter() - start
        for nprobe in nprobes:
            index.spec.nprobe = nprobe
            rows.append(
                {
                    "nprobe": nprobe,
                    **built,
                    **timed_searches(lambda q: index.search(q, K).rows, queries, exact),
                }
            )
        index.client.drop_collection(index.collection)
    return rows


def run(
    sizes: list[int],
    dims: list[int],
    queries: int,
    nprobes: list[int],
    server_uri: str | None,
    max_gib: float,
    lite_max: int,
    progress: Path | None = None,
) -> pd.DataFrame:
    """Every backend on the same vectors at each (N, dim) and nprobe; QPS also as a ratio to FAISS's."""
    rows = []
    for dim in dims:
        for n in sizes:
            if n * dim * 4 > max_gib * 2**30:
                print(f"N={n:,} dim={dim}: skipped, {n * dim * 4 / 2**30:.1f} GiB of vectors > --max-gib")
                continue
            gallery = clustered_vectors(n, dim, seed=0)
            probe = clustered_vectors(queries, dim, seed=1)
            exact = exact_top_k(gallery, probe)
            nlist = max(1, min(4 * int(np.sqrt(n)), n // 39))
            setting = {"N": n, "dim": dim, "nlist": nlist}
            with tempfile.TemporaryDirectory() as folder:
                uris = {"Milvus Lite": f"{folder}/bench.db", "Milvus server": server_uri}
                for backend in ("faiss IVF_FLAT", "Milvus Lite", "Milvus server"):
                    if (backend == "Milvus server" and not server_uri) or (
                        backend == "Milvus Lite" and n > lite_max
                    ):
                        continue
                    print(f"N={n:,} dim={dim} {backend} ...", flush=True)
                    try:
                        if backend == "faiss IVF_FLAT":
                            results = bench_faiss(gallery, probe, exact, nlist, nprobes)
                        else:
                            results = bench_milvus(uris[backend], gallery, probe, exact, nlist, nprobes)
                    except Exception as error:  # one backend failing is a result, not the end of the run
                        print(f"N={n:,} dim={dim} {backend} failed: {error}", flush=True)
                        results = [{"error": str(error)[:120]}]
                    rows += [{"backend": backend, **setting, **result} for result in results]
            if progress:
                pd.DataFrame(rows).to_csv(progress, index=False)  # what is done survives a crash
    table = pd.DataFrame(rows)
    keys, speeds = ["N", "dim", "nprobe"], ["qps_single", "qps_batch"]
    faiss_rows = table.loc[table.backend == "faiss IVF_FLAT", keys + speeds]
    both = table.merge(faiss_rows, on=keys, how="left", suffixes=("", "_faiss"))
    for column in speeds:
        table[f"{column}_vs_faiss"] = both[column] / both[f"{column}_faiss"]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[512])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--nprobes", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--max-gib", type=float, default=1.0, help="skip settings with more vector data")
    parser.add_argument("--lite-max", type=int, default=200_000, help="skip Milvus Lite above this N")
    parser.add_argument("--server", action="store_true", help="also a real Milvus server (pip milvus)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or ROOT / "outputs" / "benchmarks" / "search" / dt.datetime.now().strftime(
        "%Y-%m-%d_%H-%M-%S"
    )
    out.mkdir(parents=True, exist_ok=True)
    with milvus_server(args.server) as server_uri:
        table = run(
            args.sizes,
            args.dims,
            args.queries,
            args.nprobes,
            server_uri,
            args.max_gib,
            args.lite_max,
            out / "results.csv",
        )
    table.to_csv(out / "results.csv", index=False)
    middle = table[table.nprobe == sorted(args.nprobes)[len(args.nprobes) // 2]]  # one nprobe in the plots
    plots = line_plots(
        middle, x="N", series="backend", panels=("build_s", "p50_ms", "qps_batch", "rss_mib"), out=out
    )
    report = (
        f"# Search speed\n\nPlots at nprobe={middle.nprobe.iloc[0]}.\n\n{markdown_table(table)}\n\n"
        + "\n".join(f"![{p.stem}]({p.name})" for p in plots)
    )
    (out / "report.md").write_text(report + "\n")
    print(report)


@contextlib.contextmanager
def milvus_server(wanted: bool) -> Iterator[str | None]:
    """A real Milvus standalone server (pip `milvus`) for the duration, or None."""
    if not wanted:
        yield None
        return
    from milvus import default_server

    with tempfile.TemporaryDirectory() as folder:
        default_server.set_base_dir(folder)
        default_server.start()
        try:
            yield f"http://127.0.0.1:{default_server.listen_port}"
        finally:
            default_server.stop()


if __name__ == "__main__":
    main()
