"""ES2+ messages (Operator ↔ SM-DP+, SGP.22 §5.3, JSON binding §6.5.2) as ``attrs`` value types.

Fields carry their JSON name and kind in ``attrs`` metadata, exactly as
:mod:`rspfed.es9p.messages` does, so :mod:`rspfed.es9p.codec` encodes and
decodes them.  Every ES2+ request also carries the request ``header``
(:class:`RequestHeader`, SGP.22 §6.5.1.3); :mod:`rspfed.es2p.codec` adds and
checks it.

Identifiers are JSON strings: the ICCID as 19 or 20 digits (a 20th ``F`` pad
allowed), the EID as 32 digits, the matchingId, profile type and
confirmation code as given.  ``timestamp`` is W3C ``YYYY-MM-DDThh:mm:ssTZD``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import attrs

__all__ = [
    "FINAL_PROFILE_STATUS_INDICATORS",
    "FUNCTIONS",
    "NOTIFICATION_POINTS",
    "PATH_PREFIX",
    "CancelOrderRequest",
    "CancelOrderResponse",
    "ConfirmOrderRequest",
    "ConfirmOrderResponse",
    "DownloadOrderRequest",
    "DownloadOrderResponse",
    "Es2Function",
    "Es2Message",
    "HandleDownloadProgressInfoRequest",
    "HeaderOnlyResponse",
    "NotificationPointStatus",
    "ReleaseProfileRequest",
    "ReleaseProfileResponse",
    "RequestHeader",
]

#: URL path prefix of the ES2+ functions (SGP.22 §6.5.2).
PATH_PREFIX: Final = "/gsma/rsp2/es2plus/"

#: ``finalProfileStatusIndicator`` values of CancelOrder (SGP.22 §5.3.3).
FINAL_PROFILE_STATUS_INDICATORS: Final = ("Available", "Unavailable")

#: ``notificationPointId`` check points of HandleDownloadProgressInfo (SGP.22 §5.3.5);
#: other values report the eUICC's notifications (install, enable, disable, delete).
NOTIFICATION_POINTS: Final[dict[int, str]] = {
    1: "Eligibility and Retry Limit Check",
    2: "ConfirmationFailure",
    3: "BPP Download",
    4: "BPP Installation",
}


class Es2Message:
    """Base of the ES2+ message classes (``FUNCTION`` names the ES2+ function)."""

    FUNCTION: ClassVar[str]
    __attrs_attrs__: ClassVar[Any]  # every subclass is an attrs class


@attrs.frozen
class RequestHeader:
    """The ``header`` of every ES2+ request (SGP.22 §6.5.1.3).

    ``function_requester_identifier`` names the operator;
    ``function_call_identifier`` identifies this call (unique per requester).
    """

    function_requester_identifier: str = attrs.field(
        metadata={"json": "functionRequesterIdentifier", "kind": "str"}
    )
    function_call_identifier: str = attrs.field(
        metadata={"json": "functionCallIdentifier", "kind": "str"}
    )


@attrs.frozen
class DownloadOrderRequest(Es2Message):
    """ES2+.DownloadOrder (SGP.22 §5.3.1): reserve a profile, by ICCID or by profile type.

    At least one of ``iccid`` and ``profile_type`` is needed (the SM-DP+
    checks); ``eid`` binds the order to one eUICC.
    """

    FUNCTION: ClassVar[str] = "downloadOrder"
    eid: str | None = attrs.field(default=None, metadata={"json": "eid", "kind": "str"})
    iccid: str | None = attrs.field(default=None, metadata={"json": "iccid", "kind": "str"})
    profile_type: str | None = attrs.field(
        default=None, metadata={"json": "profileType", "kind": "str"}
    )


@attrs.frozen
class DownloadOrderResponse(Es2Message):
    """ES2+.DownloadOrder response: the ICCID of the reserved profile."""

    FUNCTION: ClassVar[str] = "downloadOrder"
    iccid: str = attrs.field(metadata={"json": "iccid", "kind": "str"})


@attrs.frozen
class ConfirmOrderRequest(Es2Message):
    """ES2+.ConfirmOrder (SGP.22 §5.3.2): confirm a reserved profile for download.

    ``matching_id`` empty or absent lets the SM-DP+ generate one;
    ``confirmation_code`` is the code the end user must type (the SM-DP+ keeps
    its hash); ``release_flag`` false keeps the profile until ReleaseProfile.
    """

    FUNCTION: ClassVar[str] = "confirmOrder"
    iccid: str = attrs.field(metadata={"json": "iccid", "kind": "str"})
    release_flag: bool = attrs.field(metadata={"json": "releaseFlag", "kind": "bool"})
    eid: str | None = attrs.field(default=None, metadata={"json": "eid", "kind": "str"})
    matching_id: str | None = attrs.field(
        default=None, metadata={"json": "matchingId", "kind": "str"}
    )
    confirmation_code: str | None = attrs.field(
        default=None, metadata={"json": "confirmationCode", "kind": "str"}, repr=False
    )
    smds_address: str | None = attrs.field(
        default=None, metadata={"json": "smdsAddress", "kind": "str"}
    )


@attrs.frozen
class ConfirmOrderResponse(Es2Message):
    """ES2+.ConfirmOrder response: the matchingId (and the EID and SM-DP+ address if known).

    :attr:`activation_code` is the SGP.22 §4.1 activation code
    ``LPA:1$<address>$<matchingId>`` when the address is known.
    """

    FUNCTION: ClassVar[str] = "confirmOrder"
    matching_id: str = attrs.field(metadata={"json": "matchingId", "kind": "str"})
    eid: str | None = attrs.field(default=None, metadata={"json": "eid", "kind": "str"})
    smdp_address: str | None = attrs.field(
        default=None, metadata={"json": "smdpAddress", "kind": "str"}
    )

    @property
    def activation_code(self) -> str | None:
        """``LPA:1$address$matchingId``, or ``None`` without an SM-DP+ address.

        The wire answer does not say whether a confirmation code is needed; the
        operator knows (it sent one): see :meth:`activation_code_for`.
        """
        return self.activation_code_for(confirmation_code_required=False)

    def activation_code_for(self, *, confirmation_code_required: bool) -> str | None:
        """The activation code, ending ``$$1`` when a confirmation code is required
        (SGP.22 §4.1: empty SM-DP+ OID, then the flag)."""
        if not self.smdp_address:
            return None
        text = f"LPA:1${self.smdp_address}${self.matching_id}"
        return text + "$$1" if confirmation_code_required else text


@attrs.frozen
class CancelOrderRequest(Es2Message):
    """ES2+.CancelOrder (SGP.22 §5.3.3): cancel a pending order.

    ``final_profile_status_indicator`` is ``Available`` (the profile may be
    reused) or ``Unavailable``.
    """

    FUNCTION: ClassVar[str] = "cancelOrder"
    iccid: str = attrs.field(metadata={"json": "iccid", "kind": "str"})
    final_profile_status_indicator: str = attrs.field(
        metadata={"json": "finalProfileStatusIndicator", "kind": "str"}
    )
    eid: str | None = attrs.field(default=None, metadata={"json": "eid", "kind": "str"})
    matching_id: str | None = attrs.field(
        default=None, metadata={"json": "matchingId", "kind": "str"}
    )


@attrs.frozen
class ReleaseProfileRequest(Es2Message):
    """ES2+.ReleaseProfile (SGP.22 §5.3.4): release a profile confirmed with
    ``releaseFlag`` false."""

    FUNCTION: ClassVar[str] = "releaseProfile"
    iccid: str = attrs.field(metadata={"json": "iccid", "kind": "str"})


@attrs.frozen
class HeaderOnlyResponse(Es2Message):
    """A response carrying only the header (CancelOrder, ReleaseProfile)."""

    FUNCTION: ClassVar[str] = ""


@attrs.frozen
class CancelOrderResponse(HeaderOnlyResponse):
    """ES2+.CancelOrder response: the header only."""

    FUNCTION: ClassVar[str] = "cancelOrder"


@attrs.frozen
class ReleaseProfileResponse(HeaderOnlyResponse):
    """ES2+.ReleaseProfile response: the header only."""

    FUNCTION: ClassVar[str] = "releaseProfile"


@attrs.frozen
class NotificationPointStatus:
    """``notificationPointStatus``: the same shape as ``functionExecutionStatus``.

    ``status`` is ``Executed-Success`` or ``Failed`` (or another
    ``functionExecutionStatus`` value); on failure ``subject_code`` and
    ``reason_code`` carry the SGP.22 codes.
    """

    status: str
    subject_code: str | None = None
    reason_code: str | None = None
    subject_identifier: str | None = None
    message: str | None = None


@attrs.frozen
class HandleDownloadProgressInfoRequest(Es2Message):
    """ES2+.HandleDownloadProgressInfo (SGP.22 §5.3.5), sent by the SM-DP+ to the operator.

    ``notification_point_status`` is a JSON object (see
    :class:`NotificationPointStatus`), coded by :mod:`rspfed.es2p.codec`;
    ``result_data`` is the DER of the eUICC's ``ProfileInstallationResult``
    (or its notification), base64 in JSON.  The operator answers HTTP 204.
    """

    FUNCTION: ClassVar[str] = "handleDownloadProgressInfo"
    iccid: str = attrs.field(metadata={"json": "iccid", "kind": "str"})
    profile_type: str = attrs.field(metadata={"json": "profileType", "kind": "str"})
    timestamp: str = attrs.field(metadata={"json": "timestamp", "kind": "str"})
    notification_point_id: int = attrs.field(
        metadata={"json": "notificationPointId", "kind": "int"}
    )
    notification_point_status: NotificationPointStatus = attrs.field()
    eid: str | None = attrs.field(default=None, metadata={"json": "eid", "kind": "str"})
    result_data: bytes | None = attrs.field(
        default=None, metadata={"json": "resultData", "kind": "b64"}, repr=False
    )


@attrs.frozen
class Es2Function:
    """One ES2+ function: name, URL path, request and response classes
    (``response`` ``None``: answered with HTTP 204, no body)."""

    name: str
    request: type[Es2Message]
    response: type[Es2Message] | None

    @property
    def path(self) -> str:
        """The URL path, e.g. ``/gsma/rsp2/es2plus/downloadOrder``."""
        return PATH_PREFIX + self.name


#: The ES2+ functions by name (the four the SM-DP+ serves, and the callback).
FUNCTIONS: Final[dict[str, Es2Function]] = {
    f.name: f
    for f in (
        Es2Function("downloadOrder", DownloadOrderRequest, DownloadOrderResponse),
        Es2Function("confirmOrder", ConfirmOrderRequest, ConfirmOrderResponse),
        Es2Function("cancelOrder", CancelOrderRequest, CancelOrderResponse),
        Es2Function("releaseProfile", ReleaseProfileRequest, ReleaseProfileResponse),
        Es2Function("handleDownloadProgressInfo", HandleDownloadProgressInfoRequest, None),
    )
}
