"""PLMN / USIM PLMN-list codecs: byte examples from TS 24.008 / TS 31.102 and round trips.

Byte examples are the published codings: TS 24.008 §10.5.1.3 (octet 1
``MCC2 MCC1``, octet 2 ``MNC3 MCC3``, octet 3 ``MNC2 MNC1``; ``F`` for a
2-digit MNC's third digit) and the access technology bits of TS 31.102
§4.2.5 (octet 1 b8 UTRAN, b7 E-UTRAN, b6/b5 E-UTRAN WB-S1/NB-S1, b4
NG-RAN; octet 2 b8 GSM, b7 GSM COMPACT), EF.HPPLMN per TS 31.102 §4.2.6.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import DecodeError, EncodeError
from rspfed.network.plmn import (
    HPPLMN_DEFAULT,
    decode_act,
    decode_hpplmn,
    decode_plmn,
    decode_plmn_list,
    decode_plmn_wact_list,
    encode_act,
    encode_hpplmn,
    encode_plmn,
    encode_plmn_list,
    encode_plmn_wact_list,
)
from rspfed.network.radio import Rat

plmns = st.from_regex(r"[0-9]{5,6}", fullmatch=True)
rat_sets = st.frozensets(st.sampled_from(list(Rat)))


@pytest.mark.parametrize(
    ("plmn", "coded"),
    [
        ("24681", "42f618"),  # MCC 246, MNC 81 (the TS 24.008 figure's example values)
        ("00101", "00f110"),  # the test network
        ("26201", "62f210"),  # MCC 262 (Germany), MNC 01
        ("310410", "130014"),  # a 3-digit MNC: MNC3 '0' in octet 2's high nibble
        ("20820", "02f802"),
        ("001001", "001100"),  # MCC 001, MNC 001
    ],
)
def test_plmn_bytes(plmn: str, coded: str) -> None:
    assert encode_plmn(plmn).hex() == coded
    assert decode_plmn(bytes.fromhex(coded)) == plmn


def test_unused_entry_and_bad_plmns() -> None:
    assert decode_plmn(b"\xff\xff\xff") is None
    for bad in ("a2081", "2081", "2080011", ""):
        with pytest.raises(EncodeError):
            encode_plmn(bad)
    for raw in ("a2f810", "02fa10", "02f8", "02a810"):
        with pytest.raises(DecodeError):
            decode_plmn(bytes.fromhex(raw))


@pytest.mark.parametrize(
    ("coded", "rats"),
    [
        ("8000", {Rat.UTRAN}),
        ("4000", {Rat.EUTRAN}),
        ("2000", {Rat.EUTRAN}),  # E-UTRAN in WB-S1 mode
        ("1000", {Rat.EUTRAN}),  # E-UTRAN in NB-S1 mode
        ("0800", {Rat.NGRAN}),
        ("0080", {Rat.GSM}),
        ("0040", {Rat.GSM}),  # GSM COMPACT
        ("c080", {Rat.UTRAN, Rat.EUTRAN, Rat.GSM}),
        ("0000", set()),
        ("0730", set()),  # satellite bits, cdma2000, RFU: not a RAT rspfed models
    ],
)
def test_act_bits(coded: str, rats: set[Rat]) -> None:
    assert decode_act(bytes.fromhex(coded)) == frozenset(rats)


def test_act_encoding() -> None:
    assert encode_act([Rat.UTRAN, Rat.EUTRAN, Rat.GSM]).hex() == "c080"
    assert encode_act(Rat).hex() == "c880"
    assert encode_act([]).hex() == "0000"


@given(rats=rat_sets)
def test_act_round_trip(rats: frozenset[Rat]) -> None:
    assert decode_act(encode_act(rats)) == rats


@given(entries=st.lists(plmns, max_size=8), spare=st.integers(0, 4))
def test_plmn_list_round_trip(entries: list[str], spare: int) -> None:
    size = 3 * (len(entries) + spare)
    coded = encode_plmn_list(entries, size)
    assert len(coded) == size
    assert coded[3 * len(entries) :] == b"\xff" * 3 * spare
    assert decode_plmn_list(coded) == tuple(entries)


@given(entries=st.lists(st.tuples(plmns, rat_sets), max_size=8), spare=st.integers(0, 4))
def test_plmn_wact_list_round_trip(entries: list[tuple[str, frozenset[Rat]]], spare: int) -> None:
    size = 5 * (len(entries) + spare)
    coded = encode_plmn_wact_list(entries, size)
    assert coded[5 * len(entries) :] == b"\xff\xff\xff\x00\x00" * spare
    assert decode_plmn_wact_list(coded) == tuple(entries)


def test_plmn_wact_bytes() -> None:
    # the OPLMNwAcT entry of MCC 208 MNC 01 on E-UTRAN and UTRAN, then an unused entry
    coded = bytes.fromhex("02f810c000ffffff0000")
    assert decode_plmn_wact_list(coded) == (("20801", frozenset({Rat.UTRAN, Rat.EUTRAN})),)
    assert encode_plmn_wact_list([("20801", [Rat.UTRAN, Rat.EUTRAN])], 10) == coded


def test_list_errors() -> None:
    with pytest.raises(EncodeError):
        encode_plmn_list(["20801", "20802"], 3)
    with pytest.raises(EncodeError):
        encode_plmn_wact_list([], 7)
    with pytest.raises(DecodeError):
        decode_plmn_list(b"\x02\xf8")
    with pytest.raises(DecodeError) as bad:
        decode_plmn_wact_list(bytes.fromhex("ffffff00000af8100000"))
    assert bad.value.offset == 5


@given(data=st.binary(max_size=40))
def test_decoders_raise_only_decode_error(data: bytes) -> None:
    for decode in (decode_plmn_list, decode_plmn_wact_list, decode_act, decode_hpplmn):
        with contextlib.suppress(DecodeError):
            decode(data)


@pytest.mark.parametrize(
    ("coded", "period"),
    [
        ("00", None),  # no higher priority PLMN search
        ("01", timedelta(minutes=6)),  # n minutes, n = 6
        ("05", timedelta(minutes=30)),
        ("50", timedelta(hours=8)),  # 80 × 6 min: the maximum
        ("51", HPPLMN_DEFAULT),  # above the maximum: the default period
        ("ff", HPPLMN_DEFAULT),
    ],
)
def test_hpplmn(coded: str, period: timedelta | None) -> None:
    assert decode_hpplmn(bytes.fromhex(coded)) == period


def test_hpplmn_absent_and_encoding() -> None:
    assert decode_hpplmn(None) == HPPLMN_DEFAULT == timedelta(minutes=60)
    assert decode_hpplmn(b"\x02", unit=timedelta(seconds=1)) == timedelta(seconds=2)
    assert encode_hpplmn(timedelta(minutes=12)) == b"\x02"
    assert encode_hpplmn(None) == b"\x00"
    for bad in (timedelta(minutes=7), timedelta(hours=9), timedelta(0)):
        with pytest.raises(EncodeError):
            encode_hpplmn(bad)
    with pytest.raises(DecodeError):
        decode_hpplmn(b"")
