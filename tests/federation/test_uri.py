"""The rspfed: URI: grammar, round trip, refusals, QR output."""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import DecodeError, UsageError
from rspfed.federation import MAX_URI_LENGTH, RspfedUri, token_from_uri, token_uri


@given(st.binary(min_size=1, max_size=700))
def test_round_trip(payload: bytes) -> None:
    text = token_uri(payload)
    assert text.startswith("rspfed:1:token:")
    assert "=" not in text
    # the payload is plain base64url (the standard library decodes it)
    encoded = text.split(":")[3]
    assert base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)) == payload
    assert token_from_uri(text) == payload
    assert RspfedUri.parse(text) == RspfedUri(type="token", payload=payload)


def test_scheme_is_case_insensitive_and_whitespace_ignored() -> None:
    assert token_from_uri("  RSPFED:1:token:AAEC\n") == b"\x00\x01\x02"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("rspfed:1:pairing:AAEC", "'pairing'"),
        ("rspfed:2:token:AAEC", "version"),
        ("rspfed:1:token:AAE=", "base64url"),
        ("rspfed:1:token:AAF", "canonical"),
        ("rspfed:1:token:A", "base64url"),
        ("rspfed:1:token:", "base64url"),
        ("rspfed:1:token:AA+/", "base64url"),
        ("LPA:1$smdp.example$X", "form"),
        ("rspfed:1:token", "form"),
        ("rspfed:1:Token:AAEC", "malformed type"),
        ("rspfed:1:token:" + "A" * MAX_URI_LENGTH, "longer"),
    ],
)
def test_refusals(text: str, needle: str) -> None:
    with pytest.raises(DecodeError) as info:
        RspfedUri.parse(text)
    assert needle in str(info.value)


@given(st.text(max_size=80))
def test_fuzz_text(text: str) -> None:
    with contextlib.suppress(DecodeError):
        RspfedUri.parse(text)


def test_formatting_refusals() -> None:
    with pytest.raises(UsageError):
        RspfedUri(type="nope", payload=b"x")
    with pytest.raises(UsageError):
        RspfedUri(type="token", payload=b"")
    with pytest.raises(UsageError):
        token_uri(bytes(MAX_URI_LENGTH))


def test_qr(tmp_path: Path) -> None:
    uri = RspfedUri(type="token", payload=bytes(range(190)))
    png = tmp_path / "token.png"
    uri.qr_png(png)
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    art = uri.qr_terminal()
    assert art.count("\n") > 20
