"""Text and numbers as the legal record keeps them: NFC, printable, and of a size a register can hold.

Names and field values go onto the public verification page, the PDF and seal certificate subjects, so characters
that change how text *looks* without being seen are refused, with a JSON pointer, rather than stored (Unicode
UTS #39 and UTR #36 as the anchor): controls (C0, C1: NUL, ESC...), format characters (bidi overrides and
isolates such as U+202E, zero-width space and joiners, the BOM, soft hyphen), line and paragraph separators,
surrogates, private-use and unassigned code points, and the invisible fillers that render as blanks (Hangul
fillers, combining grapheme joiner, variation selectors). Field values may hold line breaks and tabs (an
address); names may not. Text is normalised to NFC so that one name is stored one way.

Numbers: integers beyond :data:`MAX_INTEGER` (2^53 - 1, the largest every JSON reader keeps exactly) and
non-finite floats (NaN, Infinity, which Python's JSON reader accepts) are refused.
"""

from __future__ import annotations

import math
import unicodedata
from typing import Any

from ecert.errors import InvalidInput

__all__ = ["MAX_INTEGER", "text_problem", "clean_text", "clean_values"]

MAX_INTEGER = 2**53 - 1
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
_INVISIBLE = {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0, *range(0x180B, 0x1810), *range(0xFE00, 0xFE10),
              *range(0xE0100, 0xE01F0)}
_FIELD_WHITESPACE = {"\n", "\t", "\r"}


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be kept (naming the first offending character), or None."""
    for position, char in enumerate(value):
        if multiline and char in _FIELD_WHITESPACE:
            continue
        if unicodedata.category(char) in _REFUSED_CATEGORIES or ord(char) in _INVISIBLE:
            name = unicodedata.name(char, "unnamed")
            return f"character {position + 1} is U+{ord(char):04X} ({name}), a control or invisible character"
    return None


def clean_text(value: Any, pointer: str, *, multiline: bool = False) -> Any:
    """``value`` in NFC if it is acceptable text; InvalidInput at ``pointer`` if not. Non-strings pass unchanged."""
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFC", value)
    problem = text_problem(text, multiline=multiline)
    if problem:
        raise InvalidInput(f"{pointer.removeprefix('#/')}: {problem}", errors=[{"pointer": pointer, "detail": problem}])
    return text


def clean_values(value: Any, pointer: str) -> Any:
    """A JSON value (a licence's fields) with every string and key in NFC; InvalidInput listing each refused
    string, key or number with its pointer."""
    errors: list[dict[str, str]] = []
    cleaned = _walk(value, pointer, errors)
    if errors:
        raise InvalidInput(f"{len(errors)} value(s) cannot be recorded", errors=errors)
    return cleaned


def _walk(value: Any, pointer: str, errors: list[dict[str, str]]) -> Any:
    if isinstance(value, str):
        text = unicodedata.normalize("NFC", value)
        problem = text_problem(text, multiline=True)
        if problem:
            errors.append({"pointer": pointer, "detail": problem})
        return text
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if abs(value) > MAX_INTEGER:
            errors.append({"pointer": pointer, "detail": f"an integer must be within ±{MAX_INTEGER}"})
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            errors.append({"pointer": pointer, "detail": "a number must be finite"})
        return value
    if isinstance(value, list):
        return [_walk(item, f"{pointer}/{i}", errors) for i, item in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            name = unicodedata.normalize("NFC", str(key))
            escaped = name.replace("~", "~0").replace("/", "~1")
            problem = text_problem(name)
            if problem:
                errors.append({"pointer": f"{pointer}/{escaped}", "detail": f"the name: {problem}"})
            out[name] = _walk(item, f"{pointer}/{escaped}", errors)
        return out
    return value
