"""ISO/IEC 7816-4 APDU parsing, class bytes and status words.

Reference encodings are built here by hand with plain byte arithmetic
(ISO/IEC 7816-3 §12.1.3), independently of :meth:`CommandApdu.encode`.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import ProtocolError, UsageError
from rspfed.euicc.apdu import (
    SW_CLA_NOT_SUPPORTED,
    SW_WRONG_LENGTH,
    ClassInfo,
    CommandApdu,
    ResponseApdu,
    StatusError,
    decode_cla,
    encode_cla,
    is_valid_sw,
    parse_command,
    sw_more_data,
    sw_retries,
    sw_wrong_le,
)

header = st.tuples(*(st.integers(0, 255) for _ in range(4)))


def reference_encoding(
    hdr: tuple[int, int, int, int], data: bytes, ne: int | None, extended: bool
) -> bytes:
    out = bytes(hdr)
    if extended:
        if data:
            out += bytes([0, len(data) >> 8, len(data) & 0xFF]) + data
            if ne is not None:
                out += bytes([(ne >> 8) & 0xFF, ne & 0xFF])
        elif ne is not None:
            out += bytes([0, (ne >> 8) & 0xFF, ne & 0xFF])
    else:
        if data:
            out += bytes([len(data)]) + data
        if ne is not None:
            out += bytes([ne & 0xFF])
    return out


@st.composite
def commands(draw: st.DrawFn) -> tuple[tuple[int, int, int, int], bytes, int | None, bool]:
    extended = draw(st.booleans())
    hdr = draw(header)
    data = draw(st.binary(max_size=300 if extended else 255))
    ne = draw(st.none() | st.integers(1, 65536 if extended else 256))
    if not extended and len(data) > 255:
        data = data[:255]
    if extended and not data and ne is None:
        extended = False  # case 1 has no extended form
    return hdr, data, ne, extended


@given(commands())
def test_parse_reference_encodings(
    c: tuple[tuple[int, int, int, int], bytes, int | None, bool],
) -> None:
    hdr, data, ne, extended = c
    raw = reference_encoding(hdr, data, ne, extended)
    cmd = parse_command(raw)
    assert (cmd.cla, cmd.ins, cmd.p1, cmd.p2) == hdr
    assert cmd.data == data
    assert cmd.ne == ne
    assert cmd.extended == extended
    assert (
        cmd.case == (1 + (ne is not None)) + (2 if data else 0) - (1 if data and ne is None else 0)
        or True
    )
    expected_case = {(False, False): 1, (False, True): 2, (True, False): 3, (True, True): 4}
    assert cmd.case == expected_case[(bool(data), ne is not None)]
    assert cmd.encode() == raw


@given(st.binary(max_size=600))
def test_any_bytes_parse_or_6700(raw: bytes) -> None:
    sw = None
    try:
        cmd = parse_command(raw)
    except StatusError as exc:
        sw = exc.sw
    else:
        assert cmd.encode() == raw
    assert sw in (None, SW_WRONG_LENGTH)


@pytest.mark.parametrize(
    ("hexapdu", "case", "lc", "ne"),
    [
        ("00A40000", 1, 0, None),
        ("00B0000000", 2, 0, 256),
        ("00B0000010", 2, 0, 16),
        ("00A40000023F00", 3, 2, None),
        ("00A40004023F0000", 4, 2, 256),
        ("00B0000000 0000", 2, 0, 65536),
        ("00B0000000 0100", 2, 0, 256),
        ("00D6000000 0002 AABB", 3, 2, None),
        ("00D6000000 0002 AABB 0000", 4, 2, 65536),
    ],
)
def test_cases(hexapdu: str, case: int, lc: int, ne: int | None) -> None:
    cmd = parse_command(bytes.fromhex(hexapdu.replace(" ", "")))
    assert cmd.case == case
    assert len(cmd.data) == lc
    assert cmd.ne == ne


@pytest.mark.parametrize(
    "hexapdu",
    [
        "",
        "00",
        "00A400",
        "00A4000002 3F",
        "00A4000002 3F0000 00",
        "00A4000000 00",
        "00A4000000 0002 AA",
        "00A4000000 0000 AABB",
    ],
)
def test_wrong_lengths(hexapdu: str) -> None:
    with pytest.raises(StatusError) as info:
        parse_command(bytes.fromhex(hexapdu.replace(" ", "")))
    assert info.value.sw == 0x6700


def reference_cla(cla: int) -> tuple[int, bool, bool] | None:
    """ISO/IEC 7816-4 Table 2/3 and ETSI TS 102 221 §10.1.1, written out per range."""
    if cla in range(0x20) or cla in range(0x80, 0xA0):
        return cla & 3, (cla >> 2) & 3 != 0, bool(cla & 0x10)
    if cla in range(0x40, 0x80) or cla in range(0xC0, 0xFF):
        return 4 + (cla & 0xF), bool(cla & 0x20), bool(cla & 0x10)
    return None


@pytest.mark.parametrize("cla", range(256))
def test_class_bytes(cla: int) -> None:
    ref = reference_cla(cla)
    if ref is None:
        with pytest.raises(StatusError) as refused:
            decode_cla(cla)
        assert refused.value.sw == SW_CLA_NOT_SUPPORTED
        return
    info = decode_cla(cla)
    assert (info.channel, info.secure_messaging, info.chaining) == ref
    assert info.proprietary == (cla >= 0x80)


@pytest.mark.parametrize("channel", range(20))
def test_encode_cla(channel: int) -> None:
    for proprietary in (False, True):
        assert decode_cla(encode_cla(channel, proprietary=proprietary)) == ClassInfo(
            channel, False, False, proprietary
        )
    with pytest.raises(UsageError):
        encode_cla(20)


def test_status_word_helpers() -> None:
    assert sw_more_data(0x2C) == 0x612C
    assert sw_more_data(256) == 0x6100
    assert sw_more_data(1000) == 0x6100
    assert sw_wrong_le(0x10) == 0x6C10
    assert sw_retries(3) == 0x63C3
    assert is_valid_sw(0x9000)
    assert is_valid_sw(0x6A82)
    assert not is_valid_sw(0x6000)
    assert not is_valid_sw(0x0000)
    assert not is_valid_sw(0x7000)
    with pytest.raises(UsageError):
        StatusError(0x1234)


def test_response_apdu() -> None:
    r = ResponseApdu.from_bytes(bytes.fromhex("0102 6A82"))
    assert (r.data, r.sw, r.sw1, r.sw2) == (b"\x01\x02", 0x6A82, 0x6A, 0x82)
    assert r.encode() == bytes.fromhex("01026A82")
    for bad in ("", "90", "0000"):
        with pytest.raises(ProtocolError):
            ResponseApdu.from_bytes(bytes.fromhex(bad))


def test_command_validation() -> None:
    with pytest.raises(UsageError):
        CommandApdu(0x100, 0, 0, 0)
    with pytest.raises(UsageError):
        CommandApdu(0, 0, 0, 0, b"\x00" * 256)
    with pytest.raises(UsageError):
        CommandApdu(0, 0, 0, 0, ne=257)
    assert CommandApdu(0, 0, 0, 0, b"\x00" * 256, extended=True).case == 3
