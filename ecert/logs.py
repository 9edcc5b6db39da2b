"""Structured JSON logs that never carry secrets or personal ID numbers."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from typing import Any

__all__ = ["configure_logging", "redact", "request_id_var"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Chinese resident ID (18 chars, last may be X), unified social credit codes (18), bearer tokens,
# JWTs, Vault tokens and secret-looking key=value pairs.
_PATTERNS = [
    (re.compile(r"\b\d{17}[\dXx]\b"), "[id-number]"),
    (re.compile(r"\b[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}\b"), "[credit-code]"),
    (re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[jwt]"),
    (re.compile(r"\b(?:hvs|s|hvb|b)\.[A-Za-z0-9_-]{20,}"), "[vault-token]"),
    (re.compile(r"(?i)((?:password|secret|token|api[_-]?key|secret_id)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"), r"\1[redacted]"),
]
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


_SECRET_KEY = re.compile(r"(?i)password|secret|token|api[_-]?key|authorization|cookie")


# One pass that finds whether any pattern could apply: most log fields (methods, routes, slugs) match none,
# and then the six substitutions are skipped (each inline (?i) becomes a scoped group).
_ANY = re.compile("|".join(
    f"(?i:{p.pattern[4:]})" if p.pattern.startswith("(?i)") else f"(?:{p.pattern})" for p, _ in _PATTERNS))


def redact(text: str) -> str:
    if _ANY.search(text) is None:
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _clean(key: str, value: Any) -> Any:
    """A log field with secrets and ID numbers removed; fields are cleaned one by one (short strings)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return "[redacted]" if _SECRET_KEY.search(key) else redact(value)
    if isinstance(value, dict):
        return {str(k): _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(key, v) for v in value]
    return _clean(key, str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _clean(key, value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    logging.Formatter.converter = __import__("time").gmtime
