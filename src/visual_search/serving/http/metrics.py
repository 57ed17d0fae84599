"""Prometheus metrics of one app (its own registry): requests, latency, pipeline stages, batch sizes; and
the ASGI middleware that counts every request by route template (bounded label values)."""

from __future__ import annotations

import time

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other: "other"
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)

disable_created_metrics()  # no *_created series: they double the output and say little


class ServerMetrics:
    """The metrics `GET /metrics` exposes, in Prometheus text format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, memory, open fds
        self.requests = Counter(
            "visual_search_requests",
            "HTTP requests by method, route and status code",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "visual_search_request_seconds",
            "HTTP request latency by route",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stages = Histogram(
            "visual_search_stage_seconds",
            "Time per search stage (decode, detect, embed, search, queue)",
            ("stage",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "visual_search_batch_size",
            "Queries per micro-batch (one encoder forward and one index search)",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.detect_batch_size = Histogram(
            "visual_search_detect_batch_size",
            "Query images per detection micro-batch (one detector forward)",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def observe_stages(self, seconds: dict[str, float]) -> None:
        for stage, value in seconds.items():
            self.stages.labels(stage).observe(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware: count each HTTP request and time it, labelled by its route template."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")  # the template (/items/{item_id}/image), not the URL
            method = scope["method"] if scope["method"] in METHODS else "other"  # bounded label values
            self.metrics.requests.labels(method, path, str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - start)
