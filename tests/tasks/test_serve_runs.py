"""serve.py on runs of their own (each test evaluates and serves its own run, apart from test_serve.py's
shared one, so that the two files run side by side): a CLIP run with a detector whose collection is gone,
a trained checkpoint, and a run with PCA."""

from __future__ import annotations

import itertools
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import run_script
from tests.serve_process import serve_process
from tests.tasks.test_serve import (
    CHROMIUM,
    EVALUATE_TINY,
    categories_of,
    evaluate_tiny,
    gallery_of,
    histogram,
    iou,
    png,
    split_of,
    upload,
    web_page,
)


@pytest.mark.slow
def test_a_clip_run_with_a_detector_rebuilt_text_queries_and_crops(tmp_path):
    """A CLIP run (random weights: behaviour more than quality) whose detector crops its gallery and
    queries, and whose Milvus collection was deleted: serve.py indexes the gallery again exactly as
    evaluate.py did, answers text queries, and crops queries as the run did (padded, squared) unless the
    request says detector=off or gives a box."""
    run_dir = evaluate_tiny(tmp_path / "log", "encoder=clip", "detector=foreground")
    row = pd.read_csv(tmp_path / "log" / "leaderboard.csv").iloc[0]
    db = tmp_path / "log" / "cache" / "milvus.db"
    drop = (
        f"from pymilvus import MilvusClient; MilvusClient({str(db)!r}).drop_collection({row['collection']!r})"
    )
    subprocess.run([sys.executable, "-c", drop], check=True)  # Milvus Lite: one process per file, so not here
    item = gallery_of(str(run_dir)).iloc[0]
    photo = Image.new("RGB", (240, 160), "white")  # the product small and off-centre
    photo.paste(Image.open(item["image"]).convert("RGB"), (150, 70))
    # a wide window and room for 8 decodes at once: the detections of 8 concurrent uploads share batches
    wide = ("batching.window_ms=100", "limits.max_concurrent_decodes=8")
    with serve_process(tmp_path / "serve.log", f"run={run_dir}", *wide) as base:
        health = httpx.get(f"{base}/health").json()
        assert health["text_search"] is True and health["classifier"] == "zero_shot"
        assert health["detector"] == "foreground"
        assert health["collection"] == row["collection"]  # the same (cropped) vectors, so the same name

        response = httpx.post(f"{base}/search/text", json={"text": "a photo of a hat", "k": 5}, timeout=60)
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert len(items) == 5 and all(a["score"] >= b["score"] for a, b in itertools.pairwise(items))
        category = categories_of(base)[0]
        body = httpx.post(
            f"{base}/search/text", json={"text": "x", "k": 20, "category": category["name"]}
        ).json()
        assert {i["category_id"] for i in body["items"]} == {category["id"]}
        if Path(CHROMIUM).exists():
            with web_page(base) as page:
                with page.expect_response(lambda r: r.url.endswith("/search/text")) as answered:
                    page.fill("#text", "a photo of a hat")
                    page.press("#text", "Enter")
                assert answered.value.status == 200
                page.wait_for_function("document.querySelectorAll('#results .card').length === 12")
                photo.save(tmp_path / "photo.png")  # image + text: refine the detected product "in red"
                with page.expect_response(lambda r: r.url.endswith("/search/objects")) as objects:
                    page.set_input_files("#file", str(tmp_path / "photo.png"))
                assert objects.value.json()["detector"] == "foreground"
                with page.expect_response(lambda r: r.url.endswith("/search")) as refined:
                    page.fill("#refine-text", "in red")
                    page.press("#refine-text", "Enter")
                body = refined.value.json()
                assert refined.value.status == 200 and body["text"] == "in red" and body["region"] == "user"
                unrefined = objects.value.json()["objects"][0]["items"]
                assert [i["score"] for i in body["items"]] != [i["score"] for i in unrefined][:10]
                assert "text=in+red" in page.url

        detected = upload(base, png(photo), k=1).json()
        assert detected["detector"] == "foreground" and detected["region"] == "detected"
        assert iou(detected["box"], [150, 70, 214, 134]) > 0.6  # around the pasted 64 px product
        whole = upload(base, png(photo), k=1, detector="off").json()
        assert whole["box"] is None and whole["detector"] is None and whole["region"] == "whole"
        assert whole["items"][0]["score"] != detected["items"][0]["score"]  # another region was embedded
        given = upload(base, png(photo), k=1, box="0,0,100,100").json()
        assert given["region"] == "user" and given["detector"] is None
        assert given["box"][:2] == [0, 0] and 100 <= given["box"][2] <= 120  # padded as the run pads
        name = "visual_search_detect_batch_size"
        before = histogram(httpx.get(f"{base}/metrics").text, name)
        with ThreadPoolExecutor(8) as pool:  # detections are micro-batched like searches
            bodies = list(pool.map(lambda _: upload(base, png(photo), k=1).json(), range(8)))
        assert all(b["box"] == detected["box"] for b in bodies)
        after = histogram(httpx.get(f"{base}/metrics").text, name)
        assert after["sum"] - before["sum"] == 8 and after["count"] - before["count"] < 8  # shared batches
    log = (tmp_path / "serve.log").read_text()
    assert "not found" in log and "indexing the gallery again" in log and "index: 100%" in log
    assert "does not reproduce" not in log  # the gallery was indexed (and its first item cropped) alike


@pytest.mark.slow
def test_a_trained_checkpoint_is_served_from_its_leaderboard_row_or_by_path(tmp_path):
    """train.py evaluates its best checkpoint onto the leaderboard: serving that row loads the fine-tuned
    encoder (which reproduces the indexed vectors) and its category head; checkpoint= serves it too."""
    log_dir = tmp_path / "log"
    result = run_script("train.py", *EVALUATE_TINY, "trainer.max_epochs=1", f"paths.log_dir={log_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    row = pd.read_csv(log_dir / "leaderboard.csv").iloc[0]
    assert Path(row["checkpoint"]).is_file()
    image = Path(gallery_of(row["run_dir"])["image"].iloc[0]).read_bytes()
    assert row["weights"].startswith("checkpoint:") and row["debug"] == "tiny"
    for overrides in (
        [f"run={row['run_dir']}"],
        ["debug=tiny", f"paths.log_dir={log_dir}", f"checkpoint={row['checkpoint']}"],
    ):
        log = tmp_path / "serve.log"
        with serve_process(log, *overrides) as base:
            health = httpx.get(f"{base}/health").json()
            assert health["encoder"] == "FineTunedEncoder" and health["classifier"] == "head"
            body = upload(base, image, k=3, filter="predicted").json()
            assert body["predicted"] and {i["category_id"] for i in body["items"]} == {body["category"]}
        assert "does not reproduce" not in log.read_text()
    assert health["source"] == row["checkpoint"]


@pytest.mark.slow
def test_with_pca_serve_predicts_the_categories_evaluate_reported(tmp_path):
    """filter=predicted with PCA on: serve.py (its own process, the gallery re-embedded from the cache and
    PCA fitted again) predicts for every query image the category evaluate.py predicted and scored."""
    log_dir = tmp_path / "log"
    overrides = (
        "index/reduction=pca",
        "index.reduction.dim=8",
        "filter=predicted",
        "inference.precision=fp32",
    )
    run_dir = evaluate_tiny(log_dir, *overrides)
    reported = pd.read_csv(run_dir / "queries.csv", dtype=str).set_index("item_id")["predicted"]
    queries = split_of(run_dir, "query").set_index("item_id")["image"]
    with serve_process(tmp_path / "serve.log", f"run={run_dir}") as base:
        assert httpx.get(f"{base}/health").json()["index"].endswith("reduction=pca8")
        served = {
            item_id: upload(base, Path(path).read_bytes(), k=1, filter="predicted").json()["category"]
            for item_id, path in queries.items()
        }
    assert len(served) == len(reported) == 12 and served == reported.to_dict()
