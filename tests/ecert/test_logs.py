"""Log redaction: the one-pass pre-check never lets a secret through that the six substitutions would catch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ecert.logs import _PATTERNS, redact

_PIECES = st.sampled_from([
    "110101199003074514", "11010119900307451X", "91440101MA59C2XK1J", "Bearer abc.DEF-1", "bearer x", "eyJhbGc.eyJzdWI.sig",
    "hvs.ABCDEFGHIJKLMNOPQRSTUV", "s.abcdefghijklmnopqrstuvwxyz", "password=hunter2", "SECRET_ID: 'abc'", "api-key=1",
    "token\"=x", " ", "/api/v1/licences/{licence_id}", "GET", "ok", "中文", "x", "9", "{", "}", ",", "=",
])


def _slow(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_PIECES, st.text(max_size=8)), max_size=8).map("".join))
def test_fast_path_redacts_exactly_like_every_substitution(text: str) -> None:
    assert redact(text) == _slow(text)


def test_plain_fields_come_back_unchanged() -> None:
    for text in ("GET", "/api/v1/verify/{token}", "request", "licence-not-found"):
        assert redact(text) is text
