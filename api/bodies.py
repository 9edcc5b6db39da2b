"""JSON request bodies as ecert accepts them: at most ``max_json_bytes``, and UTF-8 (RFC 8259 section 8.1).

Python's JSON reader parses whatever it is given, of any size, and guesses UTF-16 and UTF-32 from the first bytes,
so the limit and the encoding are checked here, before any route reads the body: an oversized body is refused
from its Content-Length, or once the bytes received pass the limit (413), never parsed; a body in another
encoding is 415. Other media types (PDF uploads, forms) pass untouched; their routes keep their own limits.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_response

__all__ = ["JsonBodyLimit"]


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _charset(content_type: str) -> str | None:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


class JsonBodyLimit:
    """ASGI middleware: JSON bodies over ``limit`` bytes are 413 and bodies not in UTF-8 are 415, unparsed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        content_type = headers.get("content-type", "")
        if not _is_json(content_type):
            await self.app(scope, receive, send)
            return
        if _charset(content_type) not in (None, "utf-8", "utf8"):
            await self._refuse(scope, receive, send, 415, f"JSON must be UTF-8, not {_charset(content_type)}")
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send, 413, f"a JSON body may be at most {self.limit} bytes")
            return
        body = await self._read(receive)
        if body is None:
            await self._refuse(scope, receive, send, 413, f"a JSON body may be at most {self.limit} bytes")
            return
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            await self._refuse(scope, receive, send, 415, "JSON must be UTF-8 (RFC 8259)")
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        slug, title = ("payload-too-large", "Payload too large") if status == 413 else (
            "unsupported-media-type", "Unsupported media type")
        response = problem_response(Request(scope), status=status, slug=slug, title=title, detail=detail,
                                    headers={"Connection": "close"} if status == 413 else None)
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        message: Any = await receive()
        return message

    return replayed
