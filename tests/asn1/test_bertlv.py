"""ISO 7816-4 BER-TLV: strict parsing, nested lookup, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.asn1 import bertlv
from rspfed.errors import DecodeError, EncodeError

# valid tags: one octet (number < 31), two octets (31..127), three octets
one = st.integers(0, 0xFF).filter(lambda b: b & 0x1F != 0x1F and b not in (0x00, 0xFF))
two = st.tuples(st.sampled_from([0x1F, 0x3F, 0x5F, 0x7F, 0x9F, 0xBF, 0xDF, 0xFF]),
                st.integers(31, 127)).map(lambda t: (t[0] << 8) | t[1])
three = st.tuples(st.sampled_from([0x1F, 0x5F, 0x9F, 0xBF]), st.integers(0x81, 0xFF),
                  st.integers(0, 0x7F)).map(lambda t: (t[0] << 16) | (t[1] << 8) | t[2])
tags = st.one_of(one, two, three)
primitive_tags = tags.filter(lambda t: not bertlv.is_constructed(t))


def test_known_apdu_data() -> None:
    # GetProfilesInfo response fragment: BF2D { A0 { E3 { 5A iccid, 9F70 state } } }
    data = bytes.fromhex("bf2d14a012e3105a0a98102143658709214365" + "9f700101")
    (top,) = bertlv.parse(data)
    assert top.tag == 0xBF2D
    iccid = bertlv.find(data, 0xBF2D, 0xA0, 0xE3, 0x5A)
    assert iccid is not None
    assert iccid.value == bytes.fromhex("98102143658709214365")
    state = top.find(0xA0, 0xE3, 0x9F70)
    assert state is not None
    assert state.value == b"\x01"
    assert bertlv.find(data, 0xBF2D, 0xA0, 0x4F) is None
    assert bertlv.encode(bertlv.parse(data)) == data


@given(st.lists(st.tuples(primitive_tags, st.binary(max_size=300)), max_size=5))
def test_round_trip(items: list[tuple[int, bytes]]) -> None:
    data = bertlv.encode(items)
    parsed = bertlv.parse(data)
    assert [(t.tag, t.value) for t in parsed] == items
    assert bertlv.split_top_level(data) == [bertlv.encode_tlv(t, v) for t, v in items]


@given(st.lists(st.tuples(primitive_tags, st.binary(max_size=40)), max_size=4))
def test_nested_round_trip(inner: list[tuple[int, bytes]]) -> None:
    data = bertlv.encode_tlv(0xBF22, bertlv.encode(inner))
    top = bertlv.parse_one(data)
    assert [(t.tag, t.value) for t in top.children()] == inner


@given(st.binary(max_size=40))
def test_garbage_raises_only_decode_error(data: bytes) -> None:
    try:
        items = bertlv.parse(data)
    except DecodeError:
        return
    assert bertlv.encode(items) == data


@pytest.mark.parametrize(
    ("data", "offset", "words"),
    [
        (bytes.fromhex("5a8105") + b"\x00" * 5, 0, "non-minimal length"),
        (bytes.fromhex("5a820005") + b"\x00" * 5, 0, "non-minimal length"),
        (bytes.fromhex("5a80"), 0, "indefinite"),
        (bytes.fromhex("5a83000001") + b"\x00", 0, "not supported"),
        (bytes.fromhex("5a0501"), 0, "runs past"),
        (bytes.fromhex("5f1e00"), 0, "non-minimal tag"),
        (bytes.fromhex("5f803700"), 0, "non-minimal tag"),
        (bytes.fromhex("5f818181"), 0, "longer than 3"),
        (bytes.fromhex("5a0100" + "00"), 3, "padding"),
        (bytes.fromhex("5f"), 0, "truncated"),
    ],
)
def test_strict_errors(data: bytes, offset: int, words: str) -> None:
    with pytest.raises(DecodeError) as info:
        bertlv.parse(data)
    assert info.value.offset == offset
    assert words in str(info.value)


def test_nested_error_offset() -> None:
    data = bytes.fromhex("a0055a8101ff00")  # inner non-minimal length at byte 2
    with pytest.raises(DecodeError) as info:
        bertlv.parse_one(data).children()
    assert info.value.offset == 2


def test_parse_one_rejects_trailing() -> None:
    with pytest.raises(DecodeError):
        bertlv.parse_one(bytes.fromhex("5a00") + b"\x01")


def test_encode_errors() -> None:
    with pytest.raises(EncodeError):
        bertlv.encode_tlv(0x5F1E, b"")  # non-minimal tag
    with pytest.raises(EncodeError):
        bertlv.encode_tlv(0x5A, b"\x00" * 0x10000)
    assert bertlv.encode_length(0x80) == b"\x81\x80"
    assert bertlv.encode_length(0x100) == b"\x82\x01\x00"
