"""Short pairing codes, discovery identifiers and the pairing key derivations.

Short code
    A magic-wormhole style code for devices without a camera:
    ``"17-guitarist-revenge"``: a public *nameplate* (decimal 1 to 999, no
    leading zero) and two words of the PGP word list
    (:mod:`rspfed.transfer.wordlist`), the first from the *odd* list, the second
    from the *even* list (as magic-wormhole alternates them).  The words carry
    16 bits of secret; SPAKE2 (:mod:`rspfed.crypto.pake`) turns that into a
    strong key while letting an active attacker test one guess per run (and
    a failed run burns the code).  :attr:`ShortCode.password` (the whole code
    text, ASCII) is the SPAKE2 password.  :meth:`ShortCode.parse` is
    case-insensitive and ignores surrounding white space; anything else raises
    :class:`~rspfed.errors.DecodeError` (the text of the code never appears in
    the message).

Discovery identifiers (16 octets)
    The LAN zeroconf instance name (``"rspfed-" + id[:8].hex()``) and the BLE
    service UUID come from a discovery identifier:

    * QR path: :func:`discovery_id_from_secret`,
      ``HKDF-SHA256(IKM = secret, salt = none, info = "rspfed pairing discovery v1", L = 16)``;
    * code path: :func:`discovery_id_from_nameplate`,
      ``HKDF-SHA256(IKM = uint16-BE(nameplate), salt = none,
      info = "rspfed pairing nameplate discovery v1", L = 16)``: a function of
      the *public* nameplate only, never of the guessable words (an observer
      of the advertisement learns nothing about them).

Pairing keys (32 octets)
    Both pairing methods end in a Noise ``NNpsk0`` handshake keyed by a psk:

    * QR path: :func:`psk_from_secret`,
      ``HKDF-SHA256(IKM = secret, info = "rspfed pairing psk v1", L = 32)``;
    * code path: :func:`psk_from_pake_key`,
      ``HKDF-SHA256(IKM = confirmed SPAKE2 key, info = "rspfed pairing psk code v1", L = 32)``.

    :func:`pairing_prologue` builds the Noise prologue
    ``"rspfed-pair-v1" || method octet || discovery id``.

Companion reconnection (issue H)
    After a first pairing, both sides keep a long-term key (:class:`PairedKey`):

    * :func:`companion_psk`,
      ``HKDF-SHA256(IKM = handshake hash of the first pairing,
      info = "rspfed companion psk v1", L = 32)``;
    * :func:`companion_discovery_id`,
      ``HKDF-SHA256(IKM = psk, info = "rspfed companion discovery v1", L = 16)``,
      under which the watch keeps listening.

    A reconnection (:attr:`PairingMethod.PAIRED`) is Noise ``NNpsk0`` keyed by
    that psk directly, prologue ``pairing_prologue(PAIRED, discovery id)``.

Everything here is deterministic or draws randomness from the injected
``rand`` callable (``os.urandom``'s signature).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rspfed.errors import DecodeError, UsageError
from rspfed.transfer.wordlist import EVEN_WORDS, ODD_WORDS

__all__ = [
    "DISCOVERY_ID_SIZE",
    "NAMEPLATE_MAX",
    "NAMEPLATE_MIN",
    "PAIRING_PROLOGUE_LABEL",
    "PSK_SIZE",
    "SECRET_SIZE",
    "PairedKey",
    "PairingMethod",
    "ShortCode",
    "companion_discovery_id",
    "companion_psk",
    "discovery_id_from_nameplate",
    "discovery_id_from_secret",
    "pairing_prologue",
    "psk_from_pake_key",
    "psk_from_secret",
]

NAMEPLATE_MIN = 1
"""Smallest nameplate."""
NAMEPLATE_MAX = 999
"""Largest nameplate (three decimal digits)."""
DISCOVERY_ID_SIZE = 16
"""Octets in a discovery identifier."""
PSK_SIZE = 32
"""Octets in a Noise psk (and in the SPAKE2 pairing key)."""
SECRET_SIZE = 32
"""Octets in the QR one-time secret (256 bits)."""
PAIRING_PROLOGUE_LABEL = b"rspfed-pair-v1"
"""First part of the Noise prologue; also the SPAKE2 ``idSymmetric``."""

_WORD_COUNT = 2
_INFO_DISCOVERY = b"rspfed pairing discovery v1"
_INFO_NAMEPLATE = b"rspfed pairing nameplate discovery v1"
_INFO_PSK = b"rspfed pairing psk v1"
_INFO_PSK_CODE = b"rspfed pairing psk code v1"
_INFO_COMPANION_PSK = b"rspfed companion psk v1"
_INFO_COMPANION_DISCOVERY = b"rspfed companion discovery v1"
_ODD_INDEX = {w: i for i, w in enumerate(ODD_WORDS)}
_EVEN_INDEX = {w: i for i, w in enumerate(EVEN_WORDS)}
_CODE_RE = re.compile(r"([1-9][0-9]{0,2})-([a-z]+)-([a-z]+)")
_MAX_TEXT = 64


class PairingMethod(enum.IntEnum):
    """How the two devices share the pairing secret (the prologue's method octet)."""

    QR = 1
    """The joiner scanned the offer URI (256-bit secret)."""
    CODE = 2
    """The joiner typed the short code (SPAKE2 then key confirmation)."""
    PAIRED = 3
    """Reconnection of an already paired companion: Noise keyed by the stored psk, no PAKE."""


def _hkdf(ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(ikm)


def _check_nameplate(nameplate: int) -> int:
    if isinstance(nameplate, bool) or not isinstance(nameplate, int):
        raise UsageError("nameplate must be an int")
    if not NAMEPLATE_MIN <= nameplate <= NAMEPLATE_MAX:
        raise UsageError(f"nameplate must be {NAMEPLATE_MIN} to {NAMEPLATE_MAX}, got {nameplate}")
    return nameplate


def _to_words(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(words)


def _check_words(words: tuple[str, ...]) -> tuple[str, ...]:
    if len(words) != _WORD_COUNT:
        raise UsageError(f"a short code has {_WORD_COUNT} words, got {len(words)}")
    if words[0] not in _ODD_INDEX or words[1] not in _EVEN_INDEX:
        raise UsageError("short code words must come from the PGP word list (odd, even)")
    return words


@attrs.frozen
class ShortCode:
    """A short pairing code ``nameplate-word-word`` (e.g. ``17-guitarist-revenge``).

    ``nameplate`` is public (it selects the discovery identifier); ``words``
    are the secret part: lower-case, the first from the odd PGP list, the
    second from the even list.  The words never appear in ``repr``.
    """

    nameplate: int = attrs.field(validator=lambda _i, _a, v: _check_nameplate(v))
    words: tuple[str, ...] = attrs.field(
        repr=False, converter=_to_words, validator=lambda _i, _a, v: _check_words(v)
    )

    @classmethod
    def generate(cls, rand: Callable[[int], bytes]) -> ShortCode:
        """A uniformly random code from ``rand`` (``os.urandom``'s signature).

        The nameplate is drawn uniformly from 1..999 by rejection sampling of
        16-bit values; each word from one octet (its list index).
        """
        while True:
            raw = rand(2)
            if len(raw) != 2:
                raise UsageError("rand returned the wrong number of octets")
            value = int.from_bytes(raw, "big")
            if value < 65 * NAMEPLATE_MAX:  # 64935: largest multiple of 999 below 2**16
                break
        nameplate = value % NAMEPLATE_MAX + NAMEPLATE_MIN
        w = rand(_WORD_COUNT)
        if len(w) != _WORD_COUNT:
            raise UsageError("rand returned the wrong number of octets")
        return cls(nameplate, (ODD_WORDS[w[0]], EVEN_WORDS[w[1]]))

    @classmethod
    def parse(cls, text: str) -> ShortCode:
        """Parse ``"17-guitarist-revenge"`` (case-insensitive, surrounding white space ignored).

        :class:`~rspfed.errors.DecodeError` (type name ``ShortCode``) for
        anything else: a nameplate outside 1..999 or with a leading zero, a
        word not in its list, a wrong number of parts.  The message never
        quotes the input.
        """
        if not isinstance(text, str):
            raise DecodeError("short code must be text", type_name="ShortCode")
        if len(text) > _MAX_TEXT:
            raise DecodeError("short code too long", type_name="ShortCode")
        if not text.isascii():
            raise DecodeError("short code must be ASCII", type_name="ShortCode")
        m = _CODE_RE.fullmatch(text.strip().lower())
        if m is None:
            raise DecodeError(
                "not a short code (expected nameplate-word-word)", type_name="ShortCode"
            )
        first, second = m.group(2), m.group(3)
        if first not in _ODD_INDEX:
            raise DecodeError("first word is not in the PGP odd word list", type_name="ShortCode")
        if second not in _EVEN_INDEX:
            raise DecodeError("second word is not in the PGP even word list", type_name="ShortCode")
        return cls(int(m.group(1)), (first, second))

    def __str__(self) -> str:
        """The canonical text form, ``"17-guitarist-revenge"``."""
        return "-".join((str(self.nameplate), *self.words))

    @property
    def text(self) -> str:
        """The canonical text form (same as ``str(code)``)."""
        return str(self)

    @property
    def password(self) -> bytes:
        """The SPAKE2 password: the whole canonical code text, ASCII."""
        return str(self).encode("ascii")

    @property
    def discovery_id(self) -> bytes:
        """:func:`discovery_id_from_nameplate` of this code's (public) nameplate."""
        return discovery_id_from_nameplate(self.nameplate)


def discovery_id_from_secret(secret: bytes) -> bytes:
    """The 16-octet discovery identifier of a QR offer's 32-octet secret (HKDF-SHA256)."""
    if len(secret) != SECRET_SIZE:
        raise UsageError(f"pairing secret must be {SECRET_SIZE} octets, got {len(secret)}")
    return _hkdf(bytes(secret), _INFO_DISCOVERY, DISCOVERY_ID_SIZE)


def discovery_id_from_nameplate(nameplate: int) -> bytes:
    """The 16-octet discovery identifier of a short code's public nameplate (HKDF-SHA256)."""
    return _hkdf(_check_nameplate(nameplate).to_bytes(2, "big"), _INFO_NAMEPLATE, DISCOVERY_ID_SIZE)


def psk_from_secret(secret: bytes) -> bytes:
    """The Noise psk of the QR path: ``HKDF(secret, info="rspfed pairing psk v1")``, 32 octets."""
    if len(secret) != SECRET_SIZE:
        raise UsageError(f"pairing secret must be {SECRET_SIZE} octets, got {len(secret)}")
    return _hkdf(bytes(secret), _INFO_PSK, PSK_SIZE)


def psk_from_pake_key(key: bytes) -> bytes:
    """The Noise psk of the code path, from the confirmed SPAKE2 pairing key (32 octets)."""
    if len(key) != PSK_SIZE:
        raise UsageError(f"pairing key must be {PSK_SIZE} octets, got {len(key)}")
    return _hkdf(bytes(key), _INFO_PSK_CODE, PSK_SIZE)


def pairing_prologue(method: PairingMethod, discovery_id: bytes) -> bytes:
    """The Noise prologue ``b"rspfed-pair-v1" || method octet || discovery id`` (31 octets)."""
    if len(discovery_id) != DISCOVERY_ID_SIZE:
        raise UsageError(
            f"discovery id must be {DISCOVERY_ID_SIZE} octets, got {len(discovery_id)}"
        )
    return PAIRING_PROLOGUE_LABEL + bytes((PairingMethod(method),)) + bytes(discovery_id)


def companion_psk(handshake_hash: bytes) -> bytes:
    """The long-term companion psk from a first pairing's Noise handshake hash (32 octets).

    ``HKDF-SHA256(IKM = handshake_hash, salt = none, info = "rspfed companion psk v1", L = 32)``.
    """
    if not isinstance(handshake_hash, bytes | bytearray) or len(handshake_hash) != 32:
        raise UsageError("handshake hash must be 32 octets")
    return _hkdf(bytes(handshake_hash), _INFO_COMPANION_PSK, PSK_SIZE)


def companion_discovery_id(psk: bytes) -> bytes:
    """The 16-octet reconnection discovery identifier of a companion psk (HKDF-SHA256)."""
    if not isinstance(psk, bytes | bytearray) or len(psk) != PSK_SIZE:
        raise UsageError(f"companion psk must be {PSK_SIZE} octets")
    return _hkdf(bytes(psk), _INFO_COMPANION_DISCOVERY, DISCOVERY_ID_SIZE)


def _psk_validator(_i: Any, _a: Any, value: Any) -> None:
    if not isinstance(value, bytes) or len(value) != PSK_SIZE:
        raise UsageError(f"psk must be {PSK_SIZE} octets")


def _discovery_validator(_i: Any, _a: Any, value: Any) -> None:
    if not isinstance(value, bytes) or len(value) != DISCOVERY_ID_SIZE:
        raise UsageError(f"discovery_id must be {DISCOVERY_ID_SIZE} octets")


@attrs.frozen
class PairedKey:
    """The long-term key of a paired companion: ``psk`` (secret, not in ``repr``) and its id.

    ``discovery_id`` is normally :func:`companion_discovery_id` of the psk
    (:meth:`from_handshake_hash` builds both from a first pairing).
    """

    psk: bytes = attrs.field(repr=False, validator=_psk_validator)
    discovery_id: bytes = attrs.field(validator=_discovery_validator)

    @classmethod
    def from_psk(cls, psk: bytes) -> PairedKey:
        """The key with ``discovery_id = companion_discovery_id(psk)``."""
        return cls(psk=bytes(psk), discovery_id=companion_discovery_id(psk))

    @classmethod
    def from_handshake_hash(cls, handshake_hash: bytes) -> PairedKey:
        """The key both sides derive after a first pairing (``conn.handshake_hash``)."""
        return cls.from_psk(companion_psk(handshake_hash))
