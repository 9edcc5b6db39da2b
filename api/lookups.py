"""Link lookups by token, shared by the verification routes and :class:`LookupShortcut`, the fast path in front of
the router for the platform's most frequent request (an anonymous ``GET /api/v1/verify/{token}``)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from ecert.container import Verification
from verify.model import Answer, Outcome

__all__ = ["HEADERS", "LOOKUP_ROUTE", "LookupShortcut", "answer_for", "status_of"]

NOT_FOUND_COST = 5.0
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex",
           "X-Content-Type-Options": "nosniff"}

LOOKUP_ROUTE = "/api/v1/verify/{token}"


def status_of(outcome: Outcome) -> int:
    return 404 if outcome is Outcome.NOT_FOUND else 200


async def answer_for(svc: Verification, client: str, token: str) -> Answer | float:
    """The answer for a token, or the seconds ``client`` must wait (over its limit). A lookup that finds nothing
    costs ``NOT_FOUND_COST``, so guessing tokens is slow."""
    wait = svc.limiter.take(client)
    if wait > 0:
        return wait
    answer = svc.link.remembered(token) or await svc.lookups.answer(token)
    if answer.outcome is Outcome.NOT_FOUND:
        svc.limiter.charge(client, NOT_FOUND_COST - 1)
    return answer


_LOOKUP_PATH = LOOKUP_ROUTE.removesuffix("{token}")
_RAW_HEADERS = [(name.lower().encode(), value.encode()) for name, value in HEADERS.items()]


@dataclass(frozen=True)
class _Named:
    path: str  # what the metrics and the access log call the route


class LookupShortcut:
    """Anonymous JSON lookups (``GET /api/v1/verify/{token}``, no query string, no bearer token): the most frequent
    request of the platform, answered here without routing, dependency solving and the inner middleware, which cost
    more CPU than a remembered answer. It sits inside :class:`~api.observability.ObservabilityMiddleware` (request
    id, metrics and access log as for any route) and sends what :func:`api.routes.verification.verify_token` would,
    byte for byte. Anything else goes on to the app; so does a lookup over its limit or one that fails (an outage): the route answers it with
    its problem+json (a lookup only reads, so asking again is safe; a failed one is counted twice by the limiter)."""

    route = _Named(LOOKUP_ROUTE)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _anonymous_lookup(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        svc: Verification = scope["app"].state.container.verification
        try:
            answer = await answer_for(svc, scope["client"][0] if scope.get("client") else "unknown", token)
        except Exception:  # noqa: BLE001 - the route reads again and answers with the problem (503 for an outage)
            answer = None
        if not isinstance(answer, Answer):
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        await send({"type": "http.response.start", "status": status_of(answer.outcome),
                    "headers": [*_RAW_HEADERS, (b"content-length", str(len(answer.body)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer.body})


def _anonymous_lookup(scope: Scope) -> str | None:
    """The token of an anonymous JSON lookup, None for any other request."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope["query_string"] or not scope["path"].startswith(_LOOKUP_PATH):
        return None
    token = scope["path"][len(_LOOKUP_PATH):]
    if not token or "/" in token or any(name == b"authorization" for name, _ in scope["headers"]):
        return None
    return token
