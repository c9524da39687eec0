"""ICCID / IMSI coding, checked against the GSMA TS.48 packages' own files."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed import asn1
from rspfed.errors import DecodeError, EncodeError
from rspfed.saip import decode_iccid, decode_imsi, encode_iccid, encode_imsi, summarise
from tests.paths import TS48

PACKAGES = sorted(TS48.glob("*.der"))


@pytest.mark.parametrize("path", PACKAGES, ids=lambda p: p.name)
def test_header_iccid_matches_ef_iccid(path: Path) -> None:
    """The header's plain-order ICCID and EF_ICCID's swapped one name the same card."""
    data = path.read_bytes()
    elements = asn1.decode_profile_elements(data)
    header_iccid = elements[0].chosen["iccid"].native
    mf = next(e.chosen for e in elements if e.name == "mf")
    ef_iccid = b"".join(
        item.chosen.native for item in mf["ef-iccid"] if item.name == "fillFileContent"
    )
    assert decode_iccid(header_iccid, swapped=False) == decode_iccid(ef_iccid)
    # TS.48 test profiles: ICCID 8900 0123 4567 8901 23xx, IMSI 001 01 0123456063
    summary = summarise(data)
    assert summary.iccid.startswith("890001234567890123")
    assert summary.imsis == ("001010123456063",)


@given(st.text(alphabet="0123456789", min_size=18, max_size=20), st.booleans())
def test_iccid_round_trip(iccid: str, swapped: bool) -> None:
    assert decode_iccid(encode_iccid(iccid, swapped=swapped), swapped=swapped) == iccid


@given(st.text(alphabet="0123456789", min_size=6, max_size=15))
def test_imsi_round_trip(imsi: str) -> None:
    encoded = encode_imsi(imsi)
    assert len(encoded) == 9
    assert decode_imsi(encoded) == imsi


def test_imsi_layout_ts31102() -> None:
    # TS 31.102 §4.2.2: length, then parity nibble 9 (odd) + first digit, swapped BCD;
    # compared with EF_IMSI as the GSMA TS.48 package stores it
    elements = asn1.decode_profile_elements(PACKAGES[0].read_bytes())
    usim = next(e.chosen for e in elements if e.name == "usim")
    stored = b"".join(i.chosen.native for i in usim["ef-imsi"] if i.name == "fillFileContent")
    assert encode_imsi("001010123456063") == stored


def test_identity_layouts_from_the_specifications() -> None:
    # TS 31.102 §4.2.2: length, "digit 1 | parity" (9 odd, 1 even), nibble-swapped BCD
    assert encode_imsi("001010123456789") == bytes.fromhex("080910101032547698")
    assert encode_imsi("00101012345678") == bytes.fromhex("0801101010325476f8")
    # TS 102 221 §13.2: nibble-swapped BCD, F-padded to 10 octets
    assert encode_iccid("8988211000000000001") == bytes.fromhex("988812010000000000f1")
    assert encode_iccid("89000123456789012341") == bytes.fromhex("98001032547698103214")
    with pytest.raises(EncodeError):
        encode_iccid("1234")


@pytest.mark.parametrize("bad", ["", "12345", "1234567890123456", "00101a"])
def test_imsi_rejects_bad_digits(bad: str) -> None:
    with pytest.raises(EncodeError):
        encode_imsi(bad)


@given(st.binary(max_size=12))
def test_decoders_only_raise_decode_error(data: bytes) -> None:
    for decoder in (decode_imsi, decode_iccid):
        try:
            result = decoder(data)
        except DecodeError:
            continue
        assert result.isdigit()
