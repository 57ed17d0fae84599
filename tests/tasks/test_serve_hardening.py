"""serve.py against hostile or careless clients, through the real server: images that would cost too
much, floods of made-up methods, malformed bodies, foreign Host headers, slow or silent clients, and
/docs with no network."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from PIL import Image

from tests.serve_process import serve_process
from tests.tasks.test_serve import CHROMIUM, CHROMIUM_FLAGS, evaluate_tiny, needs_chromium, png, upload

HEADER_TIMEOUT, BODY_TIMEOUT = 1.5, 2.5


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """A tiny evaluate run served with the default limits and short read deadlines."""
    log_dir = tmp_path_factory.mktemp("hardening")
    run_dir = evaluate_tiny(log_dir)
    deadlines = (f"server.header_timeout_s={HEADER_TIMEOUT}", f"server.body_timeout_s={BODY_TIMEOUT}")
    with serve_process(log_dir / "serve.log", f"run={run_dir}", *deadlines) as base:
        yield base


def metric(base: str, name: str) -> float:
    """A gauge of the server's own Prometheus metrics (its process: memory, open files)."""
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise KeyError(name)


def test_extreme_aspect_ratios_are_refused_from_the_header(server):
    for size in ((8000, 1), (1, 200_000)):
        start = time.perf_counter()
        response = upload(server, png(Image.new("L", size)))
        assert response.status_code == 422 and "more than 20 times" in response.json()["detail"]
        assert time.perf_counter() - start < 2
    assert upload(server, png(Image.new("RGB", (400, 40), "red"))).status_code == 200  # 10:1 is served


@pytest.mark.slow
def test_a_burst_of_large_images_takes_bounded_memory(server):
    """8 uploads of a 5000x5000 image (84 KB of PNG, 75 MB of pixels) at once: decoded 2 at a time, so
    the server's resident memory (glibc keeps what it took: this is the peak) grows by under 1.2 GB."""
    photo = png(Image.new("RGB", (5000, 5000), "white"))
    before = metric(server, "process_resident_memory_bytes")
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: upload(server, photo, timeout=300).status_code, range(8)))
    grown = metric(server, "process_resident_memory_bytes") - before
    assert statuses == [200] * 8
    assert grown < 1.2e9, f"resident memory grew by {grown / 1e9:.2f} GB"


def test_made_up_methods_share_one_metric_label(server):
    for i in range(300):
        httpx.request(f"NOPE{i}", f"{server}/search")
    before = len(httpx.get(f"{server}/metrics").text)
    for i in range(300, 600):
        httpx.request(f"NOPE{i}", f"{server}/health")
    text = httpx.get(f"{server}/metrics").text
    assert 'method="other"' in text and "NOPE" not in text
    assert len(text) - before < 2000  # no new series per method


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"image": "data:x"}, "empty"),
        ('{"image": "x", "k": ' + "9" * 5000 + "}", "not valid JSON"),
        ('{"image": "x", "box": ' + "[" * 5000 + "]" * 5000 + "}", "nests deeper than 32 levels"),
        ('{"image": "x", "box": ' + "[" * 100 + "]" * 100 + "}", "nests deeper than 32 levels"),
    ],
    ids=["data URL without data", "5000-digit k", "deeply nested", "nested 100 levels"],
)
def test_malformed_json_is_a_400_in_one_line(server, body, message):
    content = body if isinstance(body, str) else json.dumps(body)
    response = httpx.post(
        f"{server}/search", content=content, headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert message in detail and "\n" not in detail and len(detail) < 300


def test_text_query_errors_are_one_line_and_do_not_echo_the_input(server):
    cases = [
        ({"text": "x" * 5000}, 422, "at most 1000 characters"),
        ({"text": "x", "k": "ten"}, 422, "k:"),
        ({"txt": "x"}, 422, "text"),
    ]
    for body, status, message in cases:
        response = httpx.post(f"{server}/search/text", json=body)
        assert response.status_code == status, response.text
        detail = response.json()["detail"]
        assert isinstance(detail, str) and message in detail and "xxxx" not in detail
    nested = httpx.post(f"{server}/search/text", content='{"text": ' + "[" * 3000 + "]" * 3000 + "}")
    assert nested.status_code == 400 and "nests deeper" in nested.json()["detail"]


def test_a_foreign_host_header_is_refused(server):
    response = httpx.get(f"{server}/health", headers={"host": "evil.example"})
    assert response.status_code == 400
    assert "'evil.example' is not served here" in response.json()["detail"]
    assert "server.allowed_hosts" in response.json()["detail"]
    port = server.rsplit(":", 1)[1]
    assert httpx.get(f"{server}/health", headers={"host": f"localhost:{port}"}).status_code == 200


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `sock` (None: still open after `seconds`)."""
    sock.settimeout(seconds)
    start = time.perf_counter()
    try:
        while sock.recv(1024):
            pass
    except TimeoutError:
        return None
    return time.perf_counter() - start


def test_slow_or_silent_clients_are_cut_off_and_their_connections_freed(server):
    host, port = server.removeprefix("http://").split(":")
    files_before = metric(server, "process_open_fds")
    silent = [socket.create_connection((host, int(port))) for _ in range(30)]
    for sock in silent[:10]:
        sock.sendall(b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
    assert metric(server, "process_open_fds") >= files_before + 30
    slow_body = socket.create_connection((host, int(port)))
    slow_body.sendall(b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n")
    start = time.perf_counter()
    while time.perf_counter() - start < BODY_TIMEOUT + 2:
        try:
            slow_body.sendall(b"x")  # one byte every 0.3 s, as a slow-loris client sends
        except OSError:
            break
        time.sleep(0.3)
    assert closed_within(slow_body, 2) is not None
    assert time.perf_counter() - start < BODY_TIMEOUT + 2.5
    for sock in silent:
        waited = closed_within(sock, HEADER_TIMEOUT + 3)
        assert waited is not None and waited < HEADER_TIMEOUT + 3
        sock.close()
    time.sleep(0.5)
    assert metric(server, "process_open_fds") <= files_before + 2
    assert httpx.get(f"{server}/health").status_code == 200  # and the server serves on


def test_api_docs_are_served_from_local_assets(server):
    for path in ("/docs", "/redoc"):
        page = httpx.get(f"{server}{path}").text
        assets = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert assets and all(url.startswith("/") for url in assets), assets  # this server's own files
        assert all(httpx.get(f"{server}{url}").status_code == 200 for url in assets)


@needs_chromium
def test_api_docs_render_in_a_browser_with_no_network(server):
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{server}/docs")
            try:
                page.wait_for_selector(".swagger-ui .opblock-summary-path", timeout=30_000)
            except Exception as e:
                raise AssertionError(f"Swagger UI did not render: {errors} {requested}") from e
            paths = page.locator(".opblock-summary-path").all_inner_texts()
        finally:
            browser.close()
    assert not errors, errors
    assert {"/search", "/search/text", "/health"} <= {p.strip() for p in paths}
    assert all(url.startswith(server) for url in requested), requested
