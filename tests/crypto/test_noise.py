"""Noise NNpsk0 (and NN, NNpsk2) on pyca primitives.

Published data: ``tests/data/vectors/noise-NNpsk0_25519_ChaChaPoly_SHA256.json``
(cacophony and snow vectors), replayed in both roles.  Independent
implementation: the ``noiseprotocol`` package, run against ours in both roles with
hypothesis-chosen ephemerals, psks, prologues and payloads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from noise.connection import Keypair, NoiseConnection

from rspfed.crypto.noise import (
    MAX_NONCE,
    PROTOCOL_NAME,
    CipherState,
    HandshakePattern,
    HandshakeState,
    SymmetricState,
)
from rspfed.errors import IntegrityError, RspfedError, StateError, UsageError
from tests.paths import VECTORS

# noiseprotocol warns when an ephemeral key is injected (we do it on purpose).
pytestmark = pytest.mark.filterwarnings("ignore:One of ephemeral keypairs:UserWarning")

_VECTORS: list[dict[str, Any]] = json.loads(
    (VECTORS / "noise-NNpsk0_25519_ChaChaPoly_SHA256.json").read_text()
)["vectors"]


def _fixed(value: bytes) -> Callable[[int], bytes]:
    def rand(n: int) -> bytes:
        assert n == len(value)
        return value

    return rand


def _ours(v: dict[str, Any], role: str) -> HandshakeState:
    pattern = HandshakePattern(v["protocol_name"].split("_")[1])
    psks = v.get(f"{role}_psks") or []
    return HandshakeState(
        initiator=role == "init",
        prologue=bytes.fromhex(v[f"{role}_prologue"]),
        psk=bytes.fromhex(psks[0]) if psks else None,
        rand=_fixed(bytes.fromhex(v[f"{role}_ephemeral"])),
        pattern=pattern,
    )


def test_vector_file_has_the_suite() -> None:
    names = {v["protocol_name"] for v in _VECTORS}
    assert PROTOCOL_NAME in names
    assert len(_VECTORS) >= 4


@pytest.mark.parametrize(
    "v", _VECTORS, ids=[f"{v['source']}-{v['protocol_name']}" for v in _VECTORS]
)
def test_published_vectors(v: dict[str, Any]) -> None:
    init, resp = _ours(v, "init"), _ours(v, "resp")
    assert init.pattern.protocol_name() == v["protocol_name"]
    messages = v["messages"]
    # Handshake: both roles write exactly the published bytes and read the payloads.
    for idx in range(2):
        writer, reader = (init, resp) if idx % 2 == 0 else (resp, init)
        payload = bytes.fromhex(messages[idx]["payload"])
        wire = writer.write_message(payload)
        assert wire.hex() == messages[idx]["ciphertext"]
        assert reader.read_message(wire) == payload
    assert init.complete
    assert resp.complete
    if "handshake_hash" in v:
        assert init.handshake_hash.hex() == v["handshake_hash"]
        assert resp.handshake_hash.hex() == v["handshake_hash"]
    i_send, i_recv = init.transport_ciphers()
    r_send, r_recv = resp.transport_ciphers()
    assert init.split() == (i_send, i_recv)
    assert resp.split() == (r_recv, r_send)
    for idx, m in enumerate(messages[2:], start=2):
        send, recv = (i_send, r_recv) if idx % 2 == 0 else (r_send, i_recv)
        payload = bytes.fromhex(m["payload"])
        wire = send.encrypt_with_ad(b"", payload)
        assert wire.hex() == m["ciphertext"]
        assert recv.decrypt_with_ad(b"", wire) == payload


def _theirs(*, initiator: bool, psk: bytes, prologue: bytes, ephemeral: bytes) -> NoiseConnection:
    conn = NoiseConnection.from_name(PROTOCOL_NAME.encode())
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.set_psks(psk=psk)
    conn.set_prologue(prologue)
    conn.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral)
    conn.start_handshake()
    return conn


_key = st.binary(min_size=32, max_size=32)
_payload = st.binary(max_size=300)


@given(
    we_initiate=st.booleans(),
    psk=_key,
    prologue=st.binary(max_size=64),
    e_ours=_key,
    e_theirs=_key,
    payloads=st.lists(_payload, min_size=2, max_size=6),
)
def test_differential_against_noiseprotocol(
    we_initiate: bool,
    psk: bytes,
    prologue: bytes,
    e_ours: bytes,
    e_theirs: bytes,
    payloads: list[bytes],
) -> None:
    ours = HandshakeState(initiator=we_initiate, prologue=prologue, psk=psk, rand=_fixed(e_ours))
    theirs = _theirs(initiator=not we_initiate, psk=psk, prologue=prologue, ephemeral=e_theirs)
    # The same role played by noiseprotocol with our ephemeral writes the same bytes.
    twin = _theirs(initiator=we_initiate, psk=psk, prologue=prologue, ephemeral=e_ours)
    for idx in range(2):
        payload = payloads[idx]
        if (idx % 2 == 0) == we_initiate:
            wire = ours.write_message(payload)
            assert bytes(twin.write_message(payload)) == wire
            assert bytes(theirs.read_message(wire)) == payload
        else:
            wire = bytes(theirs.write_message(payload))
            assert ours.read_message(wire) == payload
            assert bytes(twin.read_message(wire)) == payload
    assert theirs.handshake_finished
    assert ours.handshake_hash == theirs.get_handshake_hash()
    send, recv = ours.transport_ciphers()
    for idx, payload in enumerate(payloads[2:]):
        if idx % 2 == 0:
            wire = send.encrypt_with_ad(b"", payload)
            assert theirs.decrypt(wire) == payload
        else:
            assert recv.decrypt_with_ad(b"", theirs.encrypt(payload)) == payload


def _pair(
    psk_i: bytes = b"\x01" * 32,
    psk_r: bytes = b"\x01" * 32,
    prologue_i: bytes = b"p",
    prologue_r: bytes = b"p",
) -> tuple[HandshakeState, HandshakeState]:
    return (
        HandshakeState(initiator=True, prologue=prologue_i, psk=psk_i),
        HandshakeState(initiator=False, prologue=prologue_r, psk=psk_r),
    )


def test_wrong_psk_fails_at_first_message() -> None:
    init, resp = _pair(psk_r=b"\x02" * 32)
    msg = init.write_message(b"hello")
    with pytest.raises(IntegrityError):
        resp.read_message(msg)
    assert resp.failed
    with pytest.raises(StateError):
        resp.write_message()


def test_wrong_prologue_fails() -> None:
    init, resp = _pair(prologue_r=b"q")
    with pytest.raises(IntegrityError):
        resp.read_message(init.write_message())


@given(data=st.data())
def test_any_bit_flip_in_a_handshake_message_fails(data: st.DataObject) -> None:
    init, resp = _pair()
    msg1 = init.write_message(b"payload one")
    second = data.draw(st.booleans())
    if second:
        resp.read_message(msg1)
        target, reader = resp.write_message(b"payload two"), init
    else:
        target, reader = msg1, resp
    bit = data.draw(st.integers(0, len(target) * 8 - 1))
    bad = bytearray(target)
    bad[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(IntegrityError):
        reader.read_message(bytes(bad))
    assert reader.failed


@pytest.mark.parametrize("length", [0, 1, 31, 32, 47])
def test_short_handshake_message(length: int) -> None:
    init, resp = _pair()
    msg = init.write_message()
    with pytest.raises(IntegrityError):
        resp.read_message(msg[:length])


def test_low_order_ephemeral_is_refused() -> None:
    init, resp = _pair()
    resp.read_message(init.write_message())
    reply = bytearray(resp.write_message())
    reply[:32] = bytes(32)  # the all-zero point: X25519 result would be zero
    with pytest.raises(IntegrityError):
        init.read_message(bytes(reply))


def test_turn_order_and_completion() -> None:
    init, resp = _pair()
    assert init.is_my_turn()
    assert not resp.is_my_turn()
    with pytest.raises(StateError):
        resp.write_message()
    with pytest.raises(StateError):
        init.read_message(b"x" * 64)
    with pytest.raises(StateError):
        _ = init.handshake_hash
    with pytest.raises(StateError):
        init.split()
    resp.read_message(init.write_message())
    init.read_message(resp.write_message())
    with pytest.raises(StateError):
        init.write_message()
    assert not init.failed  # misuse does not kill the handshake


def test_constructor_checks() -> None:
    with pytest.raises(UsageError):
        HandshakeState(initiator=True)
    with pytest.raises(UsageError):
        HandshakeState(initiator=True, psk=b"short")
    with pytest.raises(UsageError):
        HandshakeState(initiator=True, psk=b"\x00" * 32, pattern=HandshakePattern.NN)
    hs = HandshakeState(initiator=True, psk=b"\x00" * 32, rand=lambda n: b"\x00" * (n - 1))
    with pytest.raises(UsageError):
        hs.write_message()
    init, _ = _pair()
    with pytest.raises(UsageError):
        init.write_message(bytes(65535 - 48 + 1))


def test_repr_hides_keys() -> None:
    init, resp = _pair(psk_i=b"\xab" * 32, psk_r=b"\xab" * 32)
    resp.read_message(init.write_message())
    init.read_message(resp.write_message())
    send, _ = init.transport_ciphers()
    for obj in (init, send):
        assert "abab" not in repr(obj)


def test_cipher_state_failure_keeps_nonce_and_counts() -> None:
    key = X25519PrivateKey.generate().private_bytes_raw()  # any 32 octets
    a, b = CipherState(key), CipherState(key)
    c1 = a.encrypt_with_ad(b"ad", b"one")
    c2 = a.encrypt_with_ad(b"ad", b"two")
    with pytest.raises(IntegrityError):
        b.decrypt_with_ad(b"ad", c2)  # reordered: nonce 0 expected
    assert b.nonce == 0
    with pytest.raises(IntegrityError):
        b.decrypt_with_ad(b"other", c1)
    assert b.decrypt_with_ad(b"ad", c1) == b"one"
    assert b.decrypt_with_ad(b"ad", c2) == b"two"
    with pytest.raises(IntegrityError):
        b.decrypt_with_ad(b"ad", c2)  # replay
    with pytest.raises(IntegrityError):
        b.decrypt_with_ad(b"ad", b"short")


def test_cipher_state_nonce_limit() -> None:
    cs = CipherState(b"\x07" * 32, nonce=MAX_NONCE - 1)
    cs.encrypt_with_ad(b"", b"last")
    with pytest.raises(StateError):
        cs.encrypt_with_ad(b"", b"one too many")
    rx = CipherState(b"\x07" * 32, nonce=MAX_NONCE)
    with pytest.raises(IntegrityError):
        rx.decrypt_with_ad(b"", bytes(32))
    with pytest.raises(UsageError):
        CipherState(b"\x07" * 32, nonce=MAX_NONCE + 1)
    with pytest.raises(UsageError):
        CipherState(b"\x07" * 31)


def test_empty_cipher_state_passes_through() -> None:
    cs = CipherState()
    assert not cs.has_key()
    assert cs.encrypt_with_ad(b"ad", b"clear") == b"clear"
    assert cs.decrypt_with_ad(b"ad", b"clear") == b"clear"
    with pytest.raises(StateError):
        cs.rekey()


@given(psk=_key, e_i=_key, e_r=_key, payload=_payload)
def test_rekey_matches_noiseprotocol(psk: bytes, e_i: bytes, e_r: bytes, payload: bytes) -> None:
    ours = HandshakeState(initiator=True, psk=psk, rand=_fixed(e_i))
    theirs = _theirs(initiator=False, psk=psk, prologue=b"", ephemeral=e_r)
    theirs.read_message(ours.write_message())
    ours.read_message(bytes(theirs.write_message()))
    send, recv = ours.transport_ciphers()
    send.rekey()
    theirs.rekey_inbound_cipher()
    assert theirs.decrypt(send.encrypt_with_ad(b"", payload)) == payload
    theirs.rekey_outbound_cipher()
    recv.rekey()
    assert recv.decrypt_with_ad(b"", theirs.encrypt(payload)) == payload


def test_symmetric_state_long_protocol_name_is_hashed() -> None:
    short = SymmetricState(b"Noise_NN_25519_ChaChaPoly_SHA256")
    assert short.h == b"Noise_NN_25519_ChaChaPoly_SHA256"
    long_name = PROTOCOL_NAME.encode()
    assert len(long_name) > 32
    assert len(SymmetricState(long_name).h) == 32
    assert SymmetricState(long_name).h != long_name[:32]


@pytest.mark.parametrize("junk", [b"", b"\x00" * 10, b"\xff" * 48, b"\x00" * 70000])
def test_junk_raises_rspfed_errors(junk: bytes) -> None:
    _, resp = _pair()
    with pytest.raises(RspfedError):
        resp.read_message(junk)
