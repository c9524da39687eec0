"""The signed ``ProfileInstallationResult`` (SGP.22 §5.7.6; ``BF37``).

The eUICC signs ``profileInstallationResultData`` (the ``BF27`` TLV, tag and
length included) with SK.EUICC.ECDSA; ``euiccSignPIR`` is the TR-03111 plain
signature ``r || s``.  The SM-DP+ (ES9+.HandleNotification) verifies it over
the ``BF27`` bytes *as received* with PK.EUICC.ECDSA (Osmocom's SM-DP+
verifies the same bytes).
"""

from __future__ import annotations

import attrs
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
    sign = signature.sign(euicc_key, data_der, deterministic=deterministic_signature)
    # BF37 { BF27 … , 5F37 40 sig }: assembled from the signed bytes so they stay exact.
    der = tlv(b"\xbf\x37", data_der + tlv(b"\x5f\x37", sign))
    asn1.decode(rsp.ProfileInstallationResult, der)  # our own output must be strict DER
    return der


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
