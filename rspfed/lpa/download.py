"""Profile download by the LPA (SGP.22 §3.1.3), the eUICC behind :class:`~rspfed.lpa.es10.Es10`.

The steps, each announced to the ``progress`` callback as a :class:`DownloadStep`:

1. ES10b GetEUICCInfo1 and GetEUICCChallenge;
2. ES9+ InitiateAuthentication (the LPA checks that ``serverSigned1`` names
   the address it called and, when the activation code names an SM-DP+ OID,
   that CERT.DPauth carries it);
3. ES10b AuthenticateServer with ``ctxParams1`` (matchingId, deviceInfo);
4. ES9+ AuthenticateClient;
5. user consent on the profile metadata (``consent`` callback) and, when
   ``smdpSigned2.ccRequiredFlag`` is set, the confirmation code
   (``confirmation_code`` or the ``ask_confirmation_code`` callback);
   ``hashCc = SHA256(SHA256(code) || transactionId)``;
6. ES10b PrepareDownload, ES9+ GetBoundProfilePackage;
7. ES10b LoadBoundProfilePackage, block by block
   (:func:`rspfed.es8p.segment_bpp_for_es10b`), up to the
   ProfileInstallationResult;
8. ES9+ HandleNotification with that result and ES10b
   RemoveNotificationFromList.

Failures.  Once the eUICC holds a session (after AuthenticateServer), any
failure cancels it: ES10b CancelSession with the reason
(:class:`CancelSessionReason`: ``endUserRejection`` when the user says no,
``postponed`` when the user postpones or gives no confirmation code,
``timeout`` for a lost link, ``loadBppExecutionError`` when loading the
package fails, ``undefinedReason`` otherwise) and ES9+
CancelSession with the eUICC's signed answer (both best effort), then the
specific error is raised: the SM-DP+'s
:class:`~rspfed.errors.FunctionExecutionError` subclass, the eUICC's refusal
mapped to :class:`~rspfed.errors.UntrustedCertificateError`,
:class:`~rspfed.errors.SignatureError`, ... (see :data:`AUTHENTICATE_ERRORS`),
:class:`~rspfed.errors.PolicyError` for a refused consent,
:class:`~rspfed.errors.TransportError` for a lost link.  When the eUICC
itself refuses AuthenticateServer or PrepareDownload its error answer is
passed on to the SM-DP+ (AuthenticateClient / GetBoundProfilePackage), as
SGP.22 does, so that the server closes its session too.

Retry after a cut link (SGP.22 §3.1.3.2 / §2.5.4 "re-use of otPK"): when
ES9+.GetBoundProfilePackage fails at the transport level, the eUICC session
is *not* cancelled (the eUICC keeps its one-time key) and the download starts
again from GetEUICCChallenge with the same matchingId, up to ``retries``
times.  The SM-DP+ names the key it bound the package to in
``smdpSigned2.bppEuiccOtpk``, the eUICC reuses it and the server sends the
same bound package.

Without an activation code the eUICC's default SM-DP+ address (ES10a
GetEuiccConfiguredAddresses) is used and ``ctxParams1`` carries no matchingId.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import attrs
from cryptography import x509

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.asn1.bertlv import encode_tlv
from rspfed.errors import (
    CertificateRoleError,
    DecodeError,
    EncodeError,
    IntegrityError,
    PolicyError,
    ProtocolError,
    RspfedError,
    SignatureError,
    StateError,
    TransportError,
    UntrustedCertificateError,
    UsageError,
)
from rspfed.es8p import segment_bpp_for_es10b
from rspfed.es9p import (
    AuthenticateClientRequest,
    CancelSessionRequest,
    GetBoundProfilePackageRequest,
    HandleNotificationRequest,
    InitiateAuthenticationRequest,
)
from rspfed.lpa import _es10x
from rspfed.lpa.activation import ActivationCode
from rspfed.lpa.es9 import Es9, Es9Settings
from rspfed.lpa.es10 import Es10
from rspfed.lpa.notifications import Delivery, deliver, notification_from_der
from rspfed.saip.identifiers import decode_iccid

__all__ = [
    "AUTHENTICATE_ERRORS",
    "PREPARE_ERRORS",
    "CancelSessionReason",
    "Consent",
    "DeviceInfo",
    "DownloadResult",
    "DownloadStep",
    "ProfileMetadata",
    "download",
]


class DownloadStep(enum.Enum):
    """The steps of a download, as told to the ``progress`` callback."""

    GET_EUICC_INFO = "GetEUICCInfo1 + GetEUICCChallenge"
    INITIATE_AUTHENTICATION = "ES9+ InitiateAuthentication"
    AUTHENTICATE_SERVER = "ES10b AuthenticateServer"
    AUTHENTICATE_CLIENT = "ES9+ AuthenticateClient"
    USER_CONSENT = "user consent"
    CONFIRMATION_CODE = "confirmation code"
    PREPARE_DOWNLOAD = "ES10b PrepareDownload"
    GET_BOUND_PROFILE_PACKAGE = "ES9+ GetBoundProfilePackage"
    LOAD_BOUND_PROFILE_PACKAGE = "ES10b LoadBoundProfilePackage"
    HANDLE_NOTIFICATION = "ES9+ HandleNotification"
    RETRY = "retry after a lost link"
    CANCEL_SESSION = "CancelSession"
    DONE = "done"


class CancelSessionReason(enum.IntEnum):
    """``CancelSessionReason`` (SGP.22 §5.7.14; values 4, 5 and 127 from v2.3)."""

    endUserRejection = 0
    postponed = 1
    timeout = 2
    pprNotAllowed = 3
    metadataMismatch = 4
    loadBppExecutionError = 5
    undefinedReason = 127


class Consent(enum.Enum):
    """The user's answer to "download this profile?"."""

    ACCEPT = "accept"
    REJECT = "reject"
    POSTPONE = "postpone"


@attrs.frozen
class DeviceInfo:
    """``DeviceInfo`` of ``ctxParams1``: TAC (4 octets, SGP.22 §5.7.13),
    capabilities (``DeviceCapabilities`` member name → 3-octet release), IMEI."""

    tac: bytes = bytes.fromhex("35290611")
    capabilities: tuple[tuple[str, bytes], ...] = (
        ("gsmSupportedRelease", b"\x0f\x00\x00"),
        ("utranSupportedRelease", b"\x0f\x00\x00"),
        ("eutranSupportedRelease", b"\x0f\x00\x00"),
    )
    imei: bytes | None = None

    def to_asn1(self) -> dict[str, Any]:
        """The ``DeviceInfo`` value for :mod:`rspfed.asn1.rsp`."""
        value: dict[str, Any] = {"tac": self.tac, "deviceCapabilities": dict(self.capabilities)}
        if self.imei is not None:
            value["imei"] = self.imei
        return value


@attrs.frozen
class ProfileMetadata:
    """What the user is asked to accept (from ``StoreMetadataRequest``; the icon is ignored)."""

    iccid: str
    service_provider_name: str
    profile_name: str
    profile_class: str
    profile_policy_rules: frozenset[str] = frozenset()

    @classmethod
    def from_der(cls, der: bytes) -> ProfileMetadata:
        """Decode the DER of a ``StoreMetadataRequest`` (:class:`DecodeError` if malformed)."""
        native = asn1.decode(rsp.StoreMetadataRequest, der).native
        pclass = native.get("profileClass")
        return cls(
            iccid=decode_iccid(bytes(native["iccid"])),
            service_provider_name=native["serviceProviderName"],
            profile_name=native["profileName"],
            profile_class=str(pclass) if pclass is not None else "operational",
            profile_policy_rules=frozenset(native.get("profilePolicyRules") or ()),
        )


@attrs.frozen
class DownloadResult:
    """A finished download.

    ``timings`` (seconds): ``total``, ``euicc`` (inside ES10 calls), ``server``
    (inside ES9+ calls, network included), ``lpa`` (the rest).
    ``notification`` tells whether the installation result was delivered
    (and removed from the eUICC); ``attempts`` counts sessions (2 after one retry).
    """

    iccid: str
    isdp_aid: bytes
    metadata: ProfileMetadata
    smdp_address: str
    transaction_id: bytes
    attempts: int
    notification: Delivery | None
    timings: dict[str, float]


#: eUICC ``authenticateErrorCode`` → the error the LPA raises.
AUTHENTICATE_ERRORS: Final[dict[int, tuple[type[RspfedError], str]]] = {
    1: (UntrustedCertificateError, "invalidCertificate: the eUICC refused CERT.DPauth"),
    2: (SignatureError, "invalidSignature: serverSignature1 does not verify"),
    3: (ProtocolError, "unsupportedCurve"),
    4: (ProtocolError, "noSessionContext"),
    5: (CertificateRoleError, "invalidOid: the SM-DP+ OID does not match"),
    6: (ProtocolError, "euiccChallengeMismatch"),
    7: (UntrustedCertificateError, "ciPKUnknown: the eUICC has no certificate under that CI"),
    127: (ProtocolError, "undefinedError"),
}

#: eUICC ``downloadErrorCode`` → the error the LPA raises.
PREPARE_ERRORS: Final[dict[int, tuple[type[RspfedError], str]]] = {
    1: (UntrustedCertificateError, "invalidCertificate: the eUICC refused CERT.DPpb"),
    2: (SignatureError, "invalidSignature: smdpSignature2 does not verify"),
    3: (ProtocolError, "unsupportedCurve"),
    4: (ProtocolError, "noSessionContext"),
    5: (ProtocolError, "invalidTransactionId"),
    127: (ProtocolError, "undefinedError"),
}

_PIR_ERRORS: Final[dict[str, type[RspfedError]]] = {
    "invalidSignature": SignatureError,
    "scp03tSecurityError": IntegrityError,
    "installFailedDueToIccidAlreadyExistsOnEuicc": StateError,
    "installFailedDueToInsufficientMemoryForProfile": PolicyError,
    "pprNotAllowed": PolicyError,
}

ConsentCallback = Callable[[ProfileMetadata], "bool | Consent | Awaitable[bool | Consent]"]
CodeCallback = Callable[[ProfileMetadata], "str | Awaitable[str | None] | None"]
ProgressCallback = Callable[[DownloadStep], None]


def _code_error(
    table: dict[int, tuple[type[RspfedError], str]], code: Any, what: str
) -> RspfedError:
    number = code if isinstance(code, int) else None
    if number is None:
        names = {text.split(":")[0]: n for n, (_, text) in table.items()}
        number = names.get(str(code), 127)
    cls, text = table.get(number, (ProtocolError, f"error {code}"))
    return cls(f"eUICC {what}: {text}")


class _Cancel(Exception):
    """Internal: a failure after the eUICC session exists (reason + the error to raise)."""

    def __init__(self, reason: CancelSessionReason, error: RspfedError) -> None:
        super().__init__(str(error))
        self.reason = reason
        self.error = error


class _LinkCut(Exception):
    """Internal: GetBoundProfilePackage lost its link (retry may help)."""

    def __init__(self, error: TransportError, transaction_id: bytes) -> None:
        super().__init__(str(error))
        self.error = error
        self.transaction_id = transaction_id


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _dp_oid(certificate: bytes) -> str | None:
    try:
        cert = x509.load_der_x509_certificate(certificate)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, x509.ExtensionNotFound):
        return None
    ids = san.value.get_values_for_type(x509.RegisteredID)
    return ids[0].dotted_string if ids else None


def _request(tag: int, value: bytes) -> bytes:
    """An ES10 request around fields the SM-DP+ sent (a :class:`ProtocolError` if oversized)."""
    try:
        return encode_tlv(tag, value)
    except EncodeError:
        raise ProtocolError("the SM-DP+ sent fields too large for an ES10 request") from None


@attrs.define
class _Clock:
    euicc: float = 0.0
    server: float = 0.0


class _Run:
    """One download (possibly several sessions after lost links)."""

    def __init__(
        self,
        es10: Es10,
        es9: Es9,
        *,
        address: str,
        matching_id: str | None,
        oid: str | None,
        euicc_info1: bytes,
        device_info: DeviceInfo,
        confirmation_code: str | None,
        consent: ConsentCallback | None,
        ask_confirmation_code: CodeCallback | None,
        progress: ProgressCallback | None,
        settings: Es9Settings,
        ci_pkids: list[bytes],
    ) -> None:
        self.settings = settings
        self.ci_pkids = ci_pkids
        self.es10 = es10
        self.es9 = es9
        self.address = address
        self.matching_id = matching_id
        self.oid = oid
        self.euicc_info1 = euicc_info1
        self.device_info = device_info
        self.confirmation_code = confirmation_code
        self.consent = consent
        self.ask_confirmation_code = ask_confirmation_code
        self.progress = progress
        self.clock = _Clock()
        self.accepted: ProfileMetadata | None = None

    def step(self, step: DownloadStep) -> None:
        if self.progress is not None:
            self.progress(step)

    def es10_call(self, request: bytes) -> bytes:
        start = time.perf_counter()
        try:
            return self.es10.transceive(request)
        finally:
            self.clock.euicc += time.perf_counter() - start

    def es10_decode(self, request: bytes, response_type: Any) -> tuple[Any, bytes]:
        start = time.perf_counter()
        try:
            return _es10x.call(self.es10, request, response_type)
        finally:
            self.clock.euicc += time.perf_counter() - start

    async def es9_call(self, coro: Awaitable[Any]) -> Any:
        start = time.perf_counter()
        try:
            return await coro
        finally:
            self.clock.server += time.perf_counter() - start

    # -- cancel ---------------------------------------------------------------

    async def cancel(self, transaction_id: bytes, reason: CancelSessionReason) -> None:
        """ES10b CancelSession, then ES9+ CancelSession with the signed answer (best effort)."""
        self.step(DownloadStep.CANCEL_SESSION)
        request = asn1.encode(
            rsp.CancelSessionRequest({"transactionId": transaction_id, "reason": int(reason)})
        )
        try:
            answer, der = self.es10_decode(request, rsp.CancelSessionResponse)
        except RspfedError:
            return
        if answer.name != "cancelSessionResponseOk":
            return
        with contextlib.suppress(RspfedError):
            await self.es9_call(self.es9.cancel_session(CancelSessionRequest(transaction_id, der)))

    # -- one session --------------------------------------------------------------

    async def session(self, attempt: int) -> DownloadResult:
        start = time.perf_counter()
        self.step(DownloadStep.GET_EUICC_INFO)
        challenge_resp, _ = self.es10_decode(
            _es10x.GET_EUICC_CHALLENGE, rsp.GetEuiccChallengeResponse
        )
        challenge = bytes(challenge_resp["euiccChallenge"].native)

        self.step(DownloadStep.INITIATE_AUTHENTICATION)
        init = await self.es9_call(
            self.es9.initiate_authentication(
                InitiateAuthenticationRequest(challenge, self.euicc_info1, self.address)
            )
        )
        tid = init.transaction_id
        try:
            signed1 = asn1.decode(rsp.ServerSigned1, init.server_signed1)
        except DecodeError as exc:
            raise ProtocolError(f"serverSigned1 does not decode: {exc}") from None
        if bytes(signed1["transactionId"].native) != tid:
            raise ProtocolError("serverSigned1 names another transactionId")
        if str(signed1["serverAddress"].native).lower() != self.address.lower():
            raise ProtocolError("serverSigned1 names another SM-DP+ address")
        if bytes(signed1["euiccChallenge"].native) != challenge:
            raise ProtocolError("serverSigned1 carries another eUICC challenge")
        if self.oid is not None and _dp_oid(init.server_certificate) != self.oid:
            raise CertificateRoleError(
                "CERT.DPauth does not carry the SM-DP+ OID of the activation code"
            )

        self.step(DownloadStep.AUTHENTICATE_SERVER)
        common: dict[str, Any] = {"deviceInfo": self.device_info.to_asn1()}
        if self.matching_id is not None:
            common["matchingId"] = self.matching_id
        ctx = asn1.encode(rsp.CtxParams1(name="ctxParamsForCommonAuthentication", value=common))
        request = _request(
            0xBF38,
            init.server_signed1
            + init.server_signature1
            + init.euicc_ci_pkid_to_be_used
            + init.server_certificate
            + ctx,
        )
        auth, auth_der = self.es10_decode(request, rsp.AuthenticateServerResponse)
        if auth.name != "authenticateResponseOk":
            error = _code_error(
                AUTHENTICATE_ERRORS,
                auth.chosen["authenticateErrorCode"].native,
                "AuthenticateServer",
            )
            # tell the SM-DP+ (it closes its session); its answer does not matter
            with contextlib.suppress(RspfedError):
                await self.es9_call(
                    self.es9.authenticate_client(AuthenticateClientRequest(tid, auth_der))
                )
            raise error
        try:
            return await self._after_authentication(tid, auth_der, attempt, start)
        except _Cancel as cancel:
            await self.cancel(tid, cancel.reason)
            raise cancel.error from None
        except _LinkCut:
            raise
        except Exception:
            # anything else (a callback's own exception, ...): leave nothing open
            await self.cancel(tid, CancelSessionReason.undefinedReason)
            raise

    async def _after_authentication(
        self, tid: bytes, auth_der: bytes, attempt: int, start: float
    ) -> DownloadResult:
        try:
            self.step(DownloadStep.AUTHENTICATE_CLIENT)
            client = await self.es9_call(
                self.es9.authenticate_client(AuthenticateClientRequest(tid, auth_der))
            )
            try:
                metadata = ProfileMetadata.from_der(client.profile_metadata)
                signed2 = asn1.decode(rsp.SmdpSigned2, client.smdp_signed2)
            except DecodeError as exc:
                raise ProtocolError(f"AuthenticateClient answer: {exc}") from None
            if bytes(signed2["transactionId"].native) != tid or client.transaction_id != tid:
                raise ProtocolError("AuthenticateClient answer names another transactionId")
            await self._ask_consent(metadata)
            hash_cc = b""
            if signed2["ccRequiredFlag"].native:
                code = await self._confirmation_code(metadata)
                inner = hashlib.sha256(code.encode("utf-8")).digest()
                hash_cc = encode_tlv(0x04, hashlib.sha256(inner + tid).digest())

            self.step(DownloadStep.PREPARE_DOWNLOAD)
            request = _request(
                0xBF21,
                client.smdp_signed2 + client.smdp_signature2 + hash_cc + client.smdp_certificate,
            )
            prepared, prepared_der = self.es10_decode(request, rsp.PrepareDownloadResponse)
        except TransportError as exc:
            raise _Cancel(CancelSessionReason.timeout, exc) from None
        except RspfedError as exc:
            raise _Cancel(CancelSessionReason.undefinedReason, exc) from None
        if prepared.name != "downloadResponseOk":
            error = _code_error(
                PREPARE_ERRORS, prepared.chosen["downloadErrorCode"].native, "PrepareDownload"
            )
            with contextlib.suppress(RspfedError):
                await self.es9_call(
                    self.es9.get_bound_profile_package(
                        GetBoundProfilePackageRequest(tid, prepared_der)
                    )
                )
            raise error

        self.step(DownloadStep.GET_BOUND_PROFILE_PACKAGE)
        try:
            bpp = await self.es9_call(
                self.es9.get_bound_profile_package(GetBoundProfilePackageRequest(tid, prepared_der))
            )
        except TransportError as exc:
            raise _LinkCut(exc, tid) from None
        except RspfedError as exc:
            raise _Cancel(CancelSessionReason.undefinedReason, exc) from None
        if bpp.transaction_id != tid:
            raise _Cancel(
                CancelSessionReason.undefinedReason,
                ProtocolError("GetBoundProfilePackage answer names another transactionId"),
            )

        self.step(DownloadStep.LOAD_BOUND_PROFILE_PACKAGE)
        try:
            blocks = segment_bpp_for_es10b(bpp.bound_profile_package)
        except DecodeError as exc:
            raise _Cancel(
                CancelSessionReason.loadBppExecutionError,
                ProtocolError(f"the bound profile package does not decode: {exc}"),
            ) from None
        pir = b""
        try:
            for block in blocks:
                pir = self.es10_call(block)
                if pir:
                    break
        except RspfedError as exc:
            raise _Cancel(CancelSessionReason.loadBppExecutionError, exc) from None
        if not pir:
            raise _Cancel(
                CancelSessionReason.loadBppExecutionError,
                ProtocolError("the eUICC gave no ProfileInstallationResult"),
            )
        return await self._finish(tid, pir, metadata, attempt, start)

    async def _finish(
        self, tid: bytes, pir: bytes, metadata: ProfileMetadata, attempt: int, start: float
    ) -> DownloadResult:
        try:
            result = asn1.decode(rsp.ProfileInstallationResult, pir)
        except DecodeError as exc:
            raise ProtocolError(f"the eUICC's ProfileInstallationResult: {exc}") from None
        data = result["profileInstallationResultData"]
        final = data["finalResult"]
        # the result goes to the SM-DP+ whatever it says
        self.step(DownloadStep.HANDLE_NOTIFICATION)
        note = notification_from_der(pir)
        if final.name != "successResult":
            with contextlib.suppress(RspfedError):
                await self.es9_call(self.es9.handle_notification(HandleNotificationRequest(pir)))
            reason = final.chosen["errorReason"].native
            command = final.chosen["bppCommandId"].native
            cls = _PIR_ERRORS.get(str(reason), ProtocolError)
            raise cls(f"the eUICC could not install the profile: {reason} in {command}")
        aid = bytes(final.chosen["aid"].native)
        clients = {self.address: self.es9}
        start_server = time.perf_counter()
        deliveries = await deliver(self.es10, [note], self.settings, self.ci_pkids, clients=clients)
        self.clock.server += time.perf_counter() - start_server
        self.step(DownloadStep.DONE)
        total = time.perf_counter() - start
        return DownloadResult(
            iccid=metadata.iccid,
            isdp_aid=aid,
            metadata=metadata,
            smdp_address=self.address,
            transaction_id=tid,
            attempts=attempt,
            notification=deliveries[0] if deliveries else None,
            timings={
                "total": total,
                "euicc": self.clock.euicc,
                "server": self.clock.server,
                "lpa": total - self.clock.euicc - self.clock.server,
            },
        )

    async def _ask_consent(self, metadata: ProfileMetadata) -> None:
        if self.accepted is not None and self.accepted.iccid == metadata.iccid:
            return  # a retried session: the user already said yes
        self.step(DownloadStep.USER_CONSENT)
        answer = Consent.ACCEPT
        if self.consent is not None:
            given = await _maybe_await(self.consent(metadata))
            answer = (
                given
                if isinstance(given, Consent)
                else (Consent.ACCEPT if given else Consent.REJECT)
            )
        if answer is Consent.REJECT:
            raise _Cancel(
                CancelSessionReason.endUserRejection,
                PolicyError("the user refused the profile download"),
            )
        if answer is Consent.POSTPONE:
            raise _Cancel(
                CancelSessionReason.postponed, PolicyError("the user postponed the download")
            )
        self.accepted = metadata

    async def _confirmation_code(self, metadata: ProfileMetadata) -> str:
        self.step(DownloadStep.CONFIRMATION_CODE)
        code = self.confirmation_code
        if code is None and self.ask_confirmation_code is not None:
            code = await _maybe_await(self.ask_confirmation_code(metadata))
        if not code:
            # postponed: the user may come back with the code (the order stays)
            raise _Cancel(
                CancelSessionReason.postponed,
                UsageError("the SM-DP+ requires a confirmation code and none was given"),
            )
        self.confirmation_code = code  # kept for a retried session
        return str(code)


async def download(
    es10: Es10,
    activation_code: ActivationCode | str | None = None,
    *,
    confirmation_code: str | None = None,
    consent: ConsentCallback | None = None,
    ask_confirmation_code: CodeCallback | None = None,
    progress: ProgressCallback | None = None,
    settings: Es9Settings | None = None,
    device_info: DeviceInfo | None = None,
    retries: int = 1,
    es9: Es9 | None = None,
    trust: Sequence[bytes] = (),
    ca_file: str | None = None,
    tls: bool = True,
) -> DownloadResult:
    """Download and install one profile (see the module doc).

    ``activation_code``: an :class:`ActivationCode`, its text, or ``None``
    for the eUICC's default SM-DP+.  ``consent`` (may be async) gets the
    :class:`ProfileMetadata` and answers ``True``/``False`` or a
    :class:`Consent`; without it the download is accepted.
    ``confirmation_code`` is used when the SM-DP+ asks for one, else
    ``ask_confirmation_code`` is called.  ``settings`` carries the TLS trust
    (CI certificates, ``ca_file``, ``tls``); ``retries`` bounds the sessions
    restarted after a lost link; ``trust`` (CI certificates, DER),
    ``ca_file`` and ``tls`` are shorthands for ``settings`` (give one or the
    other).  ``es9`` replaces the HTTPS client (e.g. an
    in-process adapter to an SM-DP+ core, for tests and benchmarks): it is
    used for the SM-DP+ of the activation code and not closed.
    """
    if retries < 0:
        raise UsageError("retries must be 0 or more")
    if settings is None:
        settings = Es9Settings(trust=tuple(trust), ca_file=ca_file, tls=tls)
    elif trust or ca_file is not None or not tls:
        raise UsageError("give either settings or trust/ca_file/tls, not both")
    if isinstance(activation_code, str):
        activation_code = ActivationCode.parse(activation_code)
    start = time.perf_counter()
    info1_start = time.perf_counter()
    info1_der = es10.transceive(_es10x.GET_EUICC_INFO1)
    try:
        info1 = asn1.decode(rsp.EUICCInfo1, info1_der)
    except DecodeError as exc:
        raise ProtocolError(f"the eUICC's EUICCInfo1 does not decode: {exc}") from None
    ci_pkids = [bytes(k) for k in info1["euiccCiPKIdListForVerification"].native]
    matching_id: str | None
    if activation_code is None:
        addresses, _ = _es10x.call(
            es10, _es10x.GET_EUICC_CONFIGURED_ADDRESSES, rsp.EuiccConfiguredAddressesResponse
        )
        address = addresses["defaultDpAddress"].native
        if not address:
            raise UsageError("no activation code and the eUICC has no default SM-DP+ address")
        activation_code = ActivationCode(address)
        matching_id = None
    else:
        matching_id = activation_code.matching_id
    euicc_before = time.perf_counter() - info1_start
    async with contextlib.AsyncExitStack() as stack:
        link: Es9 = (
            es9
            if es9 is not None
            else await stack.enter_async_context(settings.client(activation_code.address, ci_pkids))
        )
        return await _run(
            es10,
            link,
            activation_code,
            matching_id,
            info1_der,
            euicc_before,
            start,
            confirmation_code=confirmation_code,
            consent=consent,
            ask_confirmation_code=ask_confirmation_code,
            progress=progress,
            device_info=device_info,
            retries=retries,
            settings=settings,
            ci_pkids=ci_pkids,
        )


async def _run(
    es10: Es10,
    es9: Es9,
    activation_code: ActivationCode,
    matching_id: str | None,
    info1_der: bytes,
    euicc_before: float,
    start: float,
    *,
    confirmation_code: str | None,
    consent: ConsentCallback | None,
    ask_confirmation_code: CodeCallback | None,
    progress: ProgressCallback | None,
    device_info: DeviceInfo | None,
    retries: int,
    settings: Es9Settings,
    ci_pkids: list[bytes],
) -> DownloadResult:
    run = _Run(
        es10,
        es9,
        address=activation_code.address,
        matching_id=matching_id,
        oid=activation_code.oid,
        euicc_info1=info1_der,
        device_info=device_info or DeviceInfo(),
        confirmation_code=confirmation_code,
        consent=consent,
        ask_confirmation_code=ask_confirmation_code,
        progress=progress,
        settings=settings,
        ci_pkids=ci_pkids,
    )
    run.clock.euicc += euicc_before
    attempt = 1
    while True:
        try:
            result = await run.session(attempt)
        except _LinkCut as cut:
            if attempt > retries:
                await run.cancel(cut.transaction_id, CancelSessionReason.timeout)
                raise cut.error from None
            attempt += 1
            run.step(DownloadStep.RETRY)
            continue
        total = time.perf_counter() - start
        timings = dict(result.timings)
        timings["total"] = total
        timings["lpa"] = total - timings["euicc"] - timings["server"]
        return attrs.evolve(result, timings=timings)
