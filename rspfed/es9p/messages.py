"""ES9+ messages (SGP.22 §5.6, JSON binding §6.5) as ``attrs`` value types.

Each message is a frozen class whose fields carry their JSON name and
encoding in ``attrs`` metadata: ``b64`` (an ASN.1 DER value, base64 in
JSON), ``hex`` (the ``transactionId``: an OCTET STRING written as hex
digits) or ``str``.  :mod:`rspfed.es9p.codec` turns them into and out of the
JSON bodies, so the SM-DP+ server and the LPA's client spell every field one
way, exactly as SGP.22 v2.2.2 does.

Binary fields hold the complete DER of the SGP.22 type named in the field
doc (tag included), for example ``server_signed1`` is the DER of
``ServerSigned1``; they are checked with :func:`rspfed.asn1.decode` by whoever
uses them, not here.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final

import attrs

__all__ = [
    "ADMIN_PROTOCOL",
    "FUNCTIONS",
    "PATH_PREFIX",
    "AuthenticateClientRequest",
    "AuthenticateClientResponse",
    "CancelSessionRequest",
    "CancelSessionResponse",
    "Es9Function",
    "GetBoundProfilePackageRequest",
    "GetBoundProfilePackageResponse",
    "HandleNotificationRequest",
    "InitiateAuthenticationRequest",
    "InitiateAuthenticationResponse",
    "Message",
]

#: ``X-Admin-Protocol`` header value sent with every ES9+ request and response.
ADMIN_PROTOCOL: Final = "gsma/rsp/v2.2.0"
#: URL path prefix of the ES9+ functions (SGP.22 §6.5.2).
PATH_PREFIX: Final = "/gsma/rsp2/es9plus/"


def _b64(name: str) -> Any:
    return attrs.field(metadata={"json": name, "kind": "b64"}, repr=False)


def _hex(name: str) -> Any:
    return attrs.field(metadata={"json": name, "kind": "hex"})


def _str(name: str) -> Any:
    return attrs.field(metadata={"json": name, "kind": "str"})


class Message:
    """Base of the ES9+ message classes (``FUNCTION`` names the ES9+ function)."""

    FUNCTION: ClassVar[str]


@attrs.frozen
class InitiateAuthenticationRequest(Message):
    """ES9+.InitiateAuthentication request (SGP.22 §5.6.1).

    ``euicc_challenge`` is the 16 octet challenge, ``euicc_info1`` the DER of
    ``EUICCInfo1``; ``smdp_address`` the address the LPA used.
    """

    FUNCTION: ClassVar[str] = "initiateAuthentication"
    euicc_challenge: bytes = _b64("euiccChallenge")
    euicc_info1: bytes = _b64("euiccInfo1")
    smdp_address: str = _str("smdpAddress")


@attrs.frozen
class InitiateAuthenticationResponse(Message):
    """ES9+.InitiateAuthentication response: DER of ``ServerSigned1``, its
    signature (DER ``[APPLICATION 55]``, tag ``5F37``), the CI key id to use and
    ``CERT.DPauth.ECDSA``."""

    FUNCTION: ClassVar[str] = "initiateAuthentication"
    transaction_id: bytes = _hex("transactionId")
    server_signed1: bytes = _b64("serverSigned1")
    server_signature1: bytes = _b64("serverSignature1")
    euicc_ci_pkid_to_be_used: bytes = _b64("euiccCiPKIdToBeUsed")
    server_certificate: bytes = _b64("serverCertificate")


@attrs.frozen
class AuthenticateClientRequest(Message):
    """ES9+.AuthenticateClient request: DER of ``AuthenticateServerResponse`` (SGP.22 §5.6.3)."""

    FUNCTION: ClassVar[str] = "authenticateClient"
    transaction_id: bytes = _hex("transactionId")
    authenticate_server_response: bytes = _b64("authenticateServerResponse")


@attrs.frozen
class AuthenticateClientResponse(Message):
    """ES9+.AuthenticateClient response: ``StoreMetadataRequest`` (profileMetadata),
    ``SmdpSigned2``, its signature (``5F37``) and ``CERT.DPpb.ECDSA``."""

    FUNCTION: ClassVar[str] = "authenticateClient"
    transaction_id: bytes = _hex("transactionId")
    profile_metadata: bytes = _b64("profileMetadata")
    smdp_signed2: bytes = _b64("smdpSigned2")
    smdp_signature2: bytes = _b64("smdpSignature2")
    smdp_certificate: bytes = _b64("smdpCertificate")


@attrs.frozen
class GetBoundProfilePackageRequest(Message):
    """ES9+.GetBoundProfilePackage request: DER of ``PrepareDownloadResponse`` (SGP.22 §5.6.2)."""

    FUNCTION: ClassVar[str] = "getBoundProfilePackage"
    transaction_id: bytes = _hex("transactionId")
    prepare_download_response: bytes = _b64("prepareDownloadResponse")


@attrs.frozen
class GetBoundProfilePackageResponse(Message):
    """ES9+.GetBoundProfilePackage response: DER of ``BoundProfilePackage``."""

    FUNCTION: ClassVar[str] = "getBoundProfilePackage"
    transaction_id: bytes = _hex("transactionId")
    bound_profile_package: bytes = _b64("boundProfilePackage")


@attrs.frozen
class HandleNotificationRequest(Message):
    """ES9+.HandleNotification request: DER of ``PendingNotification`` (SGP.22 §5.6.4).

    The answer is HTTP 204 with no body.
    """

    FUNCTION: ClassVar[str] = "handleNotification"
    pending_notification: bytes = _b64("pendingNotification")


@attrs.frozen
class CancelSessionRequest(Message):
    """ES9+.CancelSession request: DER of ``CancelSessionResponse`` (the eUICC's, SGP.22 §5.6.5)."""

    FUNCTION: ClassVar[str] = "cancelSession"
    transaction_id: bytes = _hex("transactionId")
    cancel_session_response: bytes = _b64("cancelSessionResponse")


@attrs.frozen
class CancelSessionResponse(Message):
    """ES9+.CancelSession response: the header only."""

    FUNCTION: ClassVar[str] = "cancelSession"


@attrs.frozen
class Es9Function:
    """One ES9+ function: its name, URL path and message classes
    (``response`` is ``None`` for HandleNotification, answered with 204)."""

    name: str
    request: type[Message]
    response: type[Message] | None

    @property
    def path(self) -> str:
        """The URL path, e.g. ``/gsma/rsp2/es9plus/initiateAuthentication``."""
        return PATH_PREFIX + self.name


#: The ES9+ functions by name.
FUNCTIONS: Final[dict[str, Es9Function]] = {
    f.name: f
    for f in (
        Es9Function(
            "initiateAuthentication",
            InitiateAuthenticationRequest,
            InitiateAuthenticationResponse,
        ),
        Es9Function("authenticateClient", AuthenticateClientRequest, AuthenticateClientResponse),
        Es9Function(
            "getBoundProfilePackage",
            GetBoundProfilePackageRequest,
            GetBoundProfilePackageResponse,
        ),
        Es9Function("handleNotification", HandleNotificationRequest, None),
        Es9Function("cancelSession", CancelSessionRequest, CancelSessionResponse),
    )
}
