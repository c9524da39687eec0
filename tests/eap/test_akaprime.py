"""EAP-AKA' key derivation against RFC 9048 Appendix D and the packet codec."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.eap import akaprime as ap
from rspfed.errors import DecodeError, EncodeError, IntegrityError
from tests.paths import VECTORS

CASES = json.loads((VECTORS / "eap-aka-prime-rfc9048.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"case{c['case']}")
def test_rfc9048_vectors(case: dict[str, str]) -> None:
    h = bytes.fromhex
    keys = ap.derive_keys(
        case["identity"].encode(),
        h(case["CK"]),
        h(case["IK"]),
        case["network_name"].encode(),
        h(case["AUTN"])[:6],
    )
    assert keys.ck_prime == h(case["CK_prime"])
    assert keys.ik_prime == h(case["IK_prime"])
    assert keys.k_encr == h(case["K_encr"])
    assert keys.k_aut == h(case["K_aut"])
    assert keys.k_re == h(case["K_re"])
    assert keys.msk == h(case["MSK"])
    assert keys.emsk == h(case["EMSK"])
    assert "k_aut" not in repr(keys)
    assert case["K_aut"] not in repr(keys)


def _value(t: int) -> st.SearchStrategy[bytes]:
    if t in (ap.AT_RAND, ap.AT_AUTN, ap.AT_MAC):
        return st.binary(min_size=16, max_size=16)
    if t == ap.AT_RES:
        return st.binary(min_size=4, max_size=16)
    if t == ap.AT_AUTS:
        return st.binary(min_size=14, max_size=14)
    if t in (ap.AT_KDF, ap.AT_NOTIFICATION, ap.AT_CLIENT_ERROR_CODE, ap.AT_BIDDING):
        return st.binary(min_size=2, max_size=2)
    if t in (ap.AT_IDENTITY, ap.AT_KDF_INPUT, ap.AT_RSPFED_FEDERATION_KEY):
        return st.binary(max_size=80)
    if t == ap.AT_CHECKCODE:
        return st.sampled_from([b"", bytes(range(32))])
    # an unknown skippable attribute: raw 4n-2 octets
    return st.integers(0, 10).flatmap(lambda n: st.binary(min_size=4 * n + 2, max_size=4 * n + 2))


KNOWN = [
    ap.AT_RAND, ap.AT_AUTN, ap.AT_MAC, ap.AT_RES, ap.AT_AUTS, ap.AT_KDF, ap.AT_NOTIFICATION,
    ap.AT_CLIENT_ERROR_CODE, ap.AT_BIDDING, ap.AT_IDENTITY, ap.AT_KDF_INPUT,
    ap.AT_RSPFED_FEDERATION_KEY, ap.AT_CHECKCODE, 200,
]  # fmt: skip

attribute = st.sampled_from(KNOWN).flatmap(lambda t: _value(t).map(lambda v: ap.Attribute(t, v)))


@st.composite
def packets(draw: st.DrawFn) -> ap.EapPacket:
    code = draw(st.sampled_from(list(ap.Code)))
    ident = draw(st.integers(0, 255))
    if code in (ap.Code.SUCCESS, ap.Code.FAILURE):
        return ap.EapPacket(code, ident)
    if draw(st.booleans()):
        return ap.EapPacket(
            code, ident, ap.EAP_TYPE_IDENTITY, identity=draw(st.binary(max_size=40))
        )
    attrs_ = draw(st.lists(attribute, max_size=6, unique_by=lambda a: a.type))
    return ap.EapPacket(
        code, ident, ap.EAP_TYPE_AKA_PRIME, draw(st.sampled_from(list(ap.Subtype))), tuple(attrs_)
    )


@given(packets())
def test_codec_round_trip(pkt: ap.EapPacket) -> None:
    raw = pkt.encode()
    assert ap.decode(raw) == pkt
    assert ap.decode(raw).encode() == raw


@given(st.binary(max_size=120))
def test_fuzz_decode_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        ap.decode(data)
    with contextlib.suppress(DecodeError, IntegrityError):
        ap.verify_mac(bytes(32), data)


@given(packets(), st.data())
def test_fuzz_mutated_packets(pkt: ap.EapPacket, data: st.DataObject) -> None:
    raw = bytearray(pkt.encode())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    for candidate in (bytes(raw), bytes(raw[:cut])):
        with contextlib.suppress(DecodeError):
            ap.decode(candidate)


def test_res_length_in_bits_and_padding() -> None:
    raw = ap.Attribute(ap.AT_RES, bytes(range(1, 9))).encode()
    assert raw[:4] == bytes((ap.AT_RES, 3, 0, 64))
    res5 = ap.Attribute(ap.AT_RES, b"\x01" * 5).encode()
    assert res5[:4] == bytes((ap.AT_RES, 3, 0, 40))
    assert res5[9:] == bytes(3)


def _challenge(*extra: ap.Attribute) -> bytes:
    return ap.EapPacket(
        ap.Code.REQUEST, 7, ap.EAP_TYPE_AKA_PRIME, ap.Subtype.AKA_CHALLENGE,
        (ap.Attribute(ap.AT_RAND, bytes(16)), *extra),
    ).encode()  # fmt: skip


def test_strict_rejections() -> None:
    good = _challenge()
    with pytest.raises(DecodeError):
        ap.decode(good[:-1])
    with pytest.raises(DecodeError):  # length field lies
        ap.decode(good[:2] + (len(good) + 4).to_bytes(2, "big") + good[4:] + bytes(4))
    with pytest.raises(DecodeError):  # unknown non-skippable attribute
        ap.decode(_challenge(ap.Attribute(100, bytes(2))))
    assert ap.decode(_challenge(ap.Attribute(150, bytes(2)))).get(150) == ap.Attribute(
        150, bytes(2)
    )
    bad_pad = bytearray(_challenge(ap.Attribute(ap.AT_IDENTITY, b"abc")))
    bad_pad[-1] = 1
    with pytest.raises(DecodeError):
        ap.decode(bytes(bad_pad))
    with pytest.raises(DecodeError):  # repeated attribute
        ap.decode(_challenge(ap.Attribute(ap.AT_RAND, bytes(16))))
    with pytest.raises(EncodeError):
        ap.Attribute(ap.AT_RAND, bytes(15)).encode()


def test_mac_covers_whole_packet() -> None:
    k = bytes(range(32))
    pkt = ap.decode(_challenge(ap.Attribute(ap.AT_MAC, bytes(16)), ap.Attribute(200, bytes(6))))
    raw = ap.add_mac(k, pkt)
    assert ap.verify_mac(k, raw).get(200) is not None
    for i in range(len(raw)):
        tampered = bytearray(raw)
        tampered[i] ^= 0x01
        with pytest.raises((DecodeError, IntegrityError)):
            ap.verify_mac(k, bytes(tampered))
    with pytest.raises(IntegrityError):
        ap.verify_mac(bytes(32), raw)
