"""Prometheus metrics every service exposes on `GET /metrics`."""

import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_REQUESTS = Counter(
    "whistle_http_requests_total",
    "HTTP requests answered",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "whistle_http_request_seconds", "HTTP request latency", ["service", "method", "route"]
)
MESSAGES_CONSUMED = Counter(
    "whistle_messages_consumed_total", "Events consumed", ["service", "queue", "type", "outcome"]
)
MESSAGES_PUBLISHED = Counter(
    "whistle_messages_published_total", "Events published and confirmed", ["service", "type"]
)
OUTBOX_BACKLOG = Gauge("whistle_outbox_backlog", "Events waiting in the outbox", ["service"])
MONGO_COMMANDS = Counter(
    "whistle_mongo_commands_total",
    "MongoDB commands sent (PyMongo command monitoring)",
    ["command"],
)
TIMERS_FIRED = Counter("whistle_timers_fired_total", "Stored timers fired", ["service", "kind"])
TIMERS_FAILED = Counter(
    "whistle_timers_failed_total",
    "Stored timers given up after their handler failed every attempt",
    ["service", "kind"],
)
OUTBOX_SET_ASIDE = Counter(
    "whistle_outbox_set_aside_total",
    "Outbox documents set aside because their event no longer validates",
    ["service"],
)


# The methods a Whistle service answers; anything else a client invents is counted as
# "other", so a flood of made-up methods cannot grow /metrics without bound.
SERVED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in SERVED_METHODS else "other"


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            # The route template, not the raw path, keeps label cardinality bounded.
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            method = method_label(scope.get("method", ""))
            HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
            HTTP_LATENCY.labels(self.service, method, template).observe(
                time.perf_counter() - started
            )


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
