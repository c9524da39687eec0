"""SPAKE2 (symmetric) with explicit key confirmation: the short-code pairing key.

Both devices know the short code (:class:`rspfed.transfer.code.ShortCode`);
its text is the password.  :class:`SymmetricPake` runs SPAKE2 in symmetric
mode as the ``spake2`` package implements it (magic-wormhole's Ed25519 group,
``idSymmetric = b"rspfed-pair-v1"``), then *explicit key confirmation*:

1. each side :meth:`~SymmetricPake.start` s and sends its SPAKE2 message
   (33 octets: the side octet ``"S"`` and an Ed25519 group element);
2. on the peer's message, :meth:`~SymmetricPake.finish` computes the SPAKE2
   key ``K`` (32 octets) and derives, with HKDF-SHA256 (no salt),
   ``K_c = HKDF(K, info="rspfed pake confirm v1")`` and the pairing key
   ``HKDF(K, info="rspfed pake key v1")`` (32 octets each);
3. each side sends :meth:`~SymmetricPake.confirmation`,
   ``HMAC-SHA256(K_c, "rspfed-pake-confirm-v1" || side || transcript)``, where
   ``transcript`` is the two SPAKE2 messages (33 octets each, side octet
   included) in ascending byte order and ``side`` is ``0x01`` for the side
   whose message sorts first, ``0x02`` for the other (a reflected
   confirmation therefore never verifies);
4. :meth:`~SymmetricPake.verify_confirmation` recomputes the peer's value and
   compares it with :func:`hmac.compare_digest`; a mismatch (a different code,
   or a tampered message on either side) raises
   :class:`~rspfed.errors.IntegrityError` and the object is dead.  Only
   after that check does it return the 32-octet pairing key.

The exchange is symmetric: both sides may send their SPAKE2 message at once,
and both confirmations may cross; neither side needs to know who is "first".

A wrong code gives the attacker nothing but one failed attempt: a failed
run must burn the code (the pairing layer does that).

Randomness: the SPAKE2 scalar is drawn from the injected ``rand`` callable
(64 octets, reduced modulo the group order by ``spake2``), which the package's
``entropy_f`` hook accepts; a run with a fixed ``rand`` is therefore
replayable.  Keys, the password and MACs never appear in ``repr`` or in
exception text.
"""

from __future__ import annotations

import enum
import hmac
import os
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from spake2 import SPAKE2_Symmetric

from rspfed.errors import DecodeError, IntegrityError, ProtocolError, StateError, UsageError

__all__ = [
    "CONFIRMATION_SIZE",
    "ID_SYMMETRIC",
    "KEY_SIZE",
    "MESSAGE_SIZE",
    "PakeState",
    "SymmetricPake",
]

ID_SYMMETRIC = b"rspfed-pair-v1"
"""The fixed SPAKE2 ``idSymmetric`` of rspfed pairing."""
MESSAGE_SIZE = 33
"""Octets in a SPAKE2 message: side octet ``"S"`` and a 32-octet group element."""
CONFIRMATION_SIZE = 32
"""Octets in a key confirmation (HMAC-SHA256)."""
KEY_SIZE = 32
"""Octets in the confirmed pairing key."""

_SIDE_SYMMETRIC = b"S"
_CONFIRM_LABEL = b"rspfed-pake-confirm-v1"
_INFO_CONFIRM = b"rspfed pake confirm v1"
_INFO_KEY = b"rspfed pake key v1"
_MAX_PASSWORD = 1024


class PakeState(enum.Enum):
    """Where a :class:`SymmetricPake` is."""

    NEW = "new"
    """Created; :meth:`SymmetricPake.start` not called yet."""
    STARTED = "started"
    """Our SPAKE2 message is out; waiting for the peer's."""
    FINISHED = "finished"
    """SPAKE2 done; the confirmations are to be exchanged."""
    CONFIRMED = "confirmed"
    """The peer's confirmation verified; the pairing key was released."""
    FAILED = "failed"
    """A check failed; the object is dead (the code must be burnt)."""


def _hkdf(ikm: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(ikm)


def _hmac(key: bytes, data: bytes) -> bytes:
    h = crypto_hmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


class SymmetricPake:
    """One side of a symmetric SPAKE2 run with explicit key confirmation (sans-IO).

    ``password`` is the shared code text (:attr:`ShortCode.password`), 1 to
    1024 octets; ``rand`` (``os.urandom``'s signature) supplies the SPAKE2
    scalar.  Typical use::

        pake = SymmetricPake(code.password, rand=os.urandom)
        send(pake.start())
        pake.finish(receive())
        send(pake.confirmation())
        key = pake.verify_confirmation(receive())   # IntegrityError on a wrong code

    Misuse (calls out of order, a second call) raises
    :class:`~rspfed.errors.StateError`; after any raised error every call
    raises :class:`~rspfed.errors.StateError`.
    """

    __slots__ = (
        "_confirm_key",
        "_key",
        "_my_message",
        "_peer_message",
        "_spake",
        "_state",
        "_transcript",
    )

    def __init__(
        self,
        password: bytes,
        *,
        rand: Callable[[int], bytes] = os.urandom,
        id_symmetric: bytes = ID_SYMMETRIC,
    ) -> None:
        if not isinstance(password, bytes | bytearray) or not 1 <= len(password) <= _MAX_PASSWORD:
            raise UsageError(f"PAKE password must be 1 to {_MAX_PASSWORD} octets")
        self._spake: SPAKE2_Symmetric | None = SPAKE2_Symmetric(
            bytes(password), idSymmetric=bytes(id_symmetric), entropy_f=rand
        )
        self._state = PakeState.NEW
        self._my_message = b""
        self._peer_message = b""
        self._transcript = b""
        self._confirm_key = b""
        self._key = b""

    def __repr__(self) -> str:
        return f"SymmetricPake(state={self._state.value})"

    @property
    def state(self) -> PakeState:
        """The current :class:`PakeState`."""
        return self._state

    @property
    def transcript(self) -> bytes:
        """Both SPAKE2 messages in ascending order (66 octets), once :meth:`finish` ran."""
        if self._state not in (PakeState.FINISHED, PakeState.CONFIRMED):
            raise StateError("the PAKE transcript exists after finish()")
        return self._transcript

    def _fail(self, exc: Exception) -> Exception:
        self._state = PakeState.FAILED
        self._spake = None  # drop the scalar and password early
        self._confirm_key = b""
        self._key = b""
        return exc

    def _expect(self, state: PakeState, what: str) -> None:
        if self._state is not state:
            raise StateError(f"PAKE {what} not allowed in state {self._state.value}")

    def start(self) -> bytes:
        """Our SPAKE2 message (:data:`MESSAGE_SIZE` octets) to send to the peer."""
        self._expect(PakeState.NEW, "start()")
        assert self._spake is not None
        try:
            msg = self._spake.start()
        except Exception as exc:  # the rand callable or spake2 failed: nothing was sent
            raise self._fail(UsageError("PAKE start failed (bad rand callable?)")) from exc
        if len(msg) != MESSAGE_SIZE:
            raise self._fail(UsageError("unexpected SPAKE2 message size"))
        self._my_message = msg
        self._state = PakeState.STARTED
        return msg

    def finish(self, peer_message: bytes) -> None:
        """Process the peer's SPAKE2 message and derive the keys.

        :class:`~rspfed.errors.DecodeError` if it is not a 33-octet symmetric
        message, :class:`~rspfed.errors.ProtocolError` if it is our own message
        reflected, :class:`~rspfed.errors.IntegrityError` if the element is not
        a valid group element.  The key is not usable yet: exchange and verify
        the confirmations first.
        """
        self._expect(PakeState.STARTED, "finish()")
        peer_message = bytes(peer_message)
        if len(peer_message) != MESSAGE_SIZE or peer_message[:1] != _SIDE_SYMMETRIC:
            raise self._fail(
                DecodeError("not a symmetric SPAKE2 message", type_name="SPAKE2 message")
            )
        if hmac.compare_digest(peer_message, self._my_message):
            raise self._fail(ProtocolError("SPAKE2 message reflected"))
        assert self._spake is not None
        try:
            k = self._spake.finish(peer_message)
        except Exception as exc:  # spake2 raises ValueError/SPAKEError for bad elements
            raise self._fail(IntegrityError("SPAKE2 message is not a valid group element")) from (
                exc
            )
        self._peer_message = peer_message
        first, second = sorted((self._my_message, peer_message))
        self._transcript = first + second
        self._confirm_key = _hkdf(k, _INFO_CONFIRM)
        self._key = _hkdf(k, _INFO_KEY)
        self._spake = None  # the scalar is no longer needed
        self._state = PakeState.FINISHED

    def _side_octet(self, message: bytes) -> bytes:
        return b"\x01" if self._transcript.startswith(message) else b"\x02"

    def _mac_for(self, message: bytes) -> bytes:
        return _hmac(
            self._confirm_key, _CONFIRM_LABEL + self._side_octet(message) + self._transcript
        )

    def confirmation(self) -> bytes:
        """Our key confirmation (:data:`CONFIRMATION_SIZE` octets) to send to the peer.

        Available after :meth:`finish`, before or after
        :meth:`verify_confirmation` (so either side may confirm first); the
        same value each time.
        """
        if self._state not in (PakeState.FINISHED, PakeState.CONFIRMED):
            raise StateError(f"PAKE confirmation() not allowed in state {self._state.value}")
        return self._mac_for(self._my_message)

    def verify_confirmation(self, mac: bytes) -> bytes:
        """Check the peer's confirmation (constant time); return the 32-octet pairing key.

        :class:`~rspfed.errors.IntegrityError` if it does not verify (a
        different code, or a message changed in transit); the object is dead
        afterwards.
        """
        self._expect(PakeState.FINISHED, "verify_confirmation()")
        expected = self._mac_for(self._peer_message)
        if not hmac.compare_digest(expected, bytes(mac)):
            raise self._fail(IntegrityError("PAKE key confirmation failed (wrong code?)"))
        self._state = PakeState.CONFIRMED
        return self._key
