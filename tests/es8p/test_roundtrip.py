"""Build a BPP on the SM-DP+ side, cut it as the LPA does, take it apart on the eUICC side.

Independent checks: the BPP decodes strictly under ``BoundProfilePackage`` and under
asn1tools (another ASN.1 implementation), a reference unbinder written on ``cryptography``
(``helpers.reference_unbind``) recovers the same plaintexts, ``smdpSign`` verifies with
``cryptography`` over bytes composed here from the received TLVs, and the ProfileElement
events match the package as ``rspfed.asn1`` splits it.
"""

from __future__ import annotations

import functools

import asn1tools
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from rspfed import asn1, es8p
from rspfed.asn1 import rsp
from rspfed.crypto.curves import Curve
from rspfed.errors import DecodeError, EncodeError, StateError
from tests.es8p.helpers import ICCID, PACKAGE, PACKAGES, Session, reference_unbind, run, seeded
from tests.paths import ASN1_MODULES

CURVES = [Curve.NIST, Curve.BRAINPOOL]


@functools.cache
def _asn1tools() -> asn1tools.compiler.Specification:
    names = ("rsp.asn", "PKIX1Explicit88.asn", "PKIX1Implicit88.asn")
    return asn1tools.compile_files([str(ASN1_MODULES / n) for n in names], "der")


@functools.cache
def _session(curve: Curve) -> Session:
    return Session.make(curve)


@functools.cache
def _ppp(package: bytes) -> es8p.ProtectedProfilePackage:
    return es8p.protect_profile_package(package, es8p.generate_ppk(seeded(7)))


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
@pytest.mark.parametrize("with_ppk", [False, True], ids=["session-keys", "ppk"])
def test_round_trip(curve: Curve, with_ppk: bool) -> None:
    s = _session(curve)
    metadata = es8p.store_metadata_request(ICCID, "rspfed SP", "TS.48", profile_class="test")
    bpp = s.build(_ppp(PACKAGE) if with_ppk else PACKAGE, metadata)

    decoded = asn1.decode(rsp.BoundProfilePackage, bpp)
    assert (decoded["secondSequenceOf87"].native is not None) == with_ppk
    other = _asn1tools().decode("BoundProfilePackage", bpp)
    assert ("secondSequenceOf87" in other) == with_ppk
    assert len(other["sequenceOf86"]) == -(-len(PACKAGE) // 1007)  # split by size

    blocks = es8p.segment_bpp_for_es10b(bpp)
    assert b"".join(blocks) == bpp
    out = run(s.unbinder(), blocks)
    assert out.error is None
    kinds = [type(e) for e in out.events]
    expected_head = [es8p.SecureChannelInitialised, es8p.IsdpConfigured, es8p.MetadataStored]
    if with_ppk:
        expected_head.append(es8p.SessionKeysReplaced)
    assert kinds[: len(expected_head)] == expected_head
    assert kinds[-1] is es8p.BppComplete

    complete = out.events[-1]
    assert isinstance(complete, es8p.BppComplete)
    assert complete.profile_package == PACKAGE
    pes = [e.der for e in out.events if isinstance(e, es8p.ProfileElementReceived)]
    assert pes == [asn1.received_der(pe) for pe in asn1.decode_profile_elements(PACKAGE)]
    stored = out.events[2]
    assert isinstance(stored, es8p.MetadataStored)
    assert stored.der == metadata
    configured = out.events[1]
    assert isinstance(configured, es8p.IsdpConfigured)
    assert configured.der == bytes.fromhex("bf2400")

    ref = reference_unbind(bpp, s.euicc_ot, s.eid)
    assert ref["profile"] == PACKAGE
    assert ref["metadata"] == metadata
    assert ref["configure"] == bytes.fromhex("bf2400")
    assert ("rsk" in ref) == with_ppk


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_smdp_sign_covers_request_fields_and_euicc_otpk(curve: Curve) -> None:
    s = _session(curve)
    bpp = s.build()
    isc = asn1.decode(rsp.BoundProfilePackage, bpp)["initialiseSecureChannelRequest"]
    signed = b"".join(
        asn1.received_der(isc[name])
        for name in ("remoteOpId", "transactionId", "controlRefTemplate", "smdpOtpk")
    )
    signed += b"\x5f\x49\x41" + s.euicc_otpk
    raw = isc["smdpSign"].native
    der_sig = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    s.dp_pb.public_key().verify(der_sig, signed, ec.ECDSA(hashes.SHA256()))
    assert isc["remoteOpId"].native == "installBoundProfilePackage"
    crt = isc["controlRefTemplate"]
    assert crt["keyType"].native == b"\x88"
    assert crt["keyLen"].native == b"\x10"
    assert crt["hostId"].native == s.host_id


@pytest.mark.parametrize("path", PACKAGES, ids=lambda p: p.stem)
def test_every_ts48_package(path: object) -> None:
    package = path.read_bytes()  # type: ignore[attr-defined]
    s = _session(Curve.NIST)
    for profile in (package, _ppp(package)):
        out = run(s.unbinder(), es8p.segment_bpp_for_es10b(s.build(profile)))
        assert out.error is None
        last = out.events[-1]
        assert isinstance(last, es8p.BppComplete)
        assert last.profile_package == package


def test_metadata_over_several_88_segments() -> None:
    s = _session(Curve.BRAINPOOL)
    metadata = es8p.store_metadata_request(
        ICCID,
        "SP",
        "big icon",
        icon_type="png",
        icon=bytes(range(256)) * 4,
        notification_configuration_info=[({"notificationInstall"}, "smdp.example.com")],
    )
    bpp = s.build(PACKAGE, metadata)
    assert len(_asn1tools().decode("BoundProfilePackage", bpp)["sequenceOf88"]) == 2
    blocks = es8p.segment_bpp_for_es10b(bpp)
    out = run(s.unbinder(), blocks)
    assert out.error is None
    stored = [e for e in out.events if isinstance(e, es8p.MetadataStored)]
    assert [e.der for e in stored] == [metadata]
    assert reference_unbind(bpp, s.euicc_ot, s.eid)["metadata"] == metadata


def test_es10b_blocks_follow_sgp22_order() -> None:
    s = _session(Curve.NIST)
    for profile in (PACKAGE, _ppp(PACKAGE)):
        bpp = s.build(profile)
        blocks = es8p.segment_bpp_for_es10b(bpp)
        other = _asn1tools().decode("BoundProfilePackage", bpp)
        n88, n86 = len(other["sequenceOf88"]), len(other["sequenceOf86"])
        has_a2 = "secondSequenceOf87" in other
        # BF36 header + BF23, A0+87, A1 header, 88s, [A2+87], A3 header, 86s
        assert len(blocks) == 1 + 1 + 1 + n88 + has_a2 + 1 + n86
        assert blocks[0][:2] == b"\xbf\x36"
        assert blocks[0][2] == 0x82  # a 12 KiB BPP: BF36 82 xx xx
        assert blocks[0][5:7] == b"\xbf\x23"
        assert blocks[1][0] == 0xA0
        assert blocks[1][2] == 0x87
        assert blocks[2][0] == 0xA1
        assert len(blocks[2]) <= 4
        assert all(b[0] == 0x88 for b in blocks[3 : 3 + n88])
        i = 3 + n88
        if has_a2:
            assert blocks[i][0] == 0xA2
            i += 1
        assert blocks[i][0] == 0xA3
        assert len(blocks[i]) <= 4
        assert all(b[0] == 0x86 and len(b) <= 1020 for b in blocks[i + 1 :])


def test_ppp_is_reused_unchanged_across_sessions() -> None:
    ppp = _ppp(PACKAGE)
    bpps = [Session.make(Curve.NIST, seed).build(ppp) for seed in (1, 2)]
    tails = [b"".join(es8p.segment_bpp_for_es10b(b)[-len(ppp.segments) :]) for b in bpps]
    assert tails[0] == tails[1] == b"".join(ppp.segments)
    heads = [es8p.segment_bpp_for_es10b(b)[0] for b in bpps]
    assert heads[0] != heads[1]


_element = st.builds(
    lambda tag, body: bytes([tag]) + _len(len(body)) + body,
    st.integers(0xA0, 0xBE),
    st.binary(max_size=1500),
)


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82, n >> 8, n & 0xFF])


@settings(max_examples=25)
@given(elements=st.lists(_element, min_size=1, max_size=8), with_ppk=st.booleans())
def test_round_trip_any_element_boundaries(elements: list[bytes], with_ppk: bool) -> None:
    """Segment boundaries fall anywhere in the TLVs; the events still give whole TLVs."""
    package = b"".join(elements)
    s = _session(Curve.NIST)
    profile: bytes | es8p.ProtectedProfilePackage = package
    if with_ppk:
        profile = es8p.protect_profile_package(package, es8p.generate_ppk(seeded(3)))
    bpp = s.build(profile)
    blocks = es8p.segment_bpp_for_es10b(bpp)
    assert b"".join(blocks) == bpp
    out = run(s.unbinder(), blocks)
    assert out.error is None
    assert [e.der for e in out.events if isinstance(e, es8p.ProfileElementReceived)] == elements
    last = out.events[-1]
    assert isinstance(last, es8p.BppComplete)
    assert last.profile_package == package


def test_element_header_cut_by_a_segment_boundary() -> None:
    first = b"\xa0\x82\x03\xe9" + bytes(1001)  # 1005 octets: the next header spans 1005..1008
    second = b"\xbf\x22\x82\x01\x00" + bytes(range(256))
    third = b"\xa1\x00"
    package = first + second + third
    s = _session(Curve.NIST)
    blocks = es8p.segment_bpp_for_es10b(s.build(package))
    out = run(s.unbinder(), blocks)
    assert out.error is None
    assert [e.der for e in out.events if isinstance(e, es8p.ProfileElementReceived)] == [
        first,
        second,
        third,
    ]


@settings(max_examples=50)
@given(data=st.binary(max_size=300))
def test_segmentation_of_garbage_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        es8p.segment_bpp_for_es10b(data)


@settings(max_examples=100)
@given(blocks=st.lists(st.binary(max_size=64), min_size=1, max_size=6), keep=st.integers(0, 8))
def test_garbage_blocks_only_raise_bpp_or_state_errors(blocks: list[bytes], keep: int) -> None:
    """Genuine blocks then garbage: a BppError first, StateError after, nothing else."""
    s = _session(Curve.BRAINPOOL)
    genuine = es8p.segment_bpp_for_es10b(s.build())[:keep]
    u = s.unbinder()
    for b in genuine:
        u.feed(b)
    errors: list[es8p.BppError] = []
    for b in blocks:
        try:
            u.feed(b)
        except es8p.BppError as err:
            errors.append(err)
        except StateError:
            assert errors
    assert len(errors) <= 1
    assert all(e.error_reason in es8p.ERROR_REASONS[e.bpp_command_id] for e in errors)


def test_store_metadata_request_all_fields() -> None:
    der = es8p.store_metadata_request(
        ICCID,
        "Operator",
        "Profile",
        icon_type="png",
        icon=b"\x89PNG",
        profile_class="operational",
        notification_configuration_info=[
            ({"notificationInstall", "notificationDelete"}, "smdp.example.com"),
            ({"notificationEnable"}, "other.example.com"),
        ],
        profile_owner={"mccMnc": b"\x00\xf1\x10", "gid1": b"\x01"},
        profile_policy_rules={"ppr1"},
    )
    other = _asn1tools().decode("StoreMetadataRequest", der)
    assert other["iccid"] == ICCID
    assert other["iconType"] == 1  # png(1)
    assert other["profileClass"] == 2  # operational(2)
    assert other["profileOwner"] == {"mccMnc": b"\x00\xf1\x10", "gid1": b"\x01"}
    assert [n["notificationAddress"] for n in other["notificationConfigurationInfo"]] == [
        "smdp.example.com",
        "other.example.com",
    ]
    assert other["profilePolicyRules"][1] == 2  # ppr1 is bit 1: 2 bits used
    s = _session(Curve.NIST)
    out = run(s.unbinder(), es8p.segment_bpp_for_es10b(s.build(PACKAGE, der)))
    stored = [e for e in out.events if isinstance(e, es8p.MetadataStored)]
    assert stored[0].request["profilePolicyRules"].native == {"ppr1"}


def test_store_metadata_request_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(EncodeError):
        es8p.store_metadata_request(ICCID, "x" * 33, "name")
    with pytest.raises(EncodeError):
        es8p.store_metadata_request(ICCID[:5], "sp", "name")
    with pytest.raises(EncodeError):
        es8p.store_metadata_request(ICCID, "sp", "name", icon_type="png", icon=bytes(1025))
