"""EAP-AKA' (RFC 9048): key derivation, packet and attribute codec, AT_MAC.

Key derivation (RFC 9048 §3.3, §3.4; 3GPP TS 33.402 Annex A.2)::

    CK' || IK' = HMAC-SHA-256(CK || IK, 0x20 || P0 || L0 || P1 || L1)
                 P0 = access network name, P1 = SQN ⊕ AK (6 octets)
    MK = PRF'(IK' || CK', "EAP-AKA'" || Identity)
    K_encr = MK[0..15], K_aut = MK[16..47], K_re = MK[48..79],
    MSK = MK[80..143], EMSK = MK[144..207]

``PRF'(K, S) = T1 | T2 | ...`` with ``T1 = HMAC-SHA-256(K, S | 0x01)`` and
``Tn = HMAC-SHA-256(K, T(n-1) | S | n)``.

Packets (RFC 3748 §4, RFC 4187 §8)::

    Code(1) Identifier(1) Length(2) [Type(1)=50 Subtype(1) Reserved(2) Attributes...]

Success and Failure packets are 4 octets (no type).  Each attribute is
``Type(1) Length(1, in 4-octet units) Value``.  :class:`Attribute` keeps the
*semantic* value: the RAND, the RES (its exact octets, length sent in bits),
the identity, a 16-bit code as 2 octets, and so on; the reserved and actual
length fields and the padding are produced and checked by the codec.  An
unknown attribute numbered 128-255 (skippable) is kept with its raw value
(``4n - 2`` octets); an unknown one below 128 is a :class:`DecodeError`.

AT_MAC (RFC 9048 §3.4 / RFC 4187 §10.15): HMAC-SHA-256-128 keyed by K_aut
over the whole EAP packet with the 16 MAC octets set to zero.

rspfed's own skippable attribute ``AT_RSPFED_FEDERATION_KEY`` (241) carries
an uncompressed SEC1 P-256 public key (65 octets) in the ``actual length`` +
value + padding layout of AT_IDENTITY; it is covered by AT_MAC like any
attribute of the packet.
"""

from __future__ import annotations

import enum
import hmac

import attrs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from rspfed.errors import DecodeError, EncodeError, IntegrityError, UsageError

__all__ = [
    "AT_AUTN",
    "AT_AUTS",
    "AT_BIDDING",
    "AT_CHECKCODE",
    "AT_CLIENT_ERROR_CODE",
    "AT_IDENTITY",
    "AT_KDF",
    "AT_KDF_INPUT",
    "AT_MAC",
    "AT_NOTIFICATION",
    "AT_PADDING",
    "AT_RAND",
    "AT_RES",
    "AT_RSPFED_FEDERATION_KEY",
    "EAP_TYPE_AKA_PRIME",
    "EAP_TYPE_IDENTITY",
    "KDF_AKA_PRIME",
    "Attribute",
    "Code",
    "EapPacket",
    "Keys",
    "Subtype",
    "add_mac",
    "ck_ik_prime",
    "compute_mac",
    "decode",
    "derive_keys",
    "prf_prime",
    "verify_mac",
]

EAP_TYPE_IDENTITY = 1
EAP_TYPE_AKA_PRIME = 50
KDF_AKA_PRIME = 1
"""The only key derivation function defined (RFC 9048 §3.1 / §3.3)."""

AT_RAND = 1
AT_AUTN = 2
AT_RES = 3
AT_AUTS = 4
AT_PADDING = 6
AT_PERMANENT_ID_REQ = 10
AT_MAC = 11
AT_NOTIFICATION = 12
AT_ANY_ID_REQ = 13
AT_IDENTITY = 14
AT_FULLAUTH_ID_REQ = 17
AT_CLIENT_ERROR_CODE = 22
AT_KDF_INPUT = 23
AT_KDF = 24
AT_CHECKCODE = 134
AT_RESULT_IND = 135
AT_BIDDING = 136
AT_RSPFED_FEDERATION_KEY = 241
"""rspfed's skippable attribute: the peer's new federation public key (P-256, SEC1 uncompressed)."""

_MAC_SIZE = 16


class Code(enum.IntEnum):
    """EAP codes (RFC 3748 §4)."""

    REQUEST = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4


class Subtype(enum.IntEnum):
    """EAP-AKA' subtypes (RFC 4187 §11, shared by RFC 9048)."""

    AKA_CHALLENGE = 1
    AUTHENTICATION_REJECT = 2
    SYNCHRONIZATION_FAILURE = 4
    IDENTITY = 5
    NOTIFICATION = 12
    REAUTHENTICATION = 13
    CLIENT_ERROR = 14


class _Layout(enum.Enum):
    RESERVED_16 = enum.auto()  # 2 reserved octets + 16-octet value
    RAW = enum.auto()  # value is the whole body
    BITS = enum.auto()  # 2-octet length in bits + value + zero padding
    BYTES = enum.auto()  # 2-octet length in octets + value + zero padding
    U16 = enum.auto()  # a 2-octet field, the whole body
    RESERVED = enum.auto()  # 2 reserved octets, empty value
    CHECKCODE = enum.auto()  # 2 reserved octets + 0 or 32 octets
    PADDING = enum.auto()  # all-zero body


_LAYOUT: dict[int, _Layout] = {
    AT_RAND: _Layout.RESERVED_16,
    AT_AUTN: _Layout.RESERVED_16,
    AT_MAC: _Layout.RESERVED_16,
    AT_RES: _Layout.BITS,
    AT_AUTS: _Layout.RAW,
    AT_PADDING: _Layout.PADDING,
    AT_PERMANENT_ID_REQ: _Layout.RESERVED,
    AT_ANY_ID_REQ: _Layout.RESERVED,
    AT_FULLAUTH_ID_REQ: _Layout.RESERVED,
    AT_RESULT_IND: _Layout.RESERVED,
    AT_NOTIFICATION: _Layout.U16,
    AT_CLIENT_ERROR_CODE: _Layout.U16,
    AT_KDF: _Layout.U16,
    AT_BIDDING: _Layout.U16,
    AT_IDENTITY: _Layout.BYTES,
    AT_KDF_INPUT: _Layout.BYTES,
    AT_CHECKCODE: _Layout.CHECKCODE,
    AT_RSPFED_FEDERATION_KEY: _Layout.BYTES,
}

_REPEATABLE = frozenset({AT_KDF})


def _pad4(n: int) -> int:
    return (-n) % 4


@attrs.frozen
class Attribute:
    """One attribute: its type number and semantic value (see the module docstring)."""

    type: int
    value: bytes = attrs.field(repr=False)

    def encode(self) -> bytes:
        """The attribute's octets; :class:`EncodeError` for a value its type cannot carry."""
        if not 0 <= self.type <= 255:
            raise EncodeError(f"attribute type {self.type} out of range")
        v = bytes(self.value)
        layout = _LAYOUT.get(self.type, _Layout.RAW)
        if layout is _Layout.RESERVED_16:
            if len(v) != 16:
                raise EncodeError(f"attribute {self.type} needs 16 octets, got {len(v)}")
            body = bytes(2) + v
        elif layout is _Layout.BITS:
            if not 4 <= len(v) <= 16:
                raise EncodeError(f"AT_RES must be 4 to 16 octets, got {len(v)}")
            body = (8 * len(v)).to_bytes(2, "big") + v + bytes(_pad4(4 + len(v)))
        elif layout is _Layout.BYTES:
            body = len(v).to_bytes(2, "big") + v + bytes(_pad4(4 + len(v)))
        elif layout is _Layout.U16:
            if len(v) != 2:
                raise EncodeError(f"attribute {self.type} needs 2 octets, got {len(v)}")
            body = v
        elif layout is _Layout.RESERVED:
            if v:
                raise EncodeError(f"attribute {self.type} carries no value")
            body = bytes(2)
        elif layout is _Layout.CHECKCODE:
            if len(v) not in (0, 32):
                raise EncodeError(f"AT_CHECKCODE must be 0 or 32 octets, got {len(v)}")
            body = bytes(2) + v
        elif layout is _Layout.PADDING:
            if len(v) not in (2, 6, 10) or any(v):
                raise EncodeError("AT_PADDING must be 2, 6 or 10 zero octets")
            body = v
        else:
            if self.type == AT_AUTS and len(v) != 14:
                raise EncodeError(f"AT_AUTS needs 14 octets, got {len(v)}")
            if (len(v) + 2) % 4:
                raise EncodeError(f"attribute {self.type}: raw value must be 4n-2 octets")
            body = v
        total = 2 + len(body)
        if total > 255 * 4:
            raise EncodeError(f"attribute {self.type} too long")
        return bytes((self.type, total // 4)) + body

    @property
    def int_value(self) -> int:
        """The value as a big-endian integer (for AT_KDF, AT_NOTIFICATION, error codes)."""
        return int.from_bytes(self.value, "big")


def _decode_attribute(t: int, body: bytes, offset: int) -> Attribute:
    layout = _LAYOUT.get(t)
    if layout is None:
        if t < 128:
            raise DecodeError(
                f"unknown non-skippable attribute {t}", type_name="EAP-AKA'", offset=offset
            )
        return Attribute(t, body)
    n = len(body)

    def bad(msg: str) -> DecodeError:
        return DecodeError(f"attribute {t}: {msg}", type_name="EAP-AKA'", offset=offset)

    if layout is _Layout.RESERVED_16:
        if n != 18:
            raise bad("wrong length")
        return Attribute(t, body[2:])
    if layout is _Layout.BITS or layout is _Layout.BYTES:
        if n < 2:
            raise bad("wrong length")
        count = int.from_bytes(body[:2], "big")
        if layout is _Layout.BITS:
            if count % 8 or not 32 <= count <= 128:
                raise bad("RES length must be 32 to 128 bits in whole octets")
            count //= 8
        if 2 + count + _pad4(4 + count) != n:
            raise bad("actual length does not match the attribute length")
        if any(body[2 + count :]):
            raise bad("non-zero padding")
        return Attribute(t, body[2 : 2 + count])
    if layout is _Layout.U16:
        if n != 2:
            raise bad("wrong length")
        return Attribute(t, body)
    if layout is _Layout.RESERVED:
        if n != 2:
            raise bad("wrong length")
        return Attribute(t, b"")
    if layout is _Layout.CHECKCODE:
        if n not in (2, 34):
            raise bad("wrong length")
        return Attribute(t, body[2:])
    if layout is _Layout.PADDING:
        if any(body):
            raise bad("non-zero padding")
        return Attribute(t, body)
    if t == AT_AUTS and n != 14:
        raise bad("wrong length")
    return Attribute(t, body)


@attrs.frozen
class EapPacket:
    """An EAP packet: Success/Failure (``type`` None) or EAP-AKA'/Identity.

    For :data:`EAP_TYPE_IDENTITY`, ``identity`` holds the type data and
    ``subtype`` is None.  For :data:`EAP_TYPE_AKA_PRIME`, ``subtype`` and
    ``attributes`` (in wire order) are set.
    """

    code: Code
    identifier: int
    type: int | None = None
    subtype: Subtype | None = None
    attributes: tuple[Attribute, ...] = ()
    identity: bytes = b""

    def encode(self) -> bytes:
        """The packet's octets; :class:`EncodeError` for a shape that cannot be sent."""
        if not 0 <= self.identifier <= 255:
            raise EncodeError("EAP identifier out of range")
        if self.code in (Code.SUCCESS, Code.FAILURE):
            if self.type is not None:
                raise EncodeError("EAP Success/Failure carries no type")
            payload = b""
        elif self.type == EAP_TYPE_IDENTITY:
            payload = bytes((EAP_TYPE_IDENTITY,)) + bytes(self.identity)
        elif self.type == EAP_TYPE_AKA_PRIME:
            if self.subtype is None:
                raise EncodeError("EAP-AKA' packet needs a subtype")
            payload = bytes((EAP_TYPE_AKA_PRIME, int(self.subtype), 0, 0))
            payload += b"".join(a.encode() for a in self.attributes)
        else:
            raise EncodeError(f"EAP type {self.type} not supported")
        length = 4 + len(payload)
        if length > 0xFFFF:
            raise EncodeError("EAP packet too long")
        return bytes((int(self.code), self.identifier)) + length.to_bytes(2, "big") + payload

    def get(self, attribute_type: int) -> Attribute | None:
        """The first attribute of that type, or None."""
        for a in self.attributes:
            if a.type == attribute_type:
                return a
        return None

    def get_all(self, attribute_type: int) -> tuple[Attribute, ...]:
        """All attributes of that type, in order."""
        return tuple(a for a in self.attributes if a.type == attribute_type)

    def require(self, attribute_type: int) -> bytes:
        """The value of a mandatory attribute; :class:`DecodeError` when absent."""
        a = self.get(attribute_type)
        if a is None:
            raise DecodeError(f"missing attribute {attribute_type}", type_name="EAP-AKA'")
        return a.value


def decode(data: bytes) -> EapPacket:
    """Parse one EAP packet strictly; :class:`DecodeError` for any malformation."""
    data = bytes(data)
    if len(data) < 4:
        raise DecodeError("EAP packet shorter than 4 octets", type_name="EAP")
    try:
        code = Code(data[0])
    except ValueError:
        raise DecodeError(f"unknown EAP code {data[0]}", type_name="EAP", offset=0) from None
    length = int.from_bytes(data[2:4], "big")
    if length != len(data):
        raise DecodeError("EAP length field does not match the packet", type_name="EAP", offset=2)
    ident = data[1]
    if code in (Code.SUCCESS, Code.FAILURE):
        if length != 4:
            raise DecodeError("EAP Success/Failure must be 4 octets", type_name="EAP", offset=2)
        return EapPacket(code, ident)
    if length < 5:
        raise DecodeError("EAP Request/Response without a type", type_name="EAP", offset=4)
    eap_type = data[4]
    if eap_type == EAP_TYPE_IDENTITY:
        return EapPacket(code, ident, EAP_TYPE_IDENTITY, identity=data[5:])
    if eap_type != EAP_TYPE_AKA_PRIME:
        raise DecodeError(f"EAP type {eap_type} not supported", type_name="EAP", offset=4)
    if length < 8:
        raise DecodeError("EAP-AKA' header truncated", type_name="EAP-AKA'", offset=5)
    try:
        subtype = Subtype(data[5])
    except ValueError:
        raise DecodeError(
            f"unknown EAP-AKA' subtype {data[5]}", type_name="EAP-AKA'", offset=5
        ) from None
    attributes: list[Attribute] = []
    seen: set[int] = set()
    pos = 8
    while pos < length:
        if pos + 2 > length:
            raise DecodeError("attribute header truncated", type_name="EAP-AKA'", offset=pos)
        t, units = data[pos], data[pos + 1]
        if units == 0:
            raise DecodeError("attribute length 0", type_name="EAP-AKA'", offset=pos + 1)
        end = pos + 4 * units
        if end > length:
            raise DecodeError("attribute overruns the packet", type_name="EAP-AKA'", offset=pos + 1)
        if t in seen and t not in _REPEATABLE:
            raise DecodeError(f"attribute {t} repeated", type_name="EAP-AKA'", offset=pos)
        seen.add(t)
        attributes.append(_decode_attribute(t, data[pos + 2 : end], pos))
        pos = end
    return EapPacket(code, ident, EAP_TYPE_AKA_PRIME, subtype, tuple(attributes))


# --- key derivation ------------------------------------------------------------------


def _hmac_sha256(key: bytes, data: bytes) -> bytes:
    h = crypto_hmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


def ck_ik_prime(
    ck: bytes, ik: bytes, network_name: bytes, sqn_xor_ak: bytes
) -> tuple[bytes, bytes]:
    """``(CK', IK')`` by TS 33.402 Annex A.2 (FC 0x20), as RFC 9048 §3.3 uses them."""
    if len(ck) != 16 or len(ik) != 16:
        raise UsageError("CK and IK must be 16 octets")
    if len(sqn_xor_ak) != 6:
        raise UsageError("SQN xor AK must be 6 octets")
    if len(network_name) > 0xFFFF:
        raise UsageError("network name too long")
    s = (
        b"\x20"
        + bytes(network_name)
        + len(network_name).to_bytes(2, "big")
        + bytes(sqn_xor_ak)
        + b"\x00\x06"
    )
    out = _hmac_sha256(bytes(ck) + bytes(ik), s)
    return out[:16], out[16:]


def prf_prime(key: bytes, seed: bytes, length: int) -> bytes:
    """PRF' of RFC 9048 §3.4.1 (HMAC-SHA-256 chaining, counter from 1), ``length`` octets."""
    if not 0 <= length <= 255 * 32:
        raise UsageError("PRF' output length out of range")
    out = b""
    t = b""
    i = 1
    while len(out) < length:
        t = _hmac_sha256(key, t + seed + bytes((i,)))
        out += t
        i += 1
    return out[:length]


@attrs.frozen
class Keys:
    """The EAP-AKA' key hierarchy (RFC 9048 §3.3); no field is shown in ``repr``."""

    ck_prime: bytes = attrs.field(repr=False)
    ik_prime: bytes = attrs.field(repr=False)
    k_encr: bytes = attrs.field(repr=False)
    k_aut: bytes = attrs.field(repr=False)
    k_re: bytes = attrs.field(repr=False)
    msk: bytes = attrs.field(repr=False)
    emsk: bytes = attrs.field(repr=False)


def derive_keys(
    identity: bytes, ck: bytes, ik: bytes, network_name: bytes, sqn_xor_ak: bytes
) -> Keys:
    """CK', IK', then ``MK = PRF'(IK' | CK', "EAP-AKA'" | Identity)``, split into session keys."""
    ck_p, ik_p = ck_ik_prime(ck, ik, network_name, sqn_xor_ak)
    mk = prf_prime(ik_p + ck_p, b"EAP-AKA'" + bytes(identity), 208)
    return Keys(ck_p, ik_p, mk[:16], mk[16:48], mk[48:80], mk[80:144], mk[144:208])


# --- AT_MAC --------------------------------------------------------------------------


def _mac_offset(packet: bytes) -> int:
    pkt = decode(packet)
    pos = 8
    for a in pkt.attributes:
        if a.type == AT_MAC:
            return pos + 4
        pos += len(a.encode())
    raise DecodeError("missing AT_MAC", type_name="EAP-AKA'")


def compute_mac(k_aut: bytes, packet: bytes) -> bytes:
    """HMAC-SHA-256-128 over ``packet`` with its AT_MAC value zeroed."""
    off = _mac_offset(packet)
    zeroed = packet[:off] + bytes(_MAC_SIZE) + packet[off + _MAC_SIZE :]
    return _hmac_sha256(k_aut, zeroed)[:_MAC_SIZE]


def add_mac(k_aut: bytes, packet: EapPacket) -> bytes:
    """Encode ``packet`` (which must hold an AT_MAC, any value) with its MAC filled in."""
    attrs_ = tuple(
        Attribute(AT_MAC, bytes(_MAC_SIZE)) if a.type == AT_MAC else a for a in packet.attributes
    )
    raw = attrs.evolve(packet, attributes=attrs_).encode()
    off = _mac_offset(raw)
    return raw[:off] + compute_mac(k_aut, raw) + raw[off + _MAC_SIZE :]


def verify_mac(k_aut: bytes, packet: bytes) -> EapPacket:
    """Decode ``packet`` and check its AT_MAC (constant time); :class:`IntegrityError` if wrong."""
    pkt = decode(packet)
    received = pkt.require(AT_MAC)
    if not hmac.compare_digest(compute_mac(k_aut, bytes(packet)), received):
        raise IntegrityError("AT_MAC does not verify")
    return pkt
