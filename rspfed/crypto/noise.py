"""Noise ``NNpsk0_25519_ChaChaPoly_SHA256`` (Noise Protocol Framework, revision 34).

Composed from ``cryptography``: X25519 (DH), ChaCha20-Poly1305 (AEAD, nonce
``0x00000000 || uint64-LE(n)``), SHA-256 (HASH) and HKDF with HMAC-SHA256 as
§4.3 defines it (``HKDF(ck, ikm)`` = RFC 5869 extract with salt ``ck`` then
expand with empty info; outputs 1, 2 and 3 are the first, second and third
32 octets).  The objects follow the specification's names:

* :class:`CipherState` (§5.1): ``k``, ``n``, ``EncryptWithAd``,
  ``DecryptWithAd``, ``Rekey``;
* :class:`SymmetricState` (§5.2): ``ck``, ``h``, ``MixKey``, ``MixHash``,
  ``MixKeyAndHash``, ``EncryptAndHash``, ``DecryptAndHash``, ``Split``;
* :class:`HandshakeState` (§5.3) for the patterns ``NN``, ``NNpsk0`` (the one
  rspfed pairing uses) and ``NNpsk2`` (the other two are here because the
  published vectors cover them and they cost one table row each)::

      NNpsk0:               NNpsk2:              NN:
        -> psk, e             -> e                 -> e
        <- e, ee              <- e, ee, psk        <- e, ee

  With a ``psk`` modifier, every ``e`` token also does ``MixKey(e.public_key)``
  (§9.2), so the first message of ``NNpsk0`` is already encrypted and
  authenticated by the psk.

Ephemeral keys come from the injected ``rand`` callable (``os.urandom``'s
signature): 32 octets are the X25519 private key (clamped by X25519 itself).
A fixed ``rand`` makes the handshake replayable (the published vectors).

Errors: a message that does not decrypt or is too short, or an X25519 result
of all zeros (a low-order public key), raises
:class:`~rspfed.errors.IntegrityError`; the handshake object is then dead
(every later call raises :class:`~rspfed.errors.StateError`).  A transport
:class:`CipherState` that fails to decrypt leaves its nonce unchanged (§5.1);
:class:`rspfed.transfer.channel.SecureChannel` closes itself anyway.  Calls out
of turn raise :class:`~rspfed.errors.StateError`; payloads that would make a
message longer than 65535 octets raise :class:`~rspfed.errors.UsageError`.
Keys never appear in ``repr`` or exception text.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rspfed.errors import IntegrityError, StateError, UsageError

__all__ = [
    "DHLEN",
    "HASHLEN",
    "MAX_MESSAGE_SIZE",
    "MAX_NONCE",
    "PROTOCOL_NAME",
    "PSK_SIZE",
    "TAG_SIZE",
    "CipherState",
    "HandshakePattern",
    "HandshakeState",
    "SymmetricState",
]

PROTOCOL_NAME = "Noise_NNpsk0_25519_ChaChaPoly_SHA256"
"""The suite rspfed pairing uses."""
DHLEN = 32
"""Octets in an X25519 public key or shared secret."""
HASHLEN = 32
"""Octets in a SHA-256 output (``h``, ``ck``)."""
TAG_SIZE = 16
"""Octets of the ChaCha20-Poly1305 tag."""
PSK_SIZE = 32
"""Octets in a Noise psk."""
MAX_MESSAGE_SIZE = 65535
"""Largest Noise message (§3)."""
MAX_NONCE = 2**64 - 1
"""The reserved nonce value: a CipherState refuses to use it (§5.1)."""

_KEY_SIZE = 32


def _hkdf(chaining_key: bytes, ikm: bytes, outputs: int) -> list[bytes]:
    """Noise ``HKDF(chaining_key, input_key_material, num_outputs)`` (§4.3)."""
    okm = HKDF(
        algorithm=hashes.SHA256(), length=HASHLEN * outputs, salt=chaining_key, info=b""
    ).derive(ikm)
    return [okm[i * HASHLEN : (i + 1) * HASHLEN] for i in range(outputs)]


def _sha256(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize()


def _nonce(n: int) -> bytes:
    return b"\x00\x00\x00\x00" + n.to_bytes(8, "little")


class CipherState:
    """A Noise CipherState (§5.1): key ``k`` (or none) and 64-bit nonce ``n``.

    Without a key, encryption and decryption return their input unchanged
    (as the specification says; this happens only in the first message of
    patterns without a psk).  With a key, each call uses nonce ``n`` and then
    increments it; ``n = 2**64 - 1`` is refused with
    :class:`~rspfed.errors.StateError` (encrypt) or
    :class:`~rspfed.errors.IntegrityError` (decrypt).
    """

    __slots__ = ("_aead", "_k", "_n")

    def __init__(self, key: bytes | None = None, nonce: int = 0) -> None:
        self._k: bytes | None = None
        self._aead: ChaCha20Poly1305 | None = None
        self._n = 0
        if key is not None:
            self.initialize_key(key)
        self.set_nonce(nonce)

    def __repr__(self) -> str:
        return f"CipherState(has_key={self.has_key()}, n={self._n})"

    def initialize_key(self, key: bytes | None) -> None:
        """``InitializeKey(key)``: set ``k`` (32 octets, or None) and ``n = 0``."""
        if key is None:
            self._k = None
            self._aead = None
        else:
            if len(key) != _KEY_SIZE:
                raise UsageError(f"cipher key must be {_KEY_SIZE} octets")
            self._k = bytes(key)
            self._aead = ChaCha20Poly1305(self._k)
        self._n = 0

    def has_key(self) -> bool:
        """``HasKey()``: whether ``k`` is set."""
        return self._k is not None

    @property
    def nonce(self) -> int:
        """The next nonce ``n``."""
        return self._n

    def set_nonce(self, nonce: int) -> None:
        """``SetNonce(nonce)`` (0 to 2**64 - 1)."""
        if not 0 <= nonce <= MAX_NONCE:
            raise UsageError("nonce out of range")
        self._n = nonce

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        """``EncryptWithAd(ad, plaintext)``: ciphertext and 16-octet tag, ``n += 1``."""
        if self._aead is None:
            return bytes(plaintext)
        if self._n >= MAX_NONCE:
            raise StateError("Noise nonce exhausted")
        ct = self._aead.encrypt(_nonce(self._n), bytes(plaintext), bytes(ad))
        self._n += 1
        return ct

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """``DecryptWithAd(ad, ciphertext)``: the plaintext, ``n += 1``.

        :class:`~rspfed.errors.IntegrityError` if authentication fails (``n``
        unchanged).
        """
        if self._aead is None:
            return bytes(ciphertext)
        if self._n >= MAX_NONCE:
            raise IntegrityError("Noise nonce exhausted")
        if len(ciphertext) < TAG_SIZE:
            raise IntegrityError("Noise ciphertext shorter than its tag")
        try:
            pt = self._aead.decrypt(_nonce(self._n), bytes(ciphertext), bytes(ad))
        except InvalidTag:
            raise IntegrityError("Noise message authentication failed") from None
        self._n += 1
        return pt

    def rekey(self) -> None:
        """``Rekey()``: ``k = ENCRYPT(k, 2**64 - 1, "", zeros(32))[:32]``; ``n`` unchanged."""
        if self._aead is None:
            raise StateError("cannot rekey a CipherState without a key")
        new = self._aead.encrypt(_nonce(MAX_NONCE), bytes(_KEY_SIZE), b"")[:_KEY_SIZE]
        n = self._n
        self.initialize_key(new)
        self._n = n


class SymmetricState:
    """A Noise SymmetricState (§5.2): chaining key ``ck``, hash ``h`` and a CipherState."""

    __slots__ = ("_cipher", "_ck", "_h")

    def __init__(self, protocol_name: bytes) -> None:
        """``InitializeSymmetric(protocol_name)``."""
        name = bytes(protocol_name)
        self._h = name.ljust(HASHLEN, b"\x00") if len(name) <= HASHLEN else _sha256(name)
        self._ck = self._h
        self._cipher = CipherState()

    def __repr__(self) -> str:
        return f"SymmetricState(h={self._h.hex()})"

    @property
    def h(self) -> bytes:
        """The handshake hash ``h`` (after the last message: the channel-binding value)."""
        return self._h

    @property
    def cipher_state(self) -> CipherState:
        """The handshake CipherState."""
        return self._cipher

    def mix_key(self, input_key_material: bytes) -> None:
        """``MixKey(ikm)``: ``ck, temp_k = HKDF(ck, ikm, 2)``; ``InitializeKey(temp_k)``."""
        self._ck, temp_k = _hkdf(self._ck, input_key_material, 2)
        self._cipher.initialize_key(temp_k)

    def mix_hash(self, data: bytes) -> None:
        """``MixHash(data)``: ``h = HASH(h || data)``."""
        self._h = _sha256(self._h + bytes(data))

    def mix_key_and_hash(self, input_key_material: bytes) -> None:
        """``MixKeyAndHash(ikm)`` (the psk token)."""
        self._ck, temp_h, temp_k = _hkdf(self._ck, input_key_material, 3)
        self.mix_hash(temp_h)
        self._cipher.initialize_key(temp_k)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        """``EncryptAndHash(plaintext)``: encrypt with ``ad = h``, then ``MixHash(ciphertext)``."""
        ct = self._cipher.encrypt_with_ad(self._h, plaintext)
        self.mix_hash(ct)
        return ct

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        """``DecryptAndHash(ciphertext)``; :class:`~rspfed.errors.IntegrityError` on failure."""
        pt = self._cipher.decrypt_with_ad(self._h, ciphertext)
        self.mix_hash(ciphertext)
        return pt

    def split(self) -> tuple[CipherState, CipherState]:
        """``Split()``: ``(c1, c2)``, initiator-to-responder and responder-to-initiator."""
        k1, k2 = _hkdf(self._ck, b"", 2)
        return CipherState(k1), CipherState(k2)


class HandshakePattern(enum.Enum):
    """The supported handshake patterns (each two messages, no static keys)."""

    NN = "NN"
    NNpsk0 = "NNpsk0"
    NNpsk2 = "NNpsk2"

    @property
    def messages(self) -> tuple[tuple[str, ...], ...]:
        """The token lists of the pattern's messages, in order."""
        return _PATTERNS[self]

    @property
    def has_psk(self) -> bool:
        """Whether the pattern has a ``psk`` modifier."""
        return self is not HandshakePattern.NN

    def protocol_name(self) -> str:
        """``Noise_<pattern>_25519_ChaChaPoly_SHA256``."""
        return f"Noise_{self.value}_25519_ChaChaPoly_SHA256"


_PATTERNS: dict[HandshakePattern, tuple[tuple[str, ...], ...]] = {
    HandshakePattern.NN: (("e",), ("e", "ee")),
    HandshakePattern.NNpsk0: (("psk", "e"), ("e", "ee")),
    HandshakePattern.NNpsk2: (("e",), ("e", "ee", "psk")),
}


class HandshakeState:
    """A Noise HandshakeState (§5.3) for :class:`HandshakePattern` (default ``NNpsk0``).

    ``initiator`` says which role this side plays (the initiator writes the
    first message).  ``prologue`` is mixed into ``h`` first: both sides must
    use the same one or the handshake fails.  ``psk`` (32 octets) is required
    for the psk patterns.  ``rand`` (``os.urandom``'s signature) supplies the
    32-octet ephemeral private key when this side writes its ``e`` token.

    Use :meth:`write_message` and :meth:`read_message` alternately (the
    initiator starts); once :attr:`complete`, :meth:`split` gives the transport
    CipherStates and :attr:`handshake_hash` the channel-binding value.
    """

    __slots__ = (
        "_complete",
        "_dead",
        "_e",
        "_initiator",
        "_message_index",
        "_pattern",
        "_psk",
        "_rand",
        "_re",
        "_split",
        "_ss",
    )

    def __init__(
        self,
        *,
        initiator: bool,
        prologue: bytes = b"",
        psk: bytes | None = None,
        rand: Callable[[int], bytes] = os.urandom,
        pattern: HandshakePattern = HandshakePattern.NNpsk0,
    ) -> None:
        pattern = HandshakePattern(pattern)
        if pattern.has_psk:
            if psk is None or len(psk) != PSK_SIZE:
                raise UsageError(f"{pattern.value} needs a {PSK_SIZE}-octet psk")
        elif psk is not None:
            raise UsageError(f"{pattern.value} takes no psk")
        self._pattern = pattern
        self._initiator = bool(initiator)
        self._psk = None if psk is None else bytes(psk)
        self._rand = rand
        self._ss = SymmetricState(pattern.protocol_name().encode("ascii"))
        self._ss.mix_hash(bytes(prologue))
        self._e: X25519PrivateKey | None = None
        self._re: bytes | None = None
        self._message_index = 0
        self._complete = False
        self._dead = False
        self._split: tuple[CipherState, CipherState] | None = None

    def __repr__(self) -> str:
        role = "initiator" if self._initiator else "responder"
        return (
            f"HandshakeState({self._pattern.value}, {role}, message={self._message_index}, "
            f"complete={self._complete})"
        )

    @property
    def pattern(self) -> HandshakePattern:
        """The handshake pattern."""
        return self._pattern

    @property
    def initiator(self) -> bool:
        """True for the initiator role."""
        return self._initiator

    @property
    def complete(self) -> bool:
        """True once the last handshake message was written or read."""
        return self._complete

    @property
    def failed(self) -> bool:
        """True once a call raised: the handshake is dead."""
        return self._dead

    def is_my_turn(self) -> bool:
        """True if the next step is :meth:`write_message` (False: :meth:`read_message`)."""
        return (self._message_index % 2 == 0) == self._initiator

    @property
    def handshake_hash(self) -> bytes:
        """``h`` after the handshake (32 octets), for channel binding."""
        if not self._complete:
            raise StateError("the handshake hash exists after the handshake")
        return self._ss.h

    @property
    def remote_ephemeral(self) -> bytes | None:
        """The peer's ephemeral public key ``re`` once read (public value)."""
        return self._re

    def _check_step(self, writing: bool) -> tuple[str, ...]:
        if self._dead:
            raise StateError("the Noise handshake failed earlier")
        if self._complete:
            raise StateError("the Noise handshake is complete")
        if self.is_my_turn() != writing:
            raise StateError("not our turn to write" if writing else "not our turn to read")
        return self._pattern.messages[self._message_index]

    def _dh(self) -> bytes:
        assert self._e is not None
        assert self._re is not None
        try:
            return self._e.exchange(X25519PublicKey.from_public_bytes(self._re))
        except ValueError:  # cryptography refuses an all-zero X25519 result
            raise IntegrityError("X25519 with a low-order public key") from None

    def _advance(self) -> None:
        self._message_index += 1
        if self._message_index == len(self._pattern.messages):
            self._complete = True
            self._split = self._ss.split()

    def write_message(self, payload: bytes = b"") -> bytes:
        """``WriteMessage(payload)``: the next handshake message to send."""
        steps = self._check_step(writing=True)
        payload = bytes(payload)
        overhead = DHLEN * steps.count("e") + TAG_SIZE
        if len(payload) + overhead > MAX_MESSAGE_SIZE:
            raise UsageError("Noise handshake payload too large")
        try:
            out = bytearray()
            for step in steps:
                if step == "e":
                    raw = self._rand(DHLEN)
                    if len(raw) != DHLEN:
                        raise UsageError("rand returned the wrong number of octets")
                    self._e = X25519PrivateKey.from_private_bytes(raw)
                    pub = self._e.public_key().public_bytes_raw()
                    out += pub
                    self._ss.mix_hash(pub)
                    if self._pattern.has_psk:
                        self._ss.mix_key(pub)
                elif step == "ee":
                    self._ss.mix_key(self._dh())
                elif step == "psk":
                    assert self._psk is not None
                    self._ss.mix_key_and_hash(self._psk)
            out += self._ss.encrypt_and_hash(payload)
        except Exception:
            self._dead = True
            raise
        self._advance()
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        """``ReadMessage(message)``: the peer's payload.

        :class:`~rspfed.errors.IntegrityError` if the message is too short or
        does not authenticate (wrong psk or prologue, altered octets); the
        handshake is dead afterwards.
        """
        steps = self._check_step(writing=False)
        message = bytes(message)
        try:
            if len(message) > MAX_MESSAGE_SIZE:
                raise IntegrityError("Noise message longer than 65535 octets")
            pos = 0
            for step in steps:
                if step == "e":
                    if len(message) - pos < DHLEN:
                        raise IntegrityError("Noise handshake message too short")
                    self._re = message[pos : pos + DHLEN]
                    pos += DHLEN
                    self._ss.mix_hash(self._re)
                    if self._pattern.has_psk:
                        self._ss.mix_key(self._re)
                elif step == "ee":
                    self._ss.mix_key(self._dh())
                elif step == "psk":
                    assert self._psk is not None
                    self._ss.mix_key_and_hash(self._psk)
            rest = message[pos:]
            if self._ss.cipher_state.has_key() and len(rest) < TAG_SIZE:
                raise IntegrityError("Noise handshake message too short")
            payload = self._ss.decrypt_and_hash(rest)
        except Exception:
            self._dead = True
            raise
        self._advance()
        return payload

    def split(self) -> tuple[CipherState, CipherState]:
        """``Split()`` result ``(c1, c2)``: initiator→responder, responder→initiator.

        Available once :attr:`complete`; each call returns the same two objects.
        """
        if self._split is None:
            raise StateError("split() is available after the handshake")
        return self._split

    def transport_ciphers(self) -> tuple[CipherState, CipherState]:
        """``(send, receive)`` CipherStates for this side's role (from :meth:`split`)."""
        c1, c2 = self.split()
        return (c1, c2) if self._initiator else (c2, c1)
