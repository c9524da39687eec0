"""Failures while loading a BPP: bit flips, reordering, replay, drops, wrong session data.

The expected (bppCommandId, errorReason) of a bit flip is derived here from *where* the bit
is (which ES10b block, which TLV, header or value), following SGP.22's error table, not from
running rspfed code on the damaged input.
"""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rspfed import es8p
from rspfed.crypto import ecka, signature
from rspfed.crypto.curves import Curve
from rspfed.errors import ProtocolError, StateError
from rspfed.es8p import BppCommandId as C
from rspfed.es8p import ErrorReason as R
from tests.es8p.helpers import ICCID, PACKAGE, Session, _tlvs, run, seeded

ANY = "any"  # the error may show at a later block (an outer length changed)


@functools.cache
def _case(curve: Curve, with_ppk: bool) -> tuple[Session, list[bytes], list[str]]:
    """A BPP with two '88' segments; its ES10b blocks and each block's kind."""
    s = Session.make(curve, seed=5)
    metadata = es8p.store_metadata_request(
        ICCID, "SP", "two 88s", icon_type="png", icon=bytes(1024), profile_class="test"
    )
    profile: bytes | es8p.ProtectedProfilePackage = PACKAGE
    if with_ppk:
        profile = es8p.protect_profile_package(PACKAGE, es8p.generate_ppk(seeded(9)))
    blocks = es8p.segment_bpp_for_es10b(s.build(profile, metadata))
    kinds = ["isc", "a0", "a1"]
    rest = blocks[3:]
    kinds += ["88"] * sum(1 for b in rest if b[0] == 0x88)
    if with_ppk:
        kinds.append("a2")
    kinds.append("a3")
    kinds += ["86"] * (len(blocks) - len(kinds))
    return s, blocks, kinds


def _header_len(block: bytes, offset: int = 0) -> int:
    [(_, header, _)] = _tlvs(block[offset:])
    return len(header)


def _expected_isc(block: bytes, offset: int) -> tuple[set[C], set[R]] | str:
    """Oracle for a flip in the first block (BF36 header + InitialiseSecureChannelRequest)."""
    bad = ({C.initialiseSecureChannel}, {R.incorrectInputValues})
    if offset < 2:
        return bad
    bpp_header = 2 + 1 + (block[2] & 0x7F if block[2] & 0x80 else 0)
    if offset < bpp_header:
        return ANY
    [(_, isc_header, isc_value)] = _tlvs(block[bpp_header:])
    pos = bpp_header + len(isc_header)
    if offset < pos:
        return bad
    for tag, header, value in _tlvs(isc_value):
        start, value_at, end = pos, pos + len(header), pos + len(header) + len(value)
        pos = end
        if not start <= offset < end:
            continue
        if offset < value_at:
            return bad
        if tag == 0x82:
            return {C.initialiseSecureChannel}, {R.unsupportedRemoteOperationType}
        if tag == 0x80:
            return {C.initialiseSecureChannel}, {R.invalidTransactionId}
        if tag == 0xA6:
            inner = value_at
            for itag, iheader, ivalue in _tlvs(value):
                istart, ivalue_at = inner, inner + len(iheader)
                inner = ivalue_at + len(ivalue)
                if istart <= offset < inner:
                    if offset < ivalue_at:
                        return bad
                    if itag in (0x80, 0x81):
                        return {C.initialiseSecureChannel}, {R.unsupportedCrtValues}
                    return {C.initialiseSecureChannel}, {R.invalidSignature}  # hostId
        return {C.initialiseSecureChannel}, {R.invalidSignature}  # smdpOtpk, smdpSign
    raise AssertionError("offset outside the block")


def _expected(
    kinds: list[str], blocks: list[bytes], i: int, offset: int
) -> tuple[set[C], set[R]] | str:
    kind = kinds[i]
    structure, security = {R.scp03tStructureError}, {R.scp03tSecurityError}
    if kind == "isc":
        return _expected_isc(blocks[i], offset)
    if kind in ("a0", "a2"):
        cmd = {C.configureISDP} if kind == "a0" else {C.replaceSessionKeys}
        inner = _header_len(blocks[i])
        if offset < inner + _header_len(blocks[i], inner):
            return cmd, structure
        return cmd, security
    if kind == "a1":
        if offset == 0:
            return {C.storeMetadata}, structure
        return {C.storeMetadata, C.storeMetadata2}, structure | {R.incorrectInputValues}
    if kind == "a3":
        return {C.loadProfileElements}, structure
    cmd = {
        "88": {C.storeMetadata if kinds.index("88") == i else C.storeMetadata2},
        "86": {C.loadProfileElements},
    }[kind]
    return cmd, (structure if offset < _header_len(blocks[i]) else security)


@settings(max_examples=150)
@given(data=st.data(), curve=st.sampled_from(list(Curve)), with_ppk=st.booleans())
def test_any_bit_flip_is_reported_and_stops_the_load(
    data: st.DataObject, curve: Curve, with_ppk: bool
) -> None:
    s, blocks, kinds = _case(curve, with_ppk)
    i = data.draw(st.integers(0, len(blocks) - 1), label="block")
    bit = data.draw(st.integers(0, 8 * len(blocks[i]) - 1), label="bit")
    damaged = list(blocks)
    block = bytearray(blocks[i])
    block[bit // 8] ^= 0x80 >> (bit % 8)
    damaged[i] = bytes(block)

    clean = _clean_events(curve, with_ppk)
    out = run(s.unbinder(), damaged)
    assert out.error is not None, f"flip in block {i} ({kinds[i]}) went unnoticed"
    err = out.error
    assert err.error_reason in es8p.ERROR_REASONS[err.bpp_command_id]
    assert not any(isinstance(e, es8p.BppComplete) for e in out.events)
    assert out.failed_block is not None
    assert out.later_state_errors == len(blocks) - out.failed_block - 1
    # nothing after the failing block was delivered, and what came before was genuine
    genuine = [e for per_block in clean[: out.failed_block] for e in per_block]
    if out.failed_block == i:
        assert out.events == genuine
    else:  # an outer length was damaged: the eUICC found out later, maybe mid-command
        assert out.events == genuine[: len(out.events)]

    expected = _expected(kinds, blocks, i, bit // 8)
    if expected == ANY:
        assert err.error_reason in {R.incorrectInputValues, R.scp03tStructureError}
        return
    assert isinstance(expected, tuple)
    commands, reasons = expected
    assert out.failed_block == i or kinds[i] == "a1"
    assert err.bpp_command_id in commands
    assert err.error_reason in reasons


@functools.cache
def _clean_events(curve: Curve, with_ppk: bool) -> list[list[es8p.BppEvent]]:
    s, blocks, _ = _case(curve, with_ppk)
    u = s.unbinder()
    return [u.feed(b) for b in blocks]


def _error(s: Session, blocks: list[bytes], **overrides: object) -> es8p.BppError:
    out = run(s.unbinder(**overrides), blocks)
    assert out.error is not None
    return out.error


@pytest.mark.parametrize("with_ppk", [False, True])
def test_reordered_replayed_and_dropped_segments(with_ppk: bool) -> None:
    s, blocks, kinds = _case(Curve.NIST, with_ppk)
    first86 = kinds.index("86")
    first88 = kinds.index("88")
    cases = {
        "swap 86": [
            *blocks[:first86],
            blocks[first86 + 1],
            blocks[first86],
            *blocks[first86 + 2 :],
        ],
        "replay 86": [*blocks[: first86 + 1], blocks[first86], *blocks[first86 + 1 :]],
        "drop 86": blocks[:first86] + blocks[first86 + 1 :],
    }
    for name, damaged in cases.items():
        err = _error(s, damaged)
        assert (err.bpp_command_id, err.error_reason) == (
            C.loadProfileElements,
            R.scp03tSecurityError,
        ), name
    swapped88 = [*blocks[:first88], blocks[first88 + 1], blocks[first88], *blocks[first88 + 2 :]]
    err = _error(s, swapped88)
    assert (err.bpp_command_id, err.error_reason) == (C.storeMetadata, R.scp03tSecurityError)
    dropped88 = blocks[:first88] + blocks[first88 + 1 :]
    err = _error(s, dropped88)
    assert (err.bpp_command_id, err.error_reason) == (C.storeMetadata, R.scp03tSecurityError)
    a0_after_a1 = [blocks[0], blocks[2], blocks[1], *blocks[3:]]
    err = _error(s, a0_after_a1)
    assert (err.bpp_command_id, err.error_reason) == (C.configureISDP, R.scp03tStructureError)


def test_dropped_last_segment_leaves_the_load_incomplete() -> None:
    s, blocks, _ = _case(Curve.NIST, False)
    u = s.unbinder()
    out = run(u, blocks[:-1])
    assert out.error is None
    assert u.state is es8p.UnbinderState.SEQUENCE_OF_86
    err = u.fail(R.installFailedDueToInterruption)
    assert (err.bpp_command_id, err.error_reason) == (
        C.loadProfileElements,
        R.installFailedDueToInterruption,
    )
    with pytest.raises(StateError):
        u.feed(blocks[-1])


def test_segment_from_another_session_is_rejected() -> None:
    s, blocks, kinds = _case(Curve.NIST, False)
    other = Session.make(Curve.NIST, seed=6)
    other_blocks = es8p.segment_bpp_for_es10b(other.build(PACKAGE))
    mixed = [*blocks[:2], *other_blocks[2:]]
    err = _error(s, mixed)
    assert err.error_reason is R.scp03tSecurityError
    del kinds


@pytest.mark.parametrize("curve", list(Curve), ids=lambda c: c.name)
def test_wrong_session_data(curve: Curve) -> None:
    s, blocks, _ = _case(curve, False)
    err = _error(s, blocks, transaction_id=bytes(16))
    assert (err.bpp_command_id, err.error_reason) == (
        C.initialiseSecureChannel,
        R.invalidTransactionId,
    )
    stranger = ecka.generate_key_pair(curve, seeded(77))
    err = _error(s, blocks, smdp_public_key=stranger.public_key())
    assert (err.bpp_command_id, err.error_reason) == (C.initialiseSecureChannel, R.invalidSignature)
    # The BPP was built for another eUICC one-time key: smdpSign covers euiccOtpk.
    err = _error(s, blocks, euicc_ot_key=stranger)
    assert (err.bpp_command_id, err.error_reason) == (C.initialiseSecureChannel, R.invalidSignature)
    # A different EID gives different session keys: the first MAC fails.
    err = _error(s, blocks, eid=bytes(16))
    assert (err.bpp_command_id, err.error_reason) == (C.configureISDP, R.scp03tSecurityError)


def _custom_isc(s: Session, data_objects: bytes, euicc_otpk: bytes) -> bytes:
    from rspfed.es8p._tlv import tlv

    sign = signature.sign(s.dp_pb, data_objects + tlv(b"\x5f\x49", euicc_otpk))
    return tlv(b"\xbf\x23", data_objects + tlv(b"\x5f\x37", sign))


def _with_isc(s: Session, isc: bytes) -> list[bytes]:
    """A BPP whose (validly signed) first block is ``isc``; the rest is a normal BPP's."""
    bpp = s.build()
    blocks = es8p.segment_bpp_for_es10b(bpp)
    rest = b"".join(blocks[1:])
    from rspfed.es8p._tlv import tlv

    whole = tlv(b"\xbf\x36", isc + rest)
    return es8p.segment_bpp_for_es10b(whole)


def test_unsupported_remote_operation_and_crt_values() -> None:
    s = Session.make(Curve.NIST, seed=8)
    smdp_otpk = ecka.encode_public_key(s.smdp_ot.public_key())
    objs, _ = es8p.initialise_secure_channel_signed_data(
        transaction_id=s.transaction_id,
        host_id=s.host_id,
        smdp_otpk=smdp_otpk,
        euicc_otpk=s.euicc_otpk,
        remote_op_id=2,
    )
    err = _error(s, _with_isc(s, _custom_isc(s, objs, s.euicc_otpk)))
    assert (err.bpp_command_id, err.error_reason) == (
        C.initialiseSecureChannel,
        R.unsupportedRemoteOperationType,
    )
    # keyType '89' instead of '88' (written here, TLV by TLV)
    crt = b"\xa6" + bytes([8 + len(s.host_id)]) + b"\x80\x01\x89\x81\x01\x10\x84"
    crt += bytes([len(s.host_id)]) + s.host_id
    objs = b"\x82\x01\x01\x80\x10" + s.transaction_id + crt + b"\x5f\x49\x41" + smdp_otpk
    err = _error(s, _with_isc(s, _custom_isc(s, objs, s.euicc_otpk)))
    assert (err.bpp_command_id, err.error_reason) == (
        C.initialiseSecureChannel,
        R.unsupportedCrtValues,
    )


def test_verified_but_malformed_contents() -> None:
    s = Session.make(Curve.NIST, seed=8)
    good = s.build()
    isc = es8p.segment_bpp_for_es10b(good)[0]
    # Rebuild the protected part with the same session keys (we hold both key pairs here).
    from rspfed.crypto.kdf import derive_session_keys
    from rspfed.es8p._tlv import read_header

    shs = ecka.ecka_dh(s.smdp_ot, s.euicc_ot.public_key())
    keys = derive_session_keys(shs, s.host_id, s.eid)
    _, isc_at, _ = read_header(isc, 0, "BPP")
    metadata = es8p.store_metadata_request(ICCID, "SP", "P")
    cases = [
        ((b"\x04\x00", metadata, PACKAGE), C.configureISDP, R.incorrectInputValues),
        (
            (es8p.DEFAULT_CONFIGURE_ISDP, b"\x30\x00", PACKAGE),
            C.storeMetadata,
            R.incorrectInputValues,
        ),
        (
            (es8p.DEFAULT_CONFIGURE_ISDP, metadata, PACKAGE[:-1]),
            C.loadProfileElements,
            R.installFailedDueToPEProcessingError,
        ),
    ]
    for (configure, md, package), command, reason in cases:
        segments = es8p.protect_bpp_segments(keys, configure, md, package)
        bpp = es8p.assemble_bound_profile_package(isc[isc_at:], segments)
        err = _error(s, es8p.segment_bpp_for_es10b(bpp))
        assert (err.bpp_command_id, err.error_reason) == (command, reason)


def test_fail_reports_the_last_command_and_poisons() -> None:
    s, blocks, _ = _case(Curve.NIST, False)
    u = s.unbinder()
    for block in blocks:
        events = u.feed(block)
        if any(isinstance(e, es8p.MetadataStored) for e in events):
            break
    err = u.fail(R.installFailedDueToIccidAlreadyExistsOnEuicc)
    assert err.bpp_command_id is C.storeMetadata2  # the metadata ended in its second '88'
    assert isinstance(err, ProtocolError)
    assert u.state is es8p.UnbinderState.FAILED
    with pytest.raises(StateError):
        u.feed(blocks[-1])


def test_feed_after_complete_is_a_state_error() -> None:
    s, blocks, _ = _case(Curve.NIST, False)
    u = s.unbinder()
    run(u, blocks)
    assert u.state is es8p.UnbinderState.COMPLETE
    with pytest.raises(StateError):
        u.feed(blocks[-1])


def test_error_text_has_no_secrets() -> None:
    s, blocks, kinds = _case(Curve.NIST, False)
    damaged = list(blocks)
    i = kinds.index("86")
    damaged[i] = blocks[i][:-1] + bytes([blocks[i][-1] ^ 1])
    err = _error(s, damaged)
    text = str(err) + repr(err) + str(err.__cause__)
    assert blocks[i][-8:].hex() not in text.lower()
    assert "loadProfileElements" in text
    assert "scp03tSecurityError" in text


def test_initialise_secure_channel_extension_additions_are_ignored() -> None:
    """Unknown trailing components of the request and of its controlRefTemplate are
    extension additions: the BPP unbinds (the signature covers them where SGP.22 says)."""
    from rspfed.es8p._tlv import tlv

    s = Session.make(Curve.NIST, seed=9)
    smdp_otpk = ecka.encode_public_key(s.smdp_ot.public_key())
    extra = b"\x9e\x01\x00"  # [30]: no component has it
    crt = tlv(b"\xa6", b"\x80\x01\x88\x81\x01\x10" + tlv(b"\x84", s.host_id) + extra)
    objs = b"\x82\x01\x01" + tlv(b"\x80", s.transaction_id) + crt + tlv(b"\x5f\x49", smdp_otpk)
    sign = signature.sign(s.dp_pb, objs + tlv(b"\x5f\x49", s.euicc_otpk))
    isc = tlv(b"\xbf\x23", objs + tlv(b"\x5f\x37", sign) + extra)
    outcome = run(s.unbinder(), _with_isc(s, isc))
    assert outcome.error is None
    first = outcome.events[0]
    assert isinstance(first, es8p.SecureChannelInitialised)
    assert first.host_id == s.host_id
    assert first.transaction_id == s.transaction_id
    assert isinstance(outcome.events[-1], es8p.BppComplete)
