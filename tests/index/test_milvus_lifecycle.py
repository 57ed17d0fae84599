"""Collection lifecycle on Milvus Lite, a real Milvus server and Milvus Lite's gRPC server mode (the last
two `integration`): upsert by item_id, resuming, removing stale rows, schema checks, serving's
attach/scan, and a server that is down."""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.index.test_milvus_index import _exact_top_k, _gallery
from visual_search.errors import UserError
from visual_search.index import milvus
from visual_search.index.milvus import MilvusIndex
from visual_search.index.schema import ENCODER_PROPERTY
from visual_search.reduce.reduction import PCA


@pytest.fixture(scope="module")
def milvus_lite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Milvus Lite's gRPC server mode (`milvus-lite server`) on a free port; yields its URI."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(tmp_path_factory.mktemp("milvus_lite_server"))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert "listening on" in server.stdout.readline()
    yield f"http://127.0.0.1:{port}"
    server.kill()
    server.wait(timeout=30)


@pytest.fixture(
    params=[
        "lite",
        pytest.param("server", marks=pytest.mark.integration),
        pytest.param("lite_server", marks=pytest.mark.integration),
    ]
)
def uri(request: pytest.FixtureRequest, tmp_path) -> str:
    """A Milvus Lite file, the session's real Milvus server, or Milvus Lite's gRPC server: one code path."""
    if request.param == "server":
        return request.getfixturevalue("milvus_server")
    if request.param == "lite_server":
        return request.getfixturevalue("milvus_lite_server")
    return str(tmp_path / "milvus.db")


def free_port() -> int:
    """A port nothing listens on (free when this returns)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def name(request: pytest.FixtureRequest) -> str:
    """A collection name of this test's own (the server is shared by the session)."""
    return re.sub(r"\W", "_", request.node.name)[:180]


def stored_ids(index: MilvusIndex, collection: str) -> list[str]:
    """Every item_id the collection returns, duplicates included."""
    rows = index.client.query_iterator(collection, batch_size=500, output_fields=["item_id"])
    ids = []
    while batch := rows.next():
        ids.extend(row["item_id"] for row in batch)
    rows.close()
    return ids


def count(index: MilvusIndex, collection: str) -> int:
    result = index.client.query(collection, filter="", output_fields=["count(*)"], consistency_level="Strong")
    return int(result[0]["count(*)"])


def test_search_attach_and_scan_on_every_backend(uri, name):
    gallery, fields = _gallery(n_per_category=120)
    with MilvusIndex(uri, nlist=8, nprobe=8) as index:
        built = index.build(gallery, fields, tag=name, encoder="enc-a")
        info = index.client.describe_index(built, "vector")
        assert int(info.get("params", info)["nlist"]) == 8  # the server reports params as strings
        queries = gallery[:5] + 0.01
        np.testing.assert_array_equal(index.search(queries, k=10).rows, _exact_top_k(queries, gallery, 10))
        filtered = index.search(queries, k=5, filter_values=["shoes"] * 5)
        assert set(fields["category"].to_numpy()[filtered.rows].ravel()) == {"shoes"}
    with MilvusIndex(uri, nlist=128, nprobe=8) as served:  # serve.py: attach by name, read every row
        assert served.attach(built) and not served.attach(built + "_missing")
        assert served.spec.nlist_used == 8 and served.describe().startswith("IVF_FLAT(nlist=8,")
        rows = [row for batch in served.scan(["item_id", "vector"], batch_size=100) for row in batch]
        assert [row["row"] for row in rows] == list(range(len(gallery)))
        assert [row["item_id"] for row in rows] == fields["item_id"].tolist()
        np.testing.assert_allclose(np.array([row["vector"] for row in rows]), gallery, atol=1e-6)
        np.testing.assert_array_equal(served.search(queries, k=10).rows, _exact_top_k(queries, gallery, 10))


@pytest.mark.integration
def test_a_server_searches_with_the_index_as_built_right_after_building(milvus_server, name):
    """A server first searches new rows in growing segments with an interim index that ignores nprobe:
    build waits until every row is indexed and the built index serves them, so nprobe decides recall at
    once."""
    gallery, fields = _gallery(n_per_category=700)
    queries = gallery[::100] + 0.05
    exact = _exact_top_k(queries, gallery, 10)
    with MilvusIndex(milvus_server, nlist=64, nprobe=1) as index:
        index.build(gallery, fields, tag=name)
        info = index.client.describe_index(index.collection, "vector")
        assert int(info["indexed_rows"]) == int(info["total_rows"]) > 0
        recall = {}
        for nprobe in (1, 64):
            index.spec.nprobe = nprobe
            found = index.search(queries, k=10).rows
            recall[nprobe] = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
    assert recall[64] == 1.0 and recall[1] < 0.9, recall


def test_reindexing_never_duplicates_and_writes_only_what_changed(uri, name, caplog):
    gallery, fields = _gallery()
    caplog.set_level(logging.INFO, logger="visual_search.index")
    with MilvusIndex(uri, collection=name, index_type="FLAT", insert_batch_size=25) as index:
        index.build(gallery, fields, tag="t")
        index.build(gallery, fields, tag="t")  # the same gallery again: nothing written
        assert (
            f"{len(gallery)} of {len(gallery)} rows already indexed, 0 to write, 0 to remove" in caplog.text
        )
        # the catalogue changes: 10 items gone, 5 vectors and 1 title changed, 3 new items
        rng = np.random.default_rng(1)
        changed = gallery[10:].copy()
        changed[:5] = rng.normal(size=(5, gallery.shape[1]))
        new_fields = fields.iloc[10:].reset_index(drop=True)
        new_fields.loc[7, "title"] = "renamed"
        extra = pd.DataFrame({"item_id": ["n1", "n2", "n3"], "label": "tops", "category": "tops"})
        changed = np.vstack([changed, rng.normal(size=(3, gallery.shape[1]))]).astype(np.float32)
        new_fields = pd.concat([new_fields, extra], ignore_index=True)
        caplog.clear()
        index.build(changed, new_fields, tag="t")
        # every surviving row moved up 10 places, so all of them are rewritten (their row changed)
        assert (
            f"0 of {len(changed)} rows already indexed, {len(changed)} to write, 10 to remove" in caplog.text
        )
        ids = stored_ids(index, name)
        assert len(ids) == len(set(ids)) == count(index, name) == len(changed)
        assert set(ids) == set(new_fields["item_id"])
        np.testing.assert_array_equal(index.search(changed[:8], k=1).rows[:, 0], np.arange(8))
        (title,) = index.client.query(name, filter='item_id == "item17"', output_fields=["title"])
        assert title["title"] == "renamed"
        caplog.clear()
        changed[-1] = rng.normal(size=gallery.shape[1])  # one vector changes: one row written
        index.build(changed, new_fields, tag="t")
        assert f"{len(changed) - 1} of {len(changed)} rows already indexed, 1 to write" in caplog.text
        assert count(index, name) == len(changed)


def test_a_collection_of_other_vectors_is_refused_with_a_hint(uri, name):
    gallery, fields = _gallery(dim=32)
    with MilvusIndex(uri, collection=name, index_type="FLAT") as index:
        index.build(gallery, fields, tag="t", encoder="efficientnet_lite0 weights=1234, reduction=none")
        held = index.client.describe_collection(name)["properties"][ENCODER_PROPERTY]
        assert held == "efficientnet_lite0 weights=1234, reduction=none"
    hint = r"name another collection \(index.collection=...\) or replace it \(index.recreate=true\)"
    same = "efficientnet_lite0 weights=1234, reduction=none"
    reduced = PCA(dim=8).fit(gallery).transform(gallery)
    attempts = [  # (index options, vectors, encoder, what this run makes)
        (
            {},
            gallery,
            "clip weights=9999, reduction=none",
            "32-d L2 FLAT vectors (clip weights=9999, reduction=none)",
        ),
        ({"metric": "IP"}, gallery, same, f"32-d IP FLAT vectors ({same})"),
        (
            {},
            reduced,
            "efficientnet_lite0 weights=1234, reduction=pca8",
            "8-d L2 FLAT vectors (efficientnet_lite0 weights=1234, reduction=pca8)",
        ),
    ]
    for options, vectors, encoder, made in attempts:
        index = MilvusIndex(uri, collection=name, index_type="FLAT", **options)
        with index, pytest.raises(UserError) as error:
            index.build(vectors, fields, tag="t", encoder=encoder)
        message = str(error.value)
        assert "\n" not in message and re.search(hint, message), message
        held = f"{name!r} holds 32-d L2 FLAT vectors ({same})"
        assert f"{held}, but this run makes {made}:" in message, message
    with MilvusIndex(uri, collection=name, index_type="FLAT", metric="IP", recreate=True) as index:
        index.build(gallery, fields, tag="t", encoder="clip weights=9999")
        assert count(index, name) == len(gallery)
        assert index.client.describe_index(name, "vector")["metric_type"] == "IP"


def test_the_same_vectors_reuse_their_content_named_collection_whoever_made_them(tmp_path, caplog):
    gallery, fields = _gallery(dim=32)
    uri = str(tmp_path / "m.db")
    with MilvusIndex(uri, index_type="FLAT") as index:  # e.g. the same weights on torch, then OpenVINO
        name = index.build(gallery, fields, tag="t", encoder="lite0 weights=1234 (torch)")
        caplog.set_level(logging.INFO, logger="visual_search.index.milvus")
        assert index.build(gallery, fields, tag="t", encoder="lite0 weights=5678 (openvino)") == name
        assert f"reusing Milvus collection {name}" in caplog.text


def test_a_large_lite_gallery_warns_that_search_will_dominate(tmp_path, caplog, monkeypatch):
    gallery, fields = _gallery(dim=8)
    monkeypatch.setattr(milvus, "LITE_LARGE_ROWS", len(gallery) - 1)  # not 10,000 rows in a test
    with MilvusIndex(str(tmp_path / "m.db"), index_type="FLAT") as index:
        index.build(gallery, fields, tag="t")
    assert f"Milvus Lite searches every one of these {len(gallery)} rows" in caplog.text
    assert "use index=milvus_server" in caplog.text


def test_a_named_collection_reports_the_lists_it_was_built_with(tmp_path):
    small, small_fields = _gallery(n_per_category=40)  # 120 vectors: 3 lists
    large, large_fields = _gallery(n_per_category=120)  # 360 vectors: 9 lists if built now
    uri = str(tmp_path / "m.db")
    with MilvusIndex(uri, collection="shop", nlist=64) as index:
        index.build(small, small_fields, tag="t")
        assert index.describe().startswith("IVF_FLAT(nlist=3,")
        index.build(large, large_fields, tag="t")  # updated in place: its index keeps 3 lists
        assert index.describe().startswith("IVF_FLAT(nlist=3,") and count(index, "shop") == len(large)


def test_bad_gallery_ids_are_user_errors(tmp_path):
    gallery, fields = _gallery(n_per_category=4)
    duplicated = fields.assign(item_id=["a", "b", *fields["item_id"][2:-1], "a"])
    with MilvusIndex(str(tmp_path / "m.db")) as index:
        with pytest.raises(UserError, match=r"1 duplicate item_id\(s\) in the gallery \(e.g. a\)"):
            index.build(gallery, duplicated, tag="t")
        with pytest.raises(UserError, match="item_id longer than 512 bytes"):
            index.build(gallery, fields.assign(item_id=[f"{i}" + "x" * 600 for i in range(len(fields))]), "t")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("nlist", "abc", "index.nlist='abc'; expected a positive integer"),
        ("nprobe", 0, "index.nprobe=0; expected a positive integer"),
        ("retries", -1, "index.retries=-1; expected a whole number >= 0"),
    ],
)
def test_bad_numbers_are_user_errors(tmp_path, option, value, message):
    with pytest.raises(UserError, match=re.escape(message)):
        MilvusIndex(str(tmp_path / "m.db"), **{option: value})


def test_a_server_that_is_down_is_retried_then_one_clear_line(caplog):
    port = free_port()
    index = MilvusIndex(f"http://127.0.0.1:{port}", retries=2, retry_backoff_s=0.05)
    with pytest.raises(UserError) as error:
        index.build(*_gallery(n_per_category=4), tag="t")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(
        f"cannot connect to Milvus at index.uri=http://127.0.0.1:{port} after 3 attempts"
    )
    assert message.endswith("is the server up? (index.retries, index.retry_backoff_s)")
    waits = re.findall(r"retrying in ([\d.]+) s", caplog.text)
    assert waits == ["0.05", "0.10"]  # backing off: each wait doubles


def build_or_reuse(uri: str, out: str) -> None:
    """In a process of its own: build (or reuse) a collection of 9,000 vectors in 230 lists and save what
    a search of 4 lists for 50 queries returns (into `<out>.npz` beside the file)."""
    vectors, fields = _gallery(n_per_category=3000, dim=32, seed=3)  # 9,000 vectors: 230 lists, nprobe 4
    with MilvusIndex(uri, nlist=256, nprobe=4) as index:
        index.build(vectors, fields, tag="agreement")
        result = index.search(vectors[:50] + 0.05, k=10)
    np.savez(Path(uri).parent / out, rows=result.rows, distances=result.distances)


def test_a_run_that_reuses_a_collection_searches_as_the_run_that_built_it(tmp_path):
    """The same vectors give the same approximate answers whether this process built the collection or a
    later one reuses it. Milvus Lite builds segment indexes in the background after a flush, so a search
    right after building could still find a segment unindexed and search it exactly (5 runs of 6 here
    did): building waits for that now."""
    uri = str(tmp_path / "m.db")
    for run in ("built", "reused"):
        code = (
            f"from tests.index.test_milvus_lifecycle import build_or_reuse; build_or_reuse({uri!r}, {run!r})"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
    built, reused = np.load(tmp_path / "built.npz"), np.load(tmp_path / "reused.npz")
    np.testing.assert_array_equal(reused["rows"], built["rows"])
    np.testing.assert_array_equal(reused["distances"], built["distances"])


def test_closing_a_milvus_lite_index_frees_its_file_for_other_processes(tmp_path):
    """MilvusClient.close() leaves Milvus Lite's embedded server (and the file's lock) in this process;
    closing the index stops it, so another process (serve.py after evaluate.py in a notebook, say) can
    open the file, and a later connection here starts afresh."""
    uri = str(tmp_path / "m.db")
    gallery, fields = _gallery(n_per_category=20)
    with MilvusIndex(uri, index_type="FLAT") as index:
        name = index.build(gallery, fields, tag="t")
    code = f"from visual_search.index.client import check_lite_file_free; check_lite_file_free({uri!r})"
    other = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert other.returncode == 0, other.stderr[-1000:]
    with MilvusIndex(uri, index_type="FLAT") as again:
        assert again.attach(name) and again.search(gallery[:3], k=1).rows[:, 0].tolist() == [0, 1, 2]
