"""BSP: the BPP protection protocol (SGP.22 §2.6.4, "SCP03t" in SGP.22 v2.x).

A Bound Profile Package is a sequence of TLV segments, each protected with the
session keys (:class:`~rspfed.crypto.kdf.SessionKeys`) in one of two ways:

*encrypted and MACed* (tags ``'87'``: ``ConfigureISDPRequest`` in
``firstSequenceOf87`` and ``ReplaceSessionKeysRequest`` in
``secondSequenceOf87``; ``'86'``: the profile elements in ``sequenceOf86``):

    1. pad the data with ``'80'`` and 0 to 15 ``'00'`` to a multiple of 16
       octets (padding is always added);
    2. encrypt with AES-128-CBC under S-ENC; the ICV is the block counter
       (1 for the first segment), left-padded with zeros to 16 octets and
       encrypted with S-ENC (as in GlobalPlatform SCP03);
    3. compute AES-CMAC under S-MAC over ``MCV || tag || length || ciphertext``,
       where ``length`` is the final BER length of the value (ciphertext plus
       8 octets of MAC) and ``MCV`` the MAC chaining value (the initial MCV,
       then the full 16-octet CMAC of the previous segment);
    4. the segment is ``tag || length || ciphertext || CMAC[:8]``.

*MACed only* (tag ``'88'``: ``StoreMetadataRequest`` in ``sequenceOf88``):
    steps 3 and 4 on the plaintext; the block counter still advances.

In the BPP (``BoundProfilePackage``, SGP.22 §5.5, ES8+) each segment is one element
of ``firstSequenceOf87`` / ``sequenceOf88`` / ``secondSequenceOf87`` /
``sequenceOf86``: the DER encoding of that ``[7]`` / ``[8]`` / ``[6]`` OCTET
STRING *is* the segment, its identifier and length octets being the ``tag``
and ``length`` above (the "'87' TLVs" of the ASN.1 comments).

A segment, tag, length and MAC included, is at most 1020 octets
(:data:`MAX_SEGMENT_SIZE`), so an encrypted segment carries at most 1007
octets of data and a MAC-only segment at most 1008.

``ReplaceSessionKeysRequest`` (precomputed profile protection) switches both
sides to PPK-ENC, PPK-MAC and the given initial MCV, and the block counter
starts again at 1.

:class:`BspEncryptor` (the SM-DP+ side) and :class:`BspDecryptor` (the eUICC
side) are sans-IO state machines holding the keys, the block counter and the
MAC chaining value.  The decryptor is *poisoned* by any failure: after it has
raised once, every further call raises :class:`~rspfed.errors.StateError`
(a BPP with a bad segment is abandoned; the chain cannot be resumed).  Keys
never appear in ``repr`` or in exception text; MACs are compared in constant
time.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from rspfed.crypto.kdf import SessionKeys
from rspfed.errors import (
    DecodeError,
    IntegrityError,
    ProtocolError,
    RspfedError,
    StateError,
    UsageError,
)

__all__ = [
    "MAC_SIZE",
    "MAX_ENCRYPTED_DATA_SIZE",
    "MAX_MAC_ONLY_DATA_SIZE",
    "MAX_SEGMENT_SIZE",
    "TAG_CONFIGURE_ISDP",
    "TAG_PROFILE_ELEMENT",
    "TAG_REPLACE_SESSION_KEYS",
    "TAG_STORE_METADATA",
    "BspDecryptor",
    "BspEncryptor",
    "pad",
    "unpad",
]

MAX_SEGMENT_SIZE = 1020
"""Largest protected segment, tag, length and MAC included (SGP.22 §2.5.3)."""

MAC_SIZE = 8
"""Octets of C-MAC carried in a segment (the 8 most significant of the CMAC)."""

_BLOCK = 16
_HEADER_MAX = 1 + 3  # one tag octet, length '82 xx xx'

MAX_MAC_ONLY_DATA_SIZE = MAX_SEGMENT_SIZE - _HEADER_MAX - MAC_SIZE
"""Most data octets in one MAC-only segment (1008)."""

MAX_ENCRYPTED_DATA_SIZE = MAX_MAC_ONLY_DATA_SIZE - 1
"""Most data octets in one encrypted segment (1007: padding adds at least one octet)."""

TAG_CONFIGURE_ISDP = 0x87
"""Tag of the ``ConfigureISDPRequest`` segments (encrypted)."""
TAG_REPLACE_SESSION_KEYS = 0x87
"""Tag of the ``ReplaceSessionKeysRequest`` segment (encrypted)."""
TAG_STORE_METADATA = 0x88
"""Tag of the ``StoreMetadataRequest`` segments (MAC only)."""
TAG_PROFILE_ELEMENT = 0x86
"""Tag of the profile element segments (encrypted)."""


def pad(data: bytes) -> bytes:
    """``data || '80' || '00'*k`` with the smallest ``k`` giving a multiple of 16 octets."""
    k = (-(len(data) + 1)) % _BLOCK
    return bytes(data) + b"\x80" + bytes(k)


def unpad(padded: bytes) -> bytes:
    """Remove ``'80' '00'..`` padding; :class:`~rspfed.errors.IntegrityError` if malformed."""
    if not padded or len(padded) % _BLOCK:
        raise IntegrityError("padded BSP data is not a multiple of 16 octets")
    stripped = padded.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(padded) - len(stripped) >= _BLOCK:
        raise IntegrityError("bad BSP padding")
    return stripped[:-1]


def _encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    return bytes((0x82, n >> 8, n & 0xFF))


def _check_tag(tag: int) -> None:
    if not 0 <= tag <= 0xFF or tag & 0x1F == 0x1F or tag & 0x20:
        raise UsageError("BSP segment tag must be a one-octet primitive tag")


class _Channel:
    """Keys, block counter and MAC chaining value shared by both directions."""

    __slots__ = ("_block_counter", "_cbc", "_cbc_last", "_cmac", "_icv_ctx", "_mcv")

    def __init__(self, keys: SessionKeys) -> None:
        self._install(keys)

    def _install(self, keys: SessionKeys) -> None:
        aes = algorithms.AES(keys.s_enc)
        # One-block AES (ECB on a single block) of the counter: the ICV, as SCP03 defines it.
        ecb = modes.ECB()  # noqa: S305 - single-block encryption of a counter, not bulk data
        self._icv_ctx: CipherContext = Cipher(aes, ecb).encryptor()
        # One long-lived CBC context per direction instead of one per segment (creating
        # a context costs more than encrypting a 1 KiB segment).  Each segment is
        # re-anchored on its ICV by one leading block whose output is dropped; see
        # BspEncryptor.protect and BspDecryptor.unprotect.
        self._cbc: CipherContext = self._new_cbc(aes)
        self._cbc_last = bytes(_BLOCK)
        self._cmac = cmac.CMAC(algorithms.AES(keys.s_mac))
        self._mcv = keys.initial_mac_chaining_value
        self._block_counter = 1

    def _new_cbc(self, aes: algorithms.AES) -> CipherContext:
        raise NotImplementedError

    @property
    def block_counter(self) -> int:
        """The block counter the next segment will use (1 for the first)."""
        return self._block_counter

    def _counter_block(self) -> bytes:
        block = self._block_counter.to_bytes(_BLOCK, "big")
        self._block_counter += 1
        return block

    def _full_mac(self, header: bytes, body: bytes) -> bytes:
        c = self._cmac.copy()
        c.update(self._mcv)
        c.update(header)
        c.update(body)
        return c.finalize()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(block_counter={self._block_counter})"


class BspEncryptor(_Channel):
    """The protecting side of BSP (the SM-DP+ building a BPP).

    Each call produces one segment and advances the block counter and the MAC
    chaining value.  Oversized data raises :class:`~rspfed.errors.UsageError`
    before any state changes.
    """

    __slots__ = ()

    def _new_cbc(self, aes: algorithms.AES) -> CipherContext:
        return Cipher(aes, modes.CBC(bytes(_BLOCK))).encryptor()

    def replace_session_keys(self, keys: SessionKeys) -> None:
        """Switch to PPK-ENC / PPK-MAC / initial MCV (``ReplaceSessionKeysRequest``).

        The block counter starts again at 1.
        """
        self._install(keys)

    def protect(self, tag: int, data: bytes) -> bytes:
        """One encrypted and MACed segment ``tag || L || E(pad(data)) || C-MAC``."""
        _check_tag(tag)
        if len(data) > MAX_ENCRYPTED_DATA_SIZE:
            raise UsageError(
                f"{len(data)} octets exceed one encrypted BSP segment "
                f"({MAX_ENCRYPTED_DATA_SIZE}); use protect_split"
            )
        # CBC under ICV = E(counter): the running CBC context, whose chaining value is the
        # last ciphertext block it produced, is given (counter XOR last) first; that block
        # encrypts to E(counter) = ICV and the data that follows is chained from it.
        counter = int.from_bytes(self._counter_block(), "big")
        lead = (counter ^ int.from_bytes(self._cbc_last, "big")).to_bytes(_BLOCK, "big")
        out = self._cbc.update(lead + pad(data))
        self._cbc_last = out[-_BLOCK:]
        return self._seal(tag, out[_BLOCK:])

    def protect_mac_only(self, tag: int, data: bytes) -> bytes:
        """One MAC-only segment ``tag || L || data || C-MAC`` (the block counter advances)."""
        _check_tag(tag)
        if len(data) > MAX_MAC_ONLY_DATA_SIZE:
            raise UsageError(
                f"{len(data)} octets exceed one MAC-only BSP segment "
                f"({MAX_MAC_ONLY_DATA_SIZE}); use protect_split"
            )
        self._counter_block()
        return self._seal(tag, bytes(data))

    def protect_split(self, tag: int, data: bytes, *, encrypt: bool = True) -> list[bytes]:
        """Protect ``data`` as as many full segments as needed (at least one).

        Every segment but the last carries the maximum amount of data.
        """
        size = MAX_ENCRYPTED_DATA_SIZE if encrypt else MAX_MAC_ONLY_DATA_SIZE
        one = self.protect if encrypt else self.protect_mac_only
        _check_tag(tag)
        view = memoryview(bytes(data))
        if not view:
            return [one(tag, b"")]
        return [one(tag, bytes(view[i : i + size])) for i in range(0, len(view), size)]

    def _seal(self, tag: int, body: bytes) -> bytes:
        header = bytes((tag,)) + _encode_length(len(body) + MAC_SIZE)
        full = self._full_mac(header, body)
        self._mcv = full
        return header + body + full[:MAC_SIZE]


class BspDecryptor(_Channel):
    """The verifying side of BSP (the eUICC loading a BPP).

    Segments must be given in order.  A failure (wrong tag, malformed TLV,
    wrong MAC, bad padding) raises and **poisons** the decryptor: every later
    call raises :class:`~rspfed.errors.StateError`.  A wrong MAC or bad
    padding is :class:`~rspfed.errors.IntegrityError`, a malformed TLV
    :class:`~rspfed.errors.DecodeError`, an unexpected tag
    :class:`~rspfed.errors.ProtocolError`.
    """

    __slots__ = ("_failed",)

    def __init__(self, keys: SessionKeys) -> None:
        super().__init__(keys)
        self._failed = False

    def _new_cbc(self, aes: algorithms.AES) -> CipherContext:
        return Cipher(aes, modes.CBC(bytes(_BLOCK))).decryptor()

    @property
    def failed(self) -> bool:
        """True once a segment has been rejected (the object is then unusable)."""
        return self._failed

    def replace_session_keys(self, keys: SessionKeys) -> None:
        """Switch to PPK-ENC / PPK-MAC / initial MCV; the block counter starts again at 1."""
        self._check_usable()
        self._install(keys)

    def unprotect(self, segment: bytes, *, tag: int) -> bytes:
        """Verify and decrypt one encrypted segment with tag ``tag``; the data."""
        self._check_usable()
        try:
            body = self._open(segment, tag)
            if len(body) < _BLOCK or len(body) % _BLOCK:
                raise DecodeError(
                    "encrypted BSP segment is not a positive multiple of 16 octets",
                    type_name="BSP segment",
                )
            # CBC decryption under ICV with the running context: the ICV is fed first as
            # a ciphertext block (its output is dropped), so the data chains from it.
            icv = self._icv_ctx.update(self._counter_block())
            return unpad(self._cbc.update(icv + body)[_BLOCK:])
        except RspfedError:
            self._failed = True
            raise

    def unprotect_mac_only(self, segment: bytes, *, tag: int) -> bytes:
        """Verify one MAC-only segment with tag ``tag``; the data."""
        self._check_usable()
        try:
            body = self._open(segment, tag)
        except RspfedError:
            self._failed = True
            raise
        self._counter_block()
        return body

    def _check_usable(self) -> None:
        if self._failed:
            raise StateError("BSP decryptor has rejected a segment and cannot be used again")

    def _open(self, segment: bytes, tag: int) -> bytes:
        """Parse ``tag || L || body || MAC``, check the MAC, update the MCV; the body."""
        _check_tag(tag)
        seg = bytes(segment)
        if len(seg) > MAX_SEGMENT_SIZE:
            raise DecodeError(
                f"BSP segment of {len(seg)} octets exceeds {MAX_SEGMENT_SIZE}",
                type_name="BSP segment",
            )
        if len(seg) < 2:
            raise DecodeError("truncated BSP segment", type_name="BSP segment", offset=len(seg))
        if seg[0] != tag:
            raise ProtocolError(f"BSP segment has tag {seg[0]:02X}, expected {tag:02X}")
        first = seg[1]
        if first < 0x80:
            length, header_len = first, 2
        elif first in (0x81, 0x82) and len(seg) >= 2 + (first & 0x7F):
            n = first & 0x7F
            length = int.from_bytes(seg[2 : 2 + n], "big")
            header_len = 2 + n
            if length < (0x80 if n == 1 else 0x100):
                raise DecodeError(
                    "BSP segment length is not minimally encoded",
                    type_name="BSP segment",
                    offset=1,
                )
        else:
            raise DecodeError("bad BSP segment length", type_name="BSP segment", offset=1)
        if header_len + length != len(seg):
            raise DecodeError(
                f"BSP segment length {length} does not match its {len(seg) - header_len} octets",
                type_name="BSP segment",
                offset=1,
            )
        if length < MAC_SIZE:
            raise DecodeError("BSP segment shorter than its MAC", type_name="BSP segment")
        header = seg[:header_len]
        body = seg[header_len:-MAC_SIZE]
        full = self._full_mac(header, body)
        if not hmac.compare_digest(full[:MAC_SIZE], seg[-MAC_SIZE:]):
            raise IntegrityError("BSP segment C-MAC does not verify")
        self._mcv = full
        return body
