"""Building a Bound Profile Package (the SM-DP+ side of ES8+, sans-IO).

See :mod:`rspfed.es8p` for the layout.  Everything here is pure: keys and
the one-time key pair come in as arguments (generate the SM-DP+'s one-time
key pair with :func:`rspfed.crypto.ecka.generate_key_pair` from injected
randomness), nothing reads a clock or global randomness except the ECDSA
nonce inside :func:`rspfed.crypto.signature.sign` (deterministic on request).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.crypto import bsp, ecka, signature
from rspfed.crypto.curves import Curve
from rspfed.crypto.kdf import EID_SIZE, SessionKeys, derive_session_keys
from rspfed.errors import DecodeError, EncodeError, UsageError
from rspfed.es8p._tlv import tlv

__all__ = [
    "DEFAULT_CONFIGURE_ISDP",
    "REMOTE_OP_INSTALL_BPP",
    "BppSegments",
    "ProtectedProfilePackage",
    "assemble_bound_profile_package",
    "build_bound_profile_package",
    "generate_ppk",
    "initialise_secure_channel_signed_data",
    "protect_bpp_segments",
    "protect_profile_package",
    "replace_session_keys_request",
    "store_metadata_request",
]

REMOTE_OP_INSTALL_BPP = 1
"""``RemoteOpId`` installBoundProfilePackage(1), the only value SGP.22 defines."""

DEFAULT_CONFIGURE_ISDP = bytes.fromhex("bf2400")
"""``ConfigureISDPRequest`` without ``dpProprietaryData`` (an empty ``BF24``)."""

_TAG_BPP = b"\xbf\x36"
_TAG_ISC = b"\xbf\x23"
_TAG_OTPK = b"\x5f\x49"
_TAG_SIGN = b"\x5f\x37"
_TAG_RSK = b"\xbf\x26"


@attrs.frozen
class ProtectedProfilePackage:
    """A profile package protected once under PPK-ENC / PPK-MAC (SGP.22 §2.5.3, the "PPP").

    ``segments`` are the ``'86'`` TLVs of ``sequenceOf86``; every BPP built
    from this object carries them unchanged and a ``ReplaceSessionKeysRequest``
    with ``keys`` (encrypted under that BPP's session keys).  Build it once
    per profile instance with :func:`protect_profile_package`.
    """

    keys: SessionKeys = attrs.field(repr=False)
    segments: tuple[bytes, ...] = attrs.field(repr=False)

    @property
    def size(self) -> int:
        """Octets in all ``'86'`` segments together."""
        return sum(len(s) for s in self.segments)


def generate_ppk(rand: Callable[[int], bytes]) -> SessionKeys:
    """Fresh PPK-ENC, PPK-MAC and initial MCV (48 octets from ``rand``)."""
    octets = rand(48)
    if len(octets) != 48:
        raise UsageError(f"rand(48) returned {len(octets)} octets")
    return SessionKeys.from_replace_session_keys(octets[:16], octets[16:32], octets[32:])


def protect_profile_package(package: bytes, ppk: SessionKeys) -> ProtectedProfilePackage:
    """Protect ``package`` (an unprotected profile package: ProfileElement TLVs) under ``ppk``.

    The package is split by size, not on ProfileElement boundaries: each
    ``'86'`` segment carries at most 1007 octets of it (see :mod:`rspfed.es8p`).
    """
    if not package:
        raise UsageError("empty profile package")
    enc = bsp.BspEncryptor(ppk)
    return ProtectedProfilePackage(ppk, tuple(enc.protect_split(bsp.TAG_PROFILE_ELEMENT, package)))


def replace_session_keys_request(ppk: SessionKeys) -> bytes:
    """DER of the ``ReplaceSessionKeysRequest`` (``BF26``) carrying ``ppk``."""
    return tlv(
        _TAG_RSK,
        tlv(b"\x80", ppk.initial_mac_chaining_value)
        + tlv(b"\x81", ppk.s_enc)
        + tlv(b"\x82", ppk.s_mac),
    )


def store_metadata_request(
    iccid: bytes,
    service_provider_name: str,
    profile_name: str,
    *,
    icon_type: str | None = None,
    icon: bytes | None = None,
    profile_class: str | None = None,
    notification_configuration_info: Iterable[tuple[set[str], str]] = (),
    profile_owner: dict[str, bytes] | None = None,
    profile_policy_rules: set[str] | None = None,
) -> bytes:
    """DER of a ``StoreMetadataRequest`` (SGP.22 §5.5.3) from native values.

    ``iccid`` is the 10 octets of EF.ICCID (BCD, nibble-swapped);
    ``icon_type`` ``"jpg"`` / ``"png"``; ``profile_class`` ``"test"`` /
    ``"provisioning"`` / ``"operational"``; each notification configuration
    entry is (set of NotificationEvent bit names, FQDN); ``profile_owner``
    has ``mccMnc`` and optionally ``gid1`` / ``gid2``; ``profile_policy_rules``
    is a set of PprIds bit names.  Raises :class:`~rspfed.errors.EncodeError`
    if a value does not fit.
    """
    value: dict[str, object] = {
        "iccid": bytes(iccid),
        "serviceProviderName": service_provider_name,
        "profileName": profile_name,
    }
    if icon_type is not None:
        value["iconType"] = icon_type
    if icon is not None:
        value["icon"] = bytes(icon)
    if profile_class is not None:
        value["profileClass"] = profile_class
    nci = [
        {"profileManagementOperation": set(events), "notificationAddress": address}
        for events, address in notification_configuration_info
    ]
    if nci:
        value["notificationConfigurationInfo"] = nci
    if profile_owner is not None:
        value["profileOwner"] = dict(profile_owner)
    if profile_policy_rules is not None:
        value["profilePolicyRules"] = set(profile_policy_rules)
    try:
        request = rsp.StoreMetadataRequest(value)
    except (ValueError, TypeError, KeyError) as exc:
        raise EncodeError(str(exc), type_name="StoreMetadataRequest") from None
    return asn1.encode(request)


def initialise_secure_channel_signed_data(
    *,
    transaction_id: bytes,
    host_id: bytes,
    smdp_otpk: bytes,
    euicc_otpk: bytes,
    remote_op_id: int = REMOTE_OP_INSTALL_BPP,
) -> tuple[bytes, bytes]:
    """The InitialiseSecureChannelRequest data objects and the bytes ``smdpSign`` covers.

    Returns ``(data_objects, signed)``: ``data_objects`` is ``remoteOpId ||
    transactionId || controlRefTemplate || smdpOtpk`` as DER TLVs (``'82'``,
    ``'80'``, ``'A6'``, ``'5F49'``), and ``signed`` is ``data_objects ||
    '5F49' || L || euiccOtpk`` (SGP.22 §5.5.1, and as Osmocom pySim and the
    eUICC side compute it).
    """
    if not 1 <= len(transaction_id) <= 16:
        raise UsageError("transactionId must be 1 to 16 octets")
    if not 1 <= len(host_id) <= 16:
        raise UsageError("hostId must be 1 to 16 octets")
    if not 0 <= remote_op_id <= 0x7F:
        raise UsageError("remoteOpId out of range")
    crt = tlv(b"\x80", b"\x88") + tlv(b"\x81", b"\x10") + tlv(b"\x84", bytes(host_id))
    data_objects = (
        tlv(b"\x82", bytes((remote_op_id,)))
        + tlv(b"\x80", bytes(transaction_id))
        + tlv(b"\xa6", crt)
        + tlv(_TAG_OTPK, bytes(smdp_otpk))
    )
    return data_objects, data_objects + tlv(_TAG_OTPK, bytes(euicc_otpk))


def _checked_der(
    value: bytes | asn1.Asn1Value | None, cls: type[asn1.Asn1Value], what: str
) -> bytes:
    if value is None:
        raise UsageError(f"{what} is required")
    if isinstance(value, bytes | bytearray | memoryview):
        der = bytes(value)
        try:
            asn1.decode(cls, der)
        except DecodeError as exc:
            raise UsageError(f"{what} is not a valid {asn1.type_name(cls)}: {exc}") from None
        return der
    if not isinstance(value, cls):
        raise UsageError(f"{what} must be DER bytes or {asn1.type_name(cls)}")
    return asn1.encode(value)


def build_bound_profile_package(
    *,
    transaction_id: bytes,
    euicc_otpk: bytes,
    smdp_ot_key: ec.EllipticCurvePrivateKey,
    dp_pb_key: ec.EllipticCurvePrivateKey,
    eid: bytes,
    host_id: bytes,
    metadata: bytes | rsp.StoreMetadataRequest,
    profile: bytes | ProtectedProfilePackage,
    configure_isdp: bytes | rsp.ConfigureISDPRequest = DEFAULT_CONFIGURE_ISDP,
    deterministic_signature: bool = False,
) -> bytes:
    """The DER of a ``BoundProfilePackage`` (``BF36``) for one download session.

    ``transaction_id``
        the session's TransactionId.
    ``euicc_otpk``
        otPK.EUICC.ECKA from the PrepareDownloadResponse (65-octet point).
    ``smdp_ot_key``
        the SM-DP+'s one-time key pair otSK/otPK.DP.ECKA, on the same curve.
    ``dp_pb_key``
        SK.DPpb.ECDSA, which signs ``smdpSign``.
    ``eid``, ``host_id``
        the EID (16 octets) and the hostId of the control reference template
        (1 to 16 octets); both enter the session key derivation.
    ``metadata``
        the ``StoreMetadataRequest`` (DER or value); sent MAC-only in as many
        ``'88'`` segments as needed.
    ``profile``
        the unprotected profile package (bytes), encrypted under the session
        keys, or a :class:`ProtectedProfilePackage`, sent as is after a
        ``ReplaceSessionKeysRequest`` in ``secondSequenceOf87``.
    ``configure_isdp``
        the ``ConfigureISDPRequest`` (default: empty ``BF24 00``).

    Raises :class:`~rspfed.errors.UsageError` for bad arguments and
    :class:`~rspfed.errors.DecodeError` if ``euicc_otpk`` is not a point on
    the one-time key's curve.
    """
    if len(eid) != EID_SIZE:
        raise UsageError(f"EID must be {EID_SIZE} octets")
    metadata_der = _checked_der(metadata, rsp.StoreMetadataRequest, "metadata")
    configure_der = _checked_der(configure_isdp, rsp.ConfigureISDPRequest, "configure_isdp")
    content: bytes | ProtectedProfilePackage
    if isinstance(profile, bytes | bytearray | memoryview):
        content = bytes(profile)
        if not content:
            raise UsageError("empty profile package")
    elif isinstance(profile, ProtectedProfilePackage):
        content = profile
    else:
        raise UsageError("profile must be bytes or a ProtectedProfilePackage")

    curve = Curve.of_key(smdp_ot_key)
    euicc_public = ecka.decode_public_key(curve, euicc_otpk)
    smdp_otpk = ecka.encode_public_key(smdp_ot_key.public_key())
    data_objects, signed = initialise_secure_channel_signed_data(
        transaction_id=transaction_id,
        host_id=host_id,
        smdp_otpk=smdp_otpk,
        euicc_otpk=bytes(euicc_otpk),
    )
    smdp_sign = signature.sign(dp_pb_key, signed, deterministic=deterministic_signature)
    isc = tlv(_TAG_ISC, data_objects + tlv(_TAG_SIGN, smdp_sign))

    keys = derive_session_keys(ecka.ecka_dh(smdp_ot_key, euicc_public), host_id, eid)
    segments = protect_bpp_segments(keys, configure_der, metadata_der, content)
    return assemble_bound_profile_package(isc, segments)


@attrs.frozen
class BppSegments:
    """The protected segments of a BPP, in order (each a whole ``'87'``/``'88'``/``'86'`` TLV)."""

    first_sequence_of_87: tuple[bytes, ...] = attrs.field(repr=False)
    sequence_of_88: tuple[bytes, ...] = attrs.field(repr=False)
    second_sequence_of_87: tuple[bytes, ...] | None = attrs.field(repr=False)
    sequence_of_86: tuple[bytes, ...] = attrs.field(repr=False)


def protect_bpp_segments(
    keys: SessionKeys,
    configure_isdp_der: bytes,
    metadata_der: bytes,
    profile: bytes | ProtectedProfilePackage,
) -> BppSegments:
    """Protect the BPP's commands under the session ``keys`` (one BSP MAC chain).

    ``ConfigureISDPRequest`` as one encrypted ``'87'``, the
    ``StoreMetadataRequest`` MAC-only in ``'88'`` segments, then either the
    profile package encrypted in ``'86'`` segments or, for a
    :class:`ProtectedProfilePackage`, one encrypted ``'87'`` with its
    ``ReplaceSessionKeysRequest`` followed by its precomputed ``'86'`` segments.
    The DER inputs are used as given (not checked here).
    """
    enc = bsp.BspEncryptor(keys)
    first87 = (enc.protect(bsp.TAG_CONFIGURE_ISDP, configure_isdp_der),)
    seq88 = tuple(enc.protect_split(bsp.TAG_STORE_METADATA, metadata_der, encrypt=False))
    if isinstance(profile, ProtectedProfilePackage):
        rsk = enc.protect(bsp.TAG_REPLACE_SESSION_KEYS, replace_session_keys_request(profile.keys))
        return BppSegments(first87, seq88, (rsk,), profile.segments)
    if not profile:
        raise UsageError("empty profile package")
    seq86 = tuple(enc.protect_split(bsp.TAG_PROFILE_ELEMENT, bytes(profile)))
    return BppSegments(first87, seq88, None, seq86)


def assemble_bound_profile_package(
    initialise_secure_channel_request: bytes, segments: BppSegments
) -> bytes:
    """``BF36 { BF23…, A0 {'87'}, A1 {'88'…}, [A2 {'87'}], A3 {'86'…} }`` from its parts."""
    parts = [
        initialise_secure_channel_request,
        tlv(b"\xa0", b"".join(segments.first_sequence_of_87)),
        tlv(b"\xa1", b"".join(segments.sequence_of_88)),
    ]
    if segments.second_sequence_of_87 is not None:
        parts.append(tlv(b"\xa2", b"".join(segments.second_sequence_of_87)))
    parts.append(tlv(b"\xa3", b"".join(segments.sequence_of_86)))
    return tlv(_TAG_BPP, b"".join(parts))
