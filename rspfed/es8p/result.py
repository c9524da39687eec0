"""The signed ``ProfileInstallationResult`` (SGP.22 §5.7.6; ``BF37``).

The eUICC signs ``profileInstallationResultData`` (the ``BF27`` TLV, tag and
length included) with SK.EUICC.ECDSA; ``euiccSignPIR`` is the TR-03111 plain
signature ``r || s``.  The SM-DP+ (ES9+.HandleNotification) verifies it over
the ``BF27`` bytes *as received* with PK.EUICC.ECDSA (Osmocom's SM-DP+
verifies the same bytes).
"""

from __future__ import annotations

import functools

import attrs
from asn1crypto import core
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.crypto import signature
from rspfed.errors import EncodeError, ProtocolError
from rspfed.es8p._tlv import tlv
from rspfed.es8p.codes import BppCommandId, BppError, ErrorReason

__all__ = [
    "InstallationFailure",
    "InstallationSuccess",
    "build_profile_installation_result",
    "profile_installation_result_data_der",
    "sign_profile_installation_result",
    "verify_profile_installation_result",
]


@attrs.frozen
class InstallationSuccess:
    """``successResult``: the ISD-P's AID and the SIMA response (EUICCResponse TLVs)."""

    aid: bytes
    sima_response: bytes = b""


@attrs.frozen
class InstallationFailure:
    """``errorResult``: the failing BPP command and the reason."""

    bpp_command_id: BppCommandId
    error_reason: ErrorReason
    sima_response: bytes | None = None

    @classmethod
    def from_error(cls, error: BppError, sima_response: bytes | None = None) -> InstallationFailure:
        """The failure a :class:`~rspfed.es8p.codes.BppError` reports."""
        return cls(error.bpp_command_id, error.error_reason, sima_response)


def build_profile_installation_result(
    *,
    transaction_id: bytes,
    notification_metadata: rsp.NotificationMetadata,
    final_result: InstallationSuccess | InstallationFailure,
    euicc_key: ec.EllipticCurvePrivateKey,
    smdp_oid: str | None = None,
    deterministic_signature: bool = False,
) -> bytes:
    """DER of the signed ``ProfileInstallationResult`` (``BF37``).

    ``notification_metadata`` is the install notification's
    ``NotificationMetadata`` (sequence number, ``notificationInstall``,
    address, ICCID); ``smdp_oid`` the SM-DP+ OID from CERT.DPpb.ECDSA.
    Raises :class:`~rspfed.errors.EncodeError` if a value does not fit.
    """
    if isinstance(final_result, InstallationSuccess):
        chosen = rsp.ProfileInstallationResultData_finalResult(
            name="successResult",
            value={"aid": bytes(final_result.aid), "simaResponse": final_result.sima_response},
        )
    else:
        error: dict[str, object] = {
            "bppCommandId": int(final_result.bpp_command_id),
            "errorReason": int(final_result.error_reason),
        }
        if final_result.sima_response is not None:
            error["simaResponse"] = final_result.sima_response
        chosen = rsp.ProfileInstallationResultData_finalResult(name="errorResult", value=error)
    fields: dict[str, object] = {
        "transactionId": bytes(transaction_id),
        "notificationMetadata": notification_metadata,
        "finalResult": chosen,
    }
    if smdp_oid is not None:
        fields["smdpOid"] = smdp_oid
    try:
        data = rsp.ProfileInstallationResultData(fields)
    except (ValueError, TypeError, KeyError) as exc:
        raise EncodeError(str(exc), type_name="ProfileInstallationResultData") from None
    data_der = asn1.encode(data)
    der = sign_profile_installation_result(
        data_der, euicc_key, deterministic_signature=deterministic_signature
    )
    asn1.decode(rsp.ProfileInstallationResult, der)  # our own output must be strict DER
    return der


def sign_profile_installation_result(
    data_der: bytes,
    euicc_key: ec.EllipticCurvePrivateKey,
    *,
    deterministic_signature: bool = False,
) -> bytes:
    """DER of ``ProfileInstallationResult`` (``BF37``) signing the given ``BF27`` DER.

    ``data_der`` is a complete DER ``profileInstallationResultData`` (from
    :func:`profile_installation_result_data_der`); it is signed and embedded as is.
    """
    sign = signature.sign(euicc_key, data_der, deterministic=deterministic_signature)
    # BF37 { BF27 … , 5F37 40 sig }: assembled from the signed bytes so they stay exact.
    return tlv(b"\xbf\x37", data_der + tlv(b"\x5f\x37", sign))


def _integer(n: int) -> bytes:
    """DER INTEGER contents (minimal two's complement)."""
    return n.to_bytes(((n if n >= 0 else ~n).bit_length() + 8) // 8, "big", signed=True)


@functools.lru_cache(maxsize=64)
def _oid(dotted: str) -> bytes:
    try:
        return core.ObjectIdentifier(dotted).dump()
    except (ValueError, TypeError) as exc:
        raise EncodeError(str(exc), type_name="smdpOid") from None


def _sized(value: bytes, low: int, high: int, what: str) -> bytes:
    if not low <= len(value) <= high:
        raise EncodeError(f"{what} must be {low} to {high} octets", type_name=what)
    return value


def profile_installation_result_data_der(
    *,
    transaction_id: bytes,
    seq_number: int,
    notification_address: str,
    final_result: InstallationSuccess | InstallationFailure,
    iccid: bytes | None = None,
    smdp_oid: str | None = None,
) -> bytes:
    """DER of ``profileInstallationResultData`` (``BF27``) built from its parts.

    The ``notificationMetadata`` is the install notification's (``seqNumber``,
    ``notificationInstall``, ``notificationAddress``, ``iccid``).  Equal to
    :func:`rspfed.asn1.encode` of the same ``rsp.ProfileInstallationResultData``
    (tested), without building asn1crypto values (the eUICC's path).  Raises
    :class:`~rspfed.errors.EncodeError` if a value does not fit its type.
    """
    try:
        address = notification_address.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError("not UTF-8", type_name="notificationAddress") from None
    # NotificationMetadata [47]: seqNumber [0], profileManagementOperation [1] (BIT STRING,
    # notificationInstall(0) only: one unused-bits octet 07, then 80), address, iccid [APP 26]
    meta = tlv(b"\x80", _integer(seq_number)) + b"\x81\x02\x07\x80" + tlv(b"\x0c", address)
    if iccid is not None:
        meta += tlv(b"\x5a", _sized(bytes(iccid), 10, 10, "Iccid"))
    body = tlv(b"\x80", _sized(bytes(transaction_id), 1, 16, "TransactionId"))
    body += tlv(b"\xbf\x2f", meta)
    if smdp_oid is not None:
        body += _oid(smdp_oid)
    if isinstance(final_result, InstallationSuccess):
        # successResult [0] IMPLICIT SEQUENCE { aid [APPLICATION 15], simaResponse OCTET STRING }
        chosen = tlv(
            b"\xa0",
            tlv(b"\x4f", _sized(bytes(final_result.aid), 5, 16, "aid"))
            + tlv(b"\x04", bytes(final_result.sima_response)),
        )
    else:
        # errorResult [1] IMPLICIT SEQUENCE { bppCommandId [0], errorReason [1], simaResponse [2] }
        inner = tlv(b"\x80", _integer(int(final_result.bpp_command_id)))
        inner += tlv(b"\x81", _integer(int(final_result.error_reason)))
        if final_result.sima_response is not None:
            inner += tlv(b"\x82", bytes(final_result.sima_response))
        chosen = tlv(b"\xa1", inner)
    # finalResult [2] CHOICE: explicit
    return tlv(b"\xbf\x27", body + tlv(b"\xa2", chosen))


def verify_profile_installation_result(
    der: bytes,
    euicc_public_key: ec.EllipticCurvePublicKey,
    *,
    transaction_id: bytes | None = None,
) -> rsp.ProfileInstallationResult:
    """Decode ``der`` strictly and verify ``euiccSignPIR`` over the received ``BF27``.

    Raises :class:`~rspfed.errors.DecodeError` (malformed),
    :class:`~rspfed.errors.SignatureError` (bad signature) or
    :class:`~rspfed.errors.ProtocolError` (``transaction_id`` given and different).
    """
    result = asn1.decode(rsp.ProfileInstallationResult, bytes(der))
    data = result["profileInstallationResultData"]
    signature.verify(
        euicc_public_key, asn1.received_der(data), bytes(result["euiccSignPIR"].native)
    )
    if transaction_id is not None and bytes(data["transactionId"].native) != bytes(transaction_id):
        raise ProtocolError("ProfileInstallationResult is for another transaction")
    return result
