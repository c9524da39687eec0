"""Permanent NAIs (TS 23.003 §19.3.2): published examples, round trip, refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import DecodeError, UsageError
from rspfed.network.nai import imsi_from_identity, permanent_identity, realm


def test_ts23003_example() -> None:
    # TS 23.003 §19.3.2: IMSI 234150999999999 (MCC 234, MNC 15) gives the root NAI
    # 0234150999999999@nai.epc.mnc015.mcc234.3gppnetwork.org (EAP-AKA prefix "0").
    nai = b"0234150999999999@nai.epc.mnc015.mcc234.3gppnetwork.org"
    assert permanent_identity("234150999999999", mnc_length=2, prefix="0") == nai
    assert imsi_from_identity(nai) == "234150999999999"
    assert realm("234150999999999", mnc_length=2) == "nai.epc.mnc015.mcc234.3gppnetwork.org"


def test_eap_aka_prime_prefix_and_three_digit_mnc() -> None:
    assert permanent_identity("310410123456789", mnc_length=3) == (
        b"6310410123456789@nai.epc.mnc410.mcc310.3gppnetwork.org"
    )
    assert imsi_from_identity(b"6310410123456789@NAI.EPC.MNC410.MCC310.3GPPNETWORK.ORG") == (
        "310410123456789"
    )


@st.composite
def imsis(draw: st.DrawFn) -> tuple[str, int]:
    mnc_length = draw(st.sampled_from([2, 3]))
    imsi = draw(st.text("0123456789", min_size=max(6, 3 + mnc_length), max_size=15))
    return imsi, mnc_length


@given(imsis(), st.sampled_from(["0", "6"]))
def test_round_trip(value: tuple[str, int], prefix: str) -> None:
    imsi, mnc_length = value
    nai = permanent_identity(imsi, mnc_length=mnc_length, prefix=prefix)
    user, _, domain = nai.decode().partition("@")
    assert user == prefix + imsi
    # the realm, read independently: mnc three digits (zero-padded), then mcc
    assert domain == (f"nai.epc.mnc{imsi[3 : 3 + mnc_length]:0>3}.mcc{imsi[:3]}.3gppnetwork.org")
    assert imsi_from_identity(nai) == imsi
    assert imsi_from_identity(nai.partition(b"@")[0]) == imsi  # realm optional


@pytest.mark.parametrize(
    "identity",
    [
        b"7001010123456789@nai.epc.mnc001.mcc001.3gppnetwork.org",  # pseudonym
        b"8001010123456789@nai.epc.mnc001.mcc001.3gppnetwork.org",  # fast re-auth
        b"1001010123456789@nai.epc.mnc001.mcc001.3gppnetwork.org",  # EAP-SIM
        b"60010",  # 4 digits
        b"60010101234567890",  # 16 digits
        b"600101012345678a",
        b"6001010123456789@nai.epc.mnc002.mcc001.3gppnetwork.org",  # other MNC
        b"6001010123456789@nai.epc.mnc001.mcc002.3gppnetwork.org",  # other MCC
        b"6001010123456789@nai.epc.mnc01.mcc001.3gppnetwork.org",  # malformed 3GPP realm
        b"6001010123456789@",
        b"6001010123456789@bad..realm",
        b"wlan.mnc001.mcc001.3gppnetwork.org!6001010123456789@example.org",
        b"",
        b"@nai.epc.mnc001.mcc001.3gppnetwork.org",
        b"\xff\xfe",
    ],
)
def test_refused(identity: bytes) -> None:
    with pytest.raises(DecodeError):
        imsi_from_identity(identity)


def test_other_realm_accepted() -> None:
    assert imsi_from_identity(b"6001010123456789@operator.example") == "001010123456789"


@given(st.binary(max_size=80))
def test_random_identities_only_decode_error(data: bytes) -> None:
    try:
        imsi = imsi_from_identity(data)
    except DecodeError:
        return
    assert imsi.isdigit()
    assert 6 <= len(imsi) <= 15


@pytest.mark.parametrize(
    ("imsi", "mnc_length", "prefix"),
    [
        ("00101", 2, "6"),
        ("0010101234567890", 2, "6"),
        ("00101x123", 2, "6"),
        ("001010123456789", 4, "6"),
        ("001010123456789", 2, "7"),
    ],
)
def test_bad_arguments(imsi: str, mnc_length: int, prefix: str) -> None:
    with pytest.raises(UsageError):
        permanent_identity(imsi, mnc_length=mnc_length, prefix=prefix)
