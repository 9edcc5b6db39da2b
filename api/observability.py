"""Request IDs, access logs and Prometheus metrics, as one pure-ASGI middleware."""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response
from ecert.logs import request_id_var

__all__ = ["ObservabilityMiddleware", "render_metrics", "REQUESTS", "LATENCY"]

log = logging.getLogger("ecert.access")
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

REQUESTS = Counter("ecert_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "ecert_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_Children = tuple[Any, Any]
_CHILDREN: dict[tuple[str, str, int], _Children] = {}  # (method, route, status) -> (counter, histogram) children


def _children(method: str, route: str, status: int) -> _Children:
    """The labelled metric children, looked up once per label set (``labels()`` locks and re-validates each call)."""
    if method not in _METHODS:  # any token is a valid HTTP method: do not let clients grow the label sets
        method = "OTHER"
    key = (method, route, status)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
    return found


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else os.urandom(16).hex()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # A bug, not a domain error: log it with the request id and answer a bare 500 problem.
            log.exception("unhandled error", extra={"route": getattr(scope.get("route"), "path", "unmatched")})
            if "started" in status_holder:
                raise
            response = problem_response(
                None, status=500, slug="internal-error", title="Internal error", instance=scope["path"]
            )
            await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            status = status_holder["status"]
            requests, latency = _children(scope["method"], route, status)
            requests.inc()
            latency.observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(token)


def render_metrics() -> tuple[bytes, str]:
    """Prometheus text; merges all worker processes when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
