"""SPAKE2 (symmetric) with explicit key confirmation.

Independent computation: the ``spake2`` package run directly (same injected
entropy) plus the documented HKDF/HMAC construction written out here with
``cryptography``.  Properties: same code → same key, a different code or any
altered message → an error and nothing released.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st
from spake2 import SPAKE2_Symmetric

from rspfed.crypto.pake import (
    CONFIRMATION_SIZE,
    ID_SYMMETRIC,
    KEY_SIZE,
    MESSAGE_SIZE,
    PakeState,
    SymmetricPake,
)
from rspfed.errors import (
    DecodeError,
    IntegrityError,
    ProtocolError,
    RspfedError,
    StateError,
    UsageError,
)

_few = settings(max_examples=15)


def _rand_from(seed: bytes) -> Callable[[int], bytes]:
    """A deterministic entropy source (SHAKE-256 stream over the seed)."""
    state = {"counter": 0}

    def rand(n: int) -> bytes:
        h = hashes.Hash(hashes.SHAKE256(n))
        h.update(seed + state["counter"].to_bytes(4, "big"))
        state["counter"] += 1
        return h.finalize()

    return rand


def _run(pw_a: bytes, pw_b: bytes) -> tuple[SymmetricPake, SymmetricPake]:
    a, b = SymmetricPake(pw_a), SymmetricPake(pw_b)
    ma, mb = a.start(), b.start()
    a.finish(mb)
    b.finish(ma)
    return a, b


def test_same_code_same_key_both_orders() -> None:
    a, b = _run(b"17-guitarist-revenge", b"17-guitarist-revenge")
    ca, cb = a.confirmation(), b.confirmation()
    assert len(ca) == len(cb) == CONFIRMATION_SIZE
    assert ca != cb  # side-labelled: a reflected confirmation never verifies
    ka = a.verify_confirmation(cb)
    assert a.confirmation() == ca  # still available after verifying
    kb = b.verify_confirmation(ca)
    assert ka == kb
    assert len(ka) == KEY_SIZE
    assert a.state is b.state is PakeState.CONFIRMED
    assert a.transcript == b.transcript


@_few
@given(pw=st.binary(min_size=1, max_size=40), other=st.binary(min_size=1, max_size=40))
def test_keys_agree_iff_codes_agree(pw: bytes, other: bytes) -> None:
    a, b = _run(pw, other)
    ca, cb = a.confirmation(), b.confirmation()
    if pw == other:
        assert a.verify_confirmation(cb) == b.verify_confirmation(ca)
    else:
        with pytest.raises(IntegrityError):
            a.verify_confirmation(cb)
        with pytest.raises(IntegrityError):
            b.verify_confirmation(ca)
        assert a.state is b.state is PakeState.FAILED


def test_wrong_code_kills_the_object() -> None:
    a, b = _run(b"1-adroitness-aardvark", b"1-adroitness-absurd")
    with pytest.raises(IntegrityError) as info:
        a.verify_confirmation(b.confirmation())
    assert "adroitness" not in str(info.value)
    for call in (a.confirmation, lambda: a.verify_confirmation(b"\x00" * 32)):
        with pytest.raises(StateError):
            call()
    with pytest.raises(StateError):
        _ = a.transcript


def test_matches_spake2_package_and_documented_confirmation() -> None:
    pw = b"42-hamburger-tiger"
    seed_a, seed_b = os.urandom(16), os.urandom(16)
    a = SymmetricPake(pw, rand=_rand_from(seed_a))
    b = SymmetricPake(pw, rand=_rand_from(seed_b))
    ref_a = SPAKE2_Symmetric(pw, idSymmetric=b"rspfed-pair-v1", entropy_f=_rand_from(seed_a))
    ref_b = SPAKE2_Symmetric(pw, idSymmetric=b"rspfed-pair-v1", entropy_f=_rand_from(seed_b))
    ma, mb = a.start(), b.start()
    assert ma == ref_a.start()
    assert mb == ref_b.start()
    assert len(ma) == MESSAGE_SIZE
    a.finish(mb)
    b.finish(ma)
    k = ref_a.finish(mb)
    assert k == ref_b.finish(ma)

    def hkdf(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(k)

    transcript = b"".join(sorted((ma, mb)))
    side_a = b"\x01" if ma < mb else b"\x02"
    expected_ca = hmac.digest(
        hkdf(b"rspfed pake confirm v1"), b"rspfed-pake-confirm-v1" + side_a + transcript, "sha256"
    )
    assert a.transcript == transcript
    assert a.confirmation() == expected_ca
    key = b.verify_confirmation(expected_ca)
    assert key == hkdf(b"rspfed pake key v1")
    assert ID_SYMMETRIC == b"rspfed-pair-v1"


def test_injected_rand_is_replayable() -> None:
    seed = os.urandom(16)
    m1 = SymmetricPake(b"1-x", rand=_rand_from(seed)).start()
    m2 = SymmetricPake(b"1-x", rand=_rand_from(seed)).start()
    assert m1 == m2


@_few
@given(data=st.data())
def test_tampered_spake2_message_fails(data: st.DataObject) -> None:
    pw = b"7-october-quota"
    a, b = SymmetricPake(pw), SymmetricPake(pw)
    ma, mb = a.start(), b.start()
    bit = data.draw(st.integers(8, MESSAGE_SIZE * 8 - 1))  # the element, not the side octet
    bad = bytearray(mb)
    bad[bit // 8] ^= 1 << (bit % 8)
    b.finish(ma)
    cb = b.confirmation()

    def finish_and_verify() -> None:
        a.finish(bytes(bad))  # not a group element at all, or
        a.verify_confirmation(cb)  # another transcript and key

    with pytest.raises(IntegrityError):
        finish_and_verify()
    assert a.state is PakeState.FAILED


@_few
@given(data=st.data())
def test_tampered_confirmation_fails(data: st.DataObject) -> None:
    a, b = _run(b"3-x", b"3-x")
    cb = b.confirmation()
    bit = data.draw(st.integers(0, len(cb) * 8 - 1))
    bad = bytearray(cb)
    bad[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(IntegrityError):
        a.verify_confirmation(bytes(bad))


@pytest.mark.parametrize("length", [0, 1, 31, 33, 64])
def test_confirmation_of_wrong_length_fails(length: int) -> None:
    a, b = _run(b"3-x", b"3-x")
    with pytest.raises(IntegrityError):
        a.verify_confirmation((b.confirmation() * 3)[:length])


def test_reflection() -> None:
    a = SymmetricPake(b"5-x")
    ma = a.start()
    with pytest.raises(ProtocolError):
        a.finish(ma)
    a, _ = _run(b"5-x", b"5-x")
    with pytest.raises(IntegrityError):
        a.verify_confirmation(a.confirmation())


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"S",
        b"A" + bytes(32),
        b"B" + bytes(32),
        b"S" + bytes(32),
        b"S" + b"\xff" * 32,
        b"S" + bytes(33),
    ],
)
def test_bad_spake2_messages(message: bytes) -> None:
    a = SymmetricPake(b"5-x")
    a.start()
    with pytest.raises((DecodeError, IntegrityError)):
        a.finish(message)
    assert a.state is PakeState.FAILED


def test_different_identity_fails() -> None:
    a = SymmetricPake(b"5-x")
    b = SymmetricPake(b"5-x", id_symmetric=b"other")
    ma, mb = a.start(), b.start()
    a.finish(mb)
    b.finish(ma)
    with pytest.raises(IntegrityError):
        a.verify_confirmation(b.confirmation())


def test_call_order() -> None:
    a = SymmetricPake(b"5-x")
    assert a.state.value == "new"
    for call in (a.confirmation, lambda: a.finish(b"S" + bytes(32))):
        with pytest.raises(StateError):
            call()
    a.start()
    with pytest.raises(StateError):
        a.start()
    with pytest.raises(StateError):
        a.verify_confirmation(bytes(32))
    assert a.state is PakeState.STARTED
    assert "5-x" not in repr(a)


@pytest.mark.parametrize("password", [b"", b"x" * 1025])
def test_password_bounds(password: bytes) -> None:
    with pytest.raises(UsageError):
        SymmetricPake(password)


def test_broken_rand_is_a_usage_error() -> None:
    with pytest.raises(RspfedError):
        SymmetricPake(b"5-x", rand=lambda n: b"").start()
