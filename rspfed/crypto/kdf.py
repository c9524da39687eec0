"""Session key derivation for the BPP (SGP.22 §2.6.4.2 / §3.1.3, Annex G).

After ECKA-DH both the eUICC and the SM-DP+ feed the shared secret ``ShS``
into the ANSI X9.63 KDF with SHA-256 (BSI TR-03111 §4.3.3) with

``SharedInfo = keyType || keyLength || hostID-LV || EID-LV``

where ``keyType`` is ``'88'`` (AES), ``keyLength`` is ``'10'`` (16 octets),
``hostID-LV`` is the length and value of the ``hostId`` the SM-DP+ sent in
``InitialiseSecureChannelRequest.controlRefTemplate`` and ``EID-LV`` is the
length and value of the EID (16 octets).  The 48 octets of keying data split,
in order, into the initial MAC chaining value, S-ENC and S-MAC.
"""

from __future__ import annotations

import attrs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from rspfed.errors import UsageError

__all__ = [
    "EID_SIZE",
    "KEY_LENGTH_AES128",
    "KEY_TYPE_AES",
    "SessionKeys",
    "derive_session_keys",
    "session_shared_info",
    "x963_kdf",
]

KEY_TYPE_AES = 0x88
"""``keyType`` for AES (GlobalPlatform key type coding), the only one SGP.22 uses."""

KEY_LENGTH_AES128 = 0x10
"""``keyLength`` for 16-octet (AES-128) session keys."""

EID_SIZE = 16
"""Octets in an EID (32 decimal digits, BCD)."""

_HOST_ID_MAX = 16


def x963_kdf(z: bytes, shared_info: bytes, length: int) -> bytes:
    """ANSI X9.63 KDF with SHA-256: ``length`` octets from ``z`` and ``shared_info``."""
    if not 0 < length <= 32 * 255:
        raise UsageError(f"X9.63 KDF output length {length} out of range")
    kdf = X963KDF(algorithm=hashes.SHA256(), length=length, sharedinfo=bytes(shared_info))
    return kdf.derive(bytes(z))


def _check_16(name: str, value: bytes) -> bytes:
    if len(value) != 16:
        raise UsageError(f"{name} must be 16 octets, got {len(value)}")
    return bytes(value)


@attrs.frozen
class SessionKeys:
    """The BSP key set: initial MAC chaining value, S-ENC and S-MAC (16 octets each).

    The same shape carries the precomputed profile protection keys of a
    ``ReplaceSessionKeysRequest`` (``initialMacChainingValue``, ``ppkEnc``,
    ``ppkCmac``).  No key appears in ``repr``.
    """

    initial_mac_chaining_value: bytes = attrs.field(repr=False, converter=bytes)
    s_enc: bytes = attrs.field(repr=False, converter=bytes)
    s_mac: bytes = attrs.field(repr=False, converter=bytes)

    def __attrs_post_init__(self) -> None:
        _check_16("initial MAC chaining value", self.initial_mac_chaining_value)
        _check_16("S-ENC", self.s_enc)
        _check_16("S-MAC", self.s_mac)

    @classmethod
    def from_replace_session_keys(
        cls, initial_mac_chaining_value: bytes, ppk_enc: bytes, ppk_cmac: bytes
    ) -> SessionKeys:
        """The key set of a ``ReplaceSessionKeysRequest`` (PPK-ENC, PPK-MAC, initial MCV)."""
        return cls(initial_mac_chaining_value, ppk_enc, ppk_cmac)


def session_shared_info(
    host_id: bytes,
    eid: bytes,
    *,
    key_type: int = KEY_TYPE_AES,
    key_length: int = KEY_LENGTH_AES128,
) -> bytes:
    """``SharedInfo = keyType || keyLength || hostID-LV || EID-LV`` (SGP.22 Annex G).

    ``host_id`` is 1 to 16 octets (``hostId OCTET STRING (SIZE(1..16))``),
    ``eid`` 16 octets; both lengths fit in one length octet.
    """
    if key_type != KEY_TYPE_AES or key_length != KEY_LENGTH_AES128:
        raise UsageError("only keyType '88' (AES) with keyLength '10' is supported")
    if not 1 <= len(host_id) <= _HOST_ID_MAX:
        raise UsageError(f"hostId must be 1 to {_HOST_ID_MAX} octets, got {len(host_id)}")
    if len(eid) != EID_SIZE:
        raise UsageError(f"EID must be {EID_SIZE} octets, got {len(eid)}")
    return (
        bytes((key_type, key_length, len(host_id)))
        + bytes(host_id)
        + bytes((len(eid),))
        + bytes(eid)
    )


def derive_session_keys(
    shared_secret: bytes,
    host_id: bytes,
    eid: bytes,
    *,
    key_type: int = KEY_TYPE_AES,
    key_length: int = KEY_LENGTH_AES128,
) -> SessionKeys:
    """Derive the BSP session keys from ``ShS`` (SGP.22 §3.1.3 / Annex G).

    The KDF output is ``initial MCV || S-ENC || S-MAC`` (16 octets each).
    """
    if len(shared_secret) == 0:
        raise UsageError("empty shared secret")
    shared_info = session_shared_info(host_id, eid, key_type=key_type, key_length=key_length)
    out = x963_kdf(shared_secret, shared_info, 3 * key_length)
    return SessionKeys(out[:16], out[16:32], out[32:48])
