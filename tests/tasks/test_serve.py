"""serve.py as users meet it: the real server (uvicorn on a loopback port, started by the entry script)
serving a real evaluate run on tiny synthetic data, every endpoint and every bad input, and the web page
driven in headless Debian Chromium."""

from __future__ import annotations

import base64
import io
import itertools
import os
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from playwright.sync_api import Page
from torchvision.ops import box_iou

from tests.conftest import ROOT, run_script
from tests.serve_process import serve_process
from visual_search.data.build import build_items

EVALUATE_TINY = (
    "debug=tiny",
    "logger=none",
    "evaluation.baselines=false",
    "evaluation.timing.single_queries=0",
    "evaluation.timing.forward_batches=0",
)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def histogram(metrics: str, name: str) -> dict[str, float]:
    """The count and sum of a Prometheus histogram in /metrics text."""
    values = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line.startswith(f"{name}_"))
    return {key: float(values[f"{name}_{key}"]) for key in ("count", "sum")}


def iou(a: list[float], b: list[float]) -> float:
    return float(box_iou(torch.tensor([a], dtype=torch.float32), torch.tensor([b], dtype=torch.float32)))


def evaluate_tiny(log_dir: Path, *overrides: str) -> Path:
    """Run evaluate.py on tiny data into `log_dir`; returns the run folder."""
    result = run_script("evaluate.py", *EVALUATE_TINY, f"paths.log_dir={log_dir}", *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (log_dir / "evaluate" / "runs").iterdir()
    return run_dir


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """One evaluate run (EfficientNet-Lite0, pip weights) on tiny data: its log dir."""
    log_dir = tmp_path_factory.mktemp("serve_tiny")
    evaluate_tiny(log_dir)
    return log_dir


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory) -> Iterator[str]:
    """The tiny run (a debug run: never "best", so named) served with small limits and a wide batching
    window."""
    log = tmp_path_factory.mktemp("serve_log") / "serve.log"
    (run_dir,) = (tiny_run / "evaluate" / "runs").iterdir()
    with serve_process(
        log,
        f"run={run_dir}",
        "limits.max_upload_mb=0.25",
        "limits.max_pixels=1000000",
        "batching.window_ms=50",
    ) as base:
        yield base


def split_of(run_dir: str | Path, split: str) -> pd.DataFrame:
    """The items of a run's split (item_id, image, title, category, label), from the data layer."""
    cfg = OmegaConf.load(Path(run_dir) / ".hydra" / "config.yaml")
    cfg.paths.root_dir = str(ROOT)
    return build_items(cfg).split(split).reset_index()


def gallery_of(run_dir: str) -> pd.DataFrame:
    return split_of(run_dir, "gallery")


@pytest.fixture(scope="module")
def gallery(tiny_run) -> pd.DataFrame:
    return gallery_of(pd.read_csv(tiny_run / "leaderboard.csv")["run_dir"][0])


def two_categories(gallery: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The first gallery item and the first one of another category."""
    first = gallery.iloc[0]
    return first, gallery[gallery["label"] != first["label"]].iloc[0]


def upload(base: str, image: bytes, timeout: float = 60, **fields: object) -> httpx.Response:
    data = {key: str(value) for key, value in fields.items()}
    return httpx.post(f"{base}/search", files={"image": ("q.png", image)}, data=data, timeout=timeout)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def side_by_side(left: str, right: str) -> Image.Image:
    """Two catalogue images next to each other (a 'street photo' with two products)."""
    a, b = Image.open(left).convert("RGB"), Image.open(right).convert("RGB")
    canvas = Image.new("RGB", (a.width + b.width, max(a.height, b.height)), "white")
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width, 0))
    return canvas


# ---- what is served ----------------------------------------------------------------------------------


def test_health_names_the_run_and_its_collection(server, tiny_run):
    health = httpx.get(f"{server}/health").json()
    row = pd.read_csv(tiny_run / "leaderboard.csv").iloc[0]
    assert health["status"] == "ok" and health["approach"] == "efficientnet_lite0_pretrained"
    assert health["source"] == row["run_dir"] and health["collection"] == row["collection"]
    assert health["items"] == 36 and health["dataset"] == "synthetic" and health["text_search"] is False
    assert "IVF_FLAT(nlist=1," in health["index"]


def test_categories_list_the_gallery_labels(server):
    categories = httpx.get(f"{server}/categories").json()["categories"]
    assert len(categories) == 4 and {c["count"] for c in categories} == {9}
    assert all(c["name"] and c["id"] for c in categories)


def test_openapi_docs_describe_both_upload_forms(server):
    assert "swagger" in httpx.get(f"{server}/docs").text.lower()
    body = httpx.get(f"{server}/openapi.json").json()["paths"]["/search"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)


# ---- image search ------------------------------------------------------------------------------------


def test_search_finds_the_item_itself_first(server, gallery):
    item = gallery.iloc[0]
    response = upload(server, Path(item["image"]).read_bytes(), k=5)
    assert response.status_code == 200, response.text
    body = response.json()
    items = body["items"]
    assert len(items) == 5 and items[0]["id"] == item["item_id"] and items[0]["title"] == item["title"]
    assert items[0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert [i["rank"] for i in items] == [1, 2, 3, 4, 5]
    assert all(a["score"] >= b["score"] for a, b in itertools.pairwise(items))
    assert set(body["timings"]) == {"decode_ms", "detect_ms", "embed_ms", "search_ms", "queue_ms", "total_ms"}
    assert body["box"] is None and body["image_size"] == [64, 64] and body["k"] == 5
    image = httpx.get(f"{server}{items[0]['image_url']}")
    assert image.status_code == 200 and image.content == Path(item["image"]).read_bytes()
    assert image.headers["content-type"] == "image/jpeg"


def test_base64_json_gives_the_same_results_as_an_upload(server, gallery):
    data = Path(gallery["image"][3]).read_bytes()
    uploaded = upload(server, data, k=4).json()["items"]
    for encoded in (
        base64.b64encode(data).decode(),
        "data:image/jpeg;base64," + base64.b64encode(data).decode(),
    ):
        response = httpx.post(f"{server}/search", json={"image": encoded, "k": 4}, timeout=60)
        assert response.status_code == 200, response.text
        assert [i["id"] for i in response.json()["items"]] == [i["id"] for i in uploaded]


def test_the_box_selects_which_product_is_searched(server, gallery):
    left, right = two_categories(gallery)
    photo = png(side_by_side(left["image"], right["image"]))
    whole = upload(server, photo, k=3).json()
    right_half = upload(server, photo, k=3, box="0.5,0,1,1").json()
    left_half = upload(server, photo, k=3, box="0,0,64,64").json()  # pixels
    # The box embedded is the user's, grown by the run's crop.padding (0.1) as evaluate.py grows it.
    assert right_half["items"][0]["id"] == right["item_id"] and right_half["box"] == [57, 0, 128, 64]
    assert right_half["region"] == "user" and whole["region"] == "whole"
    assert left_half["items"][0]["id"] == left["item_id"] and left_half["box"] == [0, 0, 71, 64]
    assert whole["box"] is None and whole["items"][0]["score"] < right_half["items"][0]["score"]


def test_category_filter_by_name_or_id(server, gallery):
    categories = httpx.get(f"{server}/categories").json()["categories"]
    data = Path(gallery["image"][0]).read_bytes()
    for category in categories:
        for value in (category["id"], category["name"]):
            body = upload(server, data, k=20, category=value).json()
            assert body["category"] == category["id"] and body["category_name"] == category["name"]
            assert len(body["items"]) == 9  # every item of the category, nothing else
            assert {i["category_id"] for i in body["items"]} == {category["id"]}


def test_predicted_filter_searches_one_predicted_category(server, gallery):
    body = upload(server, Path(gallery["image"][5]).read_bytes(), k=20, filter="predicted").json()
    assert body["predicted"] is True and body["category"] in {c["id"] for c in categories_of(server)}
    assert {i["category_id"] for i in body["items"]} == {body["category"]} and len(body["items"]) == 9


def categories_of(base: str) -> list[dict]:
    return httpx.get(f"{base}/categories").json()["categories"]


def test_concurrent_searches_are_micro_batched_and_keep_their_own_results(server, gallery):
    chosen = gallery.iloc[:8]
    images = [Path(p).read_bytes() for p in chosen["image"]]
    with ThreadPoolExecutor(len(images)) as pool:
        responses = list(pool.map(lambda data: upload(server, data, k=1), images))
    assert all(r.status_code == 200 for r in responses)
    bodies = [r.json() for r in responses]
    assert [b["items"][0]["id"] for b in bodies] == chosen["item_id"].tolist()
    assert max(b["batch_size"] for b in bodies) > 1


def test_text_search_needs_a_text_tower(server, gallery):
    response = httpx.post(f"{server}/search/text", json={"text": "a red hat"})
    assert response.status_code == 422 and "no text tower" in response.json()["detail"]
    refined = upload(server, Path(gallery["image"][0]).read_bytes(), text="in red")
    assert refined.status_code == 422 and "no text tower" in refined.json()["detail"]


def test_detect_finds_each_product_largest_first_and_objects_are_searched_together(server, gallery):
    left, right = two_categories(gallery)
    photo = side_by_side(left["image"], right["image"])
    photo.paste(Image.open(right["image"]).convert("RGB").resize((32, 32)), (96, 32))  # a small third
    found = httpx.post(f"{server}/detect", files={"image": ("p.png", png(photo))}).json()
    boxes = [o["box"] for o in found["objects"]]
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    assert found["detector"] == "foreground" and len(boxes) == 3 and areas == sorted(areas, reverse=True)
    assert iou(boxes[0], [0, 0, 64, 64]) > 0.5 or iou(boxes[0], [64, 0, 128, 64]) > 0.5
    body = httpx.post(
        f"{server}/search/objects", files={"image": ("p.png", png(photo))}, data={"k": 3}
    ).json()
    assert [o["box"] for o in body["objects"]] == boxes and all(len(o["items"]) == 3 for o in body["objects"])
    assert {o["items"][0]["id"] for o in body["objects"][:2]} == {left["item_id"], right["item_id"]}
    held = httpx.get(f"{server}/uploads/{body['upload']}")
    assert (
        held.status_code == 200 and held.content == png(photo) and held.headers["content-type"] == "image/png"
    )
    assert httpx.get(f"{server}/uploads/{'0' * 24}").status_code == 404


def test_more_like_this_searches_an_items_stored_vector(server, gallery):
    item = gallery.iloc[0]
    body = httpx.get(f"{server}/items/{item['item_id']}/similar", params={"k": 5}).json()
    scores = [i["score"] for i in body["items"]]
    assert len(scores) == 5 and item["item_id"] not in [i["id"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    by_image = upload(server, Path(item["image"]).read_bytes(), k=6).json()["items"]
    assert [i["id"] for i in by_image[1:]] == [
        i["id"] for i in body["items"]
    ]  # its image finds itself, then these
    category = str(item["category_id"])
    within = httpx.get(f"{server}/items/{item['item_id']}/similar", params={"category": category}).json()
    assert {i["category_id"] for i in within["items"]} == {category}
    missing = httpx.get(f"{server}/items/nope/similar")
    assert missing.status_code == 404 and missing.json()["detail"] == "unknown item 'nope'"


# ---- bad input ---------------------------------------------------------------------------------------


def truncated_jpeg(path: str) -> bytes:
    return Path(path).read_bytes()[:300]


BAD_UPLOADS = [
    ("not an image", lambda g: b"%PDF-1.4 not an image", {}, 400, "not an image"),
    ("truncated", lambda g: truncated_jpeg(g["image"][0]), {}, 400, "cannot decode"),
    ("empty", lambda g: b"", {}, 400, "empty"),
    ("too many pixels", lambda g: png(Image.new("L", (1200, 1000))), {}, 413, "1,200,000 pixels"),
    ("body too large", lambda g: os.urandom(300_000), {}, 413, "limit is 262,144 bytes"),
    ("k zero", lambda g: Path(g["image"][0]).read_bytes(), {"k": 0}, 422, "k=0"),
    ("k too big", lambda g: Path(g["image"][0]).read_bytes(), {"k": 101}, 422, "between 1 and 100"),
    ("k not a number", lambda g: Path(g["image"][0]).read_bytes(), {"k": "ten"}, 422, "k:"),
    ("box inverted", lambda g: Path(g["image"][0]).read_bytes(), {"box": "50,50,10,10"}, 422, "box"),
    ("box outside", lambda g: Path(g["image"][0]).read_bytes(), {"box": "0,0,65,30"}, 422, "box"),
    ("box of 3", lambda g: Path(g["image"][0]).read_bytes(), {"box": "1,2,3"}, 422, "four numbers"),
    ("unknown category", lambda g: Path(g["image"][0]).read_bytes(), {"category": "boat"}, 422, "unknown"),
    (
        "category and predicted",
        lambda g: Path(g["image"][0]).read_bytes(),
        {"category": "hat", "filter": "predicted"},
        422,
        "not both",
    ),
    ("bad filter", lambda g: Path(g["image"][0]).read_bytes(), {"filter": "oracle"}, 422, "filter"),
    ("detector on", lambda g: Path(g["image"][0]).read_bytes(), {"detector": "on"}, 422, "no detector"),
    ("unknown field", lambda g: Path(g["image"][0]).read_bytes(), {"kk": 3}, 422, "kk"),
]


@pytest.mark.parametrize(
    ("make", "fields", "status", "message"),
    [case[1:] for case in BAD_UPLOADS],
    ids=[case[0] for case in BAD_UPLOADS],
)
def test_bad_uploads_get_a_status_and_one_line(server, gallery, make, fields, status, message):
    response = upload(server, make(gallery), **fields)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and message in detail


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"json": {"image": "not base64!", "k": 2}}, 400, "base64"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "JSON"),
        ({"json": {"k": 2}}, 422, "image"),
        ({"files": {"k": (None, "2")}}, 422, "'image'"),  # a form without the file
        ({"content": b"x", "headers": {"content-type": "text/plain"}}, 415, "multipart"),
        ({"content": b"x" * 300_000, "headers": {"content-type": "application/json"}}, 413, "limit"),
    ],
    ids=[
        "bad base64",
        "bad json",
        "json without image",
        "form without image",
        "wrong type",
        "json too large",
    ],
)
def test_bad_request_bodies(server, kwargs, status, message):
    response = httpx.post(f"{server}/search", timeout=30, **kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_chunked_body_over_the_limit_is_refused(server):
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 10_000

    response = httpx.post(
        f"{server}/search", content=chunks(), headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 413


@pytest.mark.parametrize("item_id", ["nope", "..%2F..%2F..%2Fetc%2Fpasswd", "../../etc/passwd", "%00"])
def test_unknown_items_are_404(server, item_id):
    response = httpx.get(f"{server}/items/{item_id}/image")
    assert response.status_code == 404 and "root:" not in response.text


def test_text_query_validation(server):
    assert httpx.post(f"{server}/search/text", json={"text": ""}).status_code == 422
    assert httpx.post(f"{server}/search/text", json={"text": "x", "k": 0}).status_code == 422


# ---- observability -----------------------------------------------------------------------------------


def test_metrics_count_requests_and_time_them(server, gallery):
    upload(server, Path(gallery["image"][0]).read_bytes(), k=2)
    upload(server, b"junk")
    text = httpx.get(f"{server}/metrics").text
    assert 'visual_search_requests_total{method="POST",route="/search",status="200"}' in text
    assert 'visual_search_requests_total{method="POST",route="/search",status="400"}' in text
    assert 'visual_search_request_seconds_bucket{le="0.1",route="/search"}' in text
    assert 'visual_search_stage_seconds_count{stage="embed"}' in text
    assert "visual_search_batch_size_bucket" in text
    assert 'route="/items/{item_id:path}/image"' in text  # templates, not raw URLs


# ---- the web page ------------------------------------------------------------------------------------


def test_page_and_assets_use_no_external_resource(server):
    for path in ("/", "/static/app.js", "/static/style.css"):
        response = httpx.get(f"{server}{path}")
        assert response.status_code == 200
        assert (
            "http://" not in response.text
            and "https://" not in response.text
            and "//cdn" not in response.text
        )


@contextmanager
def web_page(base: str, viewport: dict[str, int] | None = None) -> Iterator[Page]:
    """The search page in headless Debian Chromium, loaded; on exit, no script error happened and no
    request left the server."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport=viewport or {"width": 1200, "height": 800})
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("request", lambda request: requested.append(request.url))
            page.goto(base)
            page.wait_for_function("document.querySelectorAll('#category option').length > 2")
            yield page
        finally:
            browser.close()
    assert not errors, errors
    assert all(url.startswith((base, "blob:", "data:")) for url in requested), requested


needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")


@needs_chromium
def test_browser_objects_box_more_like_this_and_the_url(server, gallery, tmp_path):
    """As a shopper: a photo of two products shows each as a chip (both searched in one request; the
    largest first), a tap switches the results with no request, a drawn box overrides, "more like this"
    searches a result's stored vector, and the page URL reloads the same search."""
    left, right = two_categories(gallery)
    photo = tmp_path / "street.png"
    side_by_side(left["image"], right["image"]).save(photo)
    with web_page(server) as page:
        assert page.inner_text("#model") == "Search 36 products by photo"  # no index jargon for shoppers
        assert page.locator("#about").is_hidden() and page.locator("#refine").is_hidden()  # no text tower
        page.click("#about-toggle")
        assert "efficientnet_lite0_pretrained" in page.inner_text("#about") and "IVF_FLAT" in page.inner_text(
            "#about"
        )

        with page.expect_response(lambda r: r.url.endswith("/search/objects")) as first:
            page.set_input_files("#file", str(photo))
        body = first.value.json()
        assert first.value.status == 200 and len(body["objects"]) == 2 and body["detector"] == "foreground"
        page.wait_for_function("document.querySelectorAll('#chips .chip').length === 2")
        page.wait_for_selector("#results .card")
        shown = page.locator("#results .card .title").first.inner_text()
        assert shown == body["objects"][0]["items"][0]["title"]
        width = page.evaluate("document.querySelector('#preview').getBoundingClientRect().width")
        assert width == 128  # the photo at its own resolution, not scaled up

        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.locator("#chips .chip").nth(1).click()  # the other product: its results came with the photo
        other = body["objects"][1]["items"][0]["title"]
        page.wait_for_function(
            "t => document.querySelector('#results .card .title').textContent === t", arg=other
        )
        assert not [url for url in requests if "/search" in url]
        assert {body["objects"][0]["items"][0]["id"], body["objects"][1]["items"][0]["id"]} == {
            left["item_id"],
            right["item_id"],
        }

        # Drag from just right of the middle to beyond the bottom-right corner: the right product.
        preview = page.locator("#preview").bounding_box()
        assert preview is not None
        x, y = preview["x"] + preview["width"] / 2 + 0.3, preview["y"] + 0.3
        with page.expect_response(lambda r: r.url.endswith("/search")) as boxed:
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x + 20, y + 20, steps=3)
            page.mouse.move(
                preview["x"] + preview["width"] + 10, preview["y"] + preview["height"] + 10, steps=3
            )
            page.mouse.up()
        body = boxed.value.json()
        padded = 64 - 0.1 * 64 - 1  # the right half, grown by the run's crop.padding
        assert body["box"] is not None and body["box"][0] >= padded
        assert body["items"][0]["id"] == right["item_id"] and body["upload"]
        page.wait_for_function(
            "title => document.querySelector('#results .card .title')?.textContent === title",
            arg=right["title"],
        )
        assert page.locator("#results .card").count() == 12 and page.locator("#box").is_visible()
        first_card = page.locator("#results .card").first
        assert first_card.locator(".title").get_attribute("title") == right["title"]  # in full on hover
        loaded = "[...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth)"
        page.wait_for_function(loaded)
        screenshot = tmp_path / "serve_page.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"screenshot: {screenshot}")

        # Narrow to a category: only its 9 items come back, as cards.
        category = str(right["category_id"])
        with page.expect_response(lambda r: r.url.endswith("/search")) as narrowed:
            page.select_option("#category", category)
        assert {i["category_id"] for i in narrowed.value.json()["items"]} == {category}
        page.wait_for_function("document.querySelectorAll('#results .card').length === 9")
        assert set(page.locator("#results .card .category").all_inner_texts()) == {right["category"]}
        expected = [i["id"] for i in narrowed.value.json()["items"]]

        # The URL holds the query: a new page at it searches the same upload, box and category again.
        shared = page.url
        assert f"upload={body['upload']}" in shared and "box=" in shared and f"category={category}" in shared
        page.goto("about:blank")
        with page.expect_response(lambda r: r.url.endswith("/search")) as reloaded:
            page.goto(shared)
        assert [i["id"] for i in reloaded.value.json()["items"]] == expected
        page.wait_for_function("document.querySelectorAll('#results .card').length === 9")
        assert page.input_value("#category") == category and page.locator("#box").is_visible()

        # More like this: the first result's stored vector, the item itself left out.
        with page.expect_response(lambda r: r.url.endswith("/search")):
            page.select_option("#category", "")
        liked = page.locator("#results .card").first
        liked_title = liked.locator(".title").inner_text()
        with page.expect_response(lambda r: "/similar" in r.url) as similar:
            liked.locator(".like").click()
        assert similar.value.status == 200
        items = similar.value.json()["items"]
        assert len(items) == 12 and liked_title not in [i["title"] for i in items]
        assert "item=" in page.url
        page.wait_for_function("document.querySelector('#status').textContent.includes('more like this')")

        # Drop another photo on the page: its one object searched, the left product first.
        dropped = page.evaluate_handle(
            """([b64, name]) => {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                const transfer = new DataTransfer();
                transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
                return transfer;
            }""",
            [base64.b64encode(Path(left["image"]).read_bytes()).decode(), "left.jpg"],
        )
        with page.expect_response(
            lambda r: r.url.endswith("/search/objects") and r.json()["image_size"] == [64, 64]
        ) as after_drop:
            page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
        assert after_drop.value.json()["objects"][0]["items"][0]["id"] == left["item_id"]
    assert Image.open(screenshot).width == 1200


@needs_chromium
def test_the_page_holds_at_phone_width(server, gallery, tmp_path):
    left, right = two_categories(gallery)
    photo = tmp_path / "street.png"
    side_by_side(left["image"], right["image"]).save(photo)
    with web_page(server, viewport={"width": 390, "height": 844}) as page:
        with page.expect_response(lambda r: r.url.endswith("/search/objects")):
            page.set_input_files("#file", str(photo))
        page.wait_for_selector("#results .card")
        page.click("#about-toggle")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing overflows sideways
        for selector in ("#model", "#about", "#results .card", "#chips .chip"):
            box = page.locator(selector).first.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, selector
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)


# ---- start-up --------------------------------------------------------------------------------------


def test_without_an_evaluated_run_it_says_how_to_make_one(tmp_path):
    result = run_script("serve.py", f"paths.log_dir={tmp_path}", timeout=120)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no leaderboard at") and "python evaluate.py" in last
    assert "Traceback" not in result.stderr


def test_debug_runs_are_never_the_best_to_serve(tiny_run):
    result = run_script("serve.py", "debug=tiny", f"paths.log_dir={tiny_run}", timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "no run to serve on the leaderboard" in last and "for dataset synthetic-" in last
    assert "debug runs" in last and "run=<evaluate run folder>" in last


def test_a_busy_port_is_one_line_before_anything_loads(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = run_script("serve.py", f"paths.log_dir={tmp_path}", f"server.port={port}", timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use; choose server.port=..."
    )
