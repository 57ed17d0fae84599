"""Indexing killed with SIGKILL mid-way resumes where it stopped: the next run writes only the missing
rows and ends with exactly the gallery's item count and no duplicate ids (Milvus Lite and a real server)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.index.test_milvus_lifecycle import count, stored_ids
from visual_search.index.milvus import MilvusIndex

ITEMS, BATCH, BATCHES_BEFORE_KILL = 1200, 40, 5
STOPPED = "stopped mid-way"


def gallery() -> tuple[np.ndarray, pd.DataFrame]:
    """The same gallery in every process (seeded), so every run builds the same collection."""
    vectors = np.random.default_rng(7).normal(size=(ITEMS, 16)).astype(np.float32)
    ids = [f"sku-{i}" for i in range(ITEMS)]
    return vectors, pd.DataFrame({"item_id": ids, "label": "x", "category": "x"})


class StopAfterBatches(logging.Handler):
    """Parks the indexing process after its N-th batch write (rows written, nothing flushed or closed),
    so the kill always lands mid-ingestion whatever the machine's speed."""

    def __init__(self, batches: int) -> None:
        super().__init__()
        self.batches, self.seen = batches, 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("upserted"):
            self.seen += 1
            if self.seen == self.batches:
                print(STOPPED, flush=True)
                time.sleep(600)


def index_until_stopped(uri: str) -> None:
    """The child process: index the gallery, stopping for the kill after BATCHES_BEFORE_KILL batches."""
    log = logging.getLogger("visual_search.index.sync")
    log.setLevel(logging.DEBUG)
    log.addHandler(StopAfterBatches(BATCHES_BEFORE_KILL))
    MilvusIndex(uri, nlist=16, insert_batch_size=BATCH).build(*gallery(), tag="resume")


@pytest.mark.parametrize("backend", ["lite", pytest.param("server", marks=pytest.mark.integration)])
def test_indexing_killed_mid_way_resumes_to_exactly_the_gallery(backend, request, tmp_path, caplog):
    uri = request.getfixturevalue("milvus_server") if backend == "server" else str(tmp_path / "m.db")
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from tests.index.test_resume import index_until_stopped; index_until_stopped({uri!r})",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert child.stdout.readline().strip() == STOPPED
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    vectors, fields = gallery()
    written = BATCHES_BEFORE_KILL * BATCH
    caplog.set_level(logging.INFO, logger="visual_search.index")
    with MilvusIndex(uri, nlist=16, insert_batch_size=BATCH) as index:
        name = index.build(vectors, fields, tag="resume")
        assert (
            f"{written} of {ITEMS} rows already indexed, {ITEMS - written} to write, 0 to remove"
            in caplog.text
        )
        ids = stored_ids(index, name)
        assert count(index, name) == len(ids) == len(set(ids)) == ITEMS
        assert index.search(vectors[:20], k=1).rows[:, 0].tolist() == list(range(20))
    caplog.clear()
    with MilvusIndex(uri, nlist=16) as index:  # a third run finds it complete and reuses it
        assert index.build(vectors, fields, tag="resume") == name
        assert f"reusing Milvus collection {name} ({ITEMS} vectors)" in caplog.text
