"""Activation codes (SGP.22 §4.1): parsing, validation, text round trip, QR codes."""

from __future__ import annotations

import contextlib
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import DecodeError, RspfedError, UsageError
from rspfed.lpa import ActivationCode

# SGP.22 §4.1 examples and real-world shapes
EXAMPLES = [
    (
        "LPA:1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815",
        "SMDP.GSMA.COM",
        "04386-AGYFT-A74Y8-3F815",
        None,
        False,
    ),
    (
        "LPA:1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$$1",
        "SMDP.GSMA.COM",
        "04386-AGYFT-A74Y8-3F815",
        None,
        True,
    ),
    (
        "LPA:1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746$1",
        "SMDP.GSMA.COM",
        "04386-AGYFT-A74Y8-3F815",
        "1.3.6.1.4.1.31746",
        True,
    ),
    (
        "LPA:1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746",
        "SMDP.GSMA.COM",
        "04386-AGYFT-A74Y8-3F815",
        "1.3.6.1.4.1.31746",
        False,
    ),
    ("1$rsp.example.com:8443$ABC", "rsp.example.com:8443", "ABC", None, False),
    ("LPA:1$smdp.example$", "smdp.example", "", None, False),
    ("lpa:1$smdp.example$X$$$future$fields", "smdp.example", "X", None, False),
    ("  LPA:1$smdp.example.$K-1  \n", "smdp.example.", "K-1", None, False),
]


@pytest.mark.parametrize(("text", "address", "mid", "oid", "cc"), EXAMPLES)
def test_parse_examples(text: str, address: str, mid: str, oid: str | None, cc: bool) -> None:
    code = ActivationCode.parse(text)
    assert (code.address, code.matching_id, code.oid, code.confirmation_code_required) == (
        address,
        mid,
        oid,
        cc,
    )
    assert ActivationCode.parse(code.to_text()) == code


def test_to_text_exact() -> None:
    assert ActivationCode("a.example", "M").to_text() == "LPA:1$a.example$M"
    assert ActivationCode("a.example", "M", None, True).to_text() == "LPA:1$a.example$M$$1"
    assert ActivationCode("a.example", "M", "1.2.3").to_text(prefix=False) == "1$a.example$M$1.2.3"
    assert ActivationCode("a.example:1234", "M").port == 1234
    assert ActivationCode("a.example.", "M").host == "a.example"
    assert ActivationCode("a.example", "M").port == 443


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("LPA:2$smdp.example$X", "ActivationCode"),
        ("LPA:1$smdp.example", "ActivationCode"),
        ("LPA:1$$X", "ActivationCode.address"),
        ("LPA:1$smdp example$X", "ActivationCode.address"),
        ("LPA:1$-smdp.example$X", "ActivationCode.address"),
        ("LPA:1$smdp.example:0$X", "ActivationCode.address"),
        ("LPA:1$smdp.example:65536$X", "ActivationCode.address"),
        ("LPA:1$smdp.example:08443$X", "ActivationCode.address"),
        ("LPA:1$sm\u00e9dp.example$X", "ActivationCode.address"),
        ("LPA:1$smdp.example$abc", "ActivationCode.matchingId"),
        ("LPA:1$smdp.example$A_B", "ActivationCode.matchingId"),
        ("LPA:1$smdp.example$X$1.2.x", "ActivationCode.oid"),
        ("LPA:1$smdp.example$X$1$1", "ActivationCode.oid"),
        ("LPA:1$smdp.example$X$$0", "ActivationCode.ccRequiredFlag"),
        ("LPA:1$smdp.example$" + "A" * 250, "ActivationCode"),
    ],
)
def test_bad_codes_name_the_field(text: str, field: str) -> None:
    with pytest.raises(DecodeError) as info:
        ActivationCode.parse(text)
    assert info.value.type_name == field


def test_constructor_validates() -> None:
    with pytest.raises(UsageError):
        ActivationCode("bad host", "X")
    with pytest.raises(UsageError):
        ActivationCode("ok.example", "lower")
    with pytest.raises(UsageError):
        ActivationCode("ok.example", "X", oid="nope")


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
codes = st.builds(
    ActivationCode,
    address=st.builds(
        lambda labels, port: ".".join(labels) + (f":{port}" if port else ""),
        st.lists(_LABEL, min_size=1, max_size=4),
        st.one_of(st.none(), st.integers(1, 65535)),
    ),
    matching_id=st.text(alphabet=string.digits + string.ascii_uppercase + "-", max_size=40),
    oid=st.one_of(
        st.none(),
        st.lists(st.integers(0, 2**40), min_size=2, max_size=8).map(
            lambda arcs: ".".join(map(str, arcs))
        ),
    ),
    confirmation_code_required=st.booleans(),
)


@given(codes)
def test_round_trip(code: ActivationCode) -> None:
    assert ActivationCode.parse(code.to_text()) == code
    assert ActivationCode.parse(code.to_text(prefix=False)) == code


@given(st.text(max_size=300))
def test_random_text_raises_only_rspfed_errors(text: str) -> None:
    try:
        code = ActivationCode.parse(text)
    except RspfedError:
        return
    assert ActivationCode.parse(code.to_text()) == code


@given(
    st.lists(
        st.text(alphabet=string.printable + "\u00e9\u4e2d", max_size=20), min_size=1, max_size=7
    )
)
def test_random_fields_raise_only_rspfed_errors(fields: list[str]) -> None:
    text = "LPA:" + "$".join(["1", *fields])
    with contextlib.suppress(RspfedError):
        ActivationCode.parse(text)


def test_qr_png(tmp_path: Path) -> None:
    path = tmp_path / "code.png"
    ActivationCode("smdp.example", "ABC-123", None, True).qr_png(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_qr_png_unwritable(tmp_path: Path) -> None:
    with pytest.raises(RspfedError):
        ActivationCode("smdp.example", "X").qr_png(tmp_path / "missing" / "code.png")


def test_qr_terminal_decodes_to_the_code() -> None:
    # the terminal rendering is a square of the QR's modules; decode it back
    # with segno's own matrix to check it shows *this* code (no QR reader here)
    import segno

    code = ActivationCode("smdp.example", "ABC-123")
    text = code.qr_terminal(compact=False)
    lines = [line for line in text.splitlines() if line]
    expected = segno.make(code.to_text(), error="m", micro=False)
    width = expected.symbol_size(border=2)[0]
    assert len(lines) == width
    assert "LPA:" not in text
