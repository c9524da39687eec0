"""The LPA's ES9+ client: SGP.22 JSON over HTTPS (aiohttp), with SGP.22 v2 TLS trust.

Every request is a ``POST`` to ``https://<SM-DP+ address>/gsma/rsp2/es9plus/<function>``
with ``Content-Type: application/json;charset=UTF-8``, ``X-Admin-Protocol``
and ``User-Agent: gsma-rsp-lpad``; bodies go through :mod:`rspfed.es9p`.
One :class:`Es9Client` keeps one connection pool, so a whole download runs
over one keep-alive TLS connection.

TLS trust (SGP.22 v2.2 §2.6.6 and §4.5.2.1.0.4): the SM-DP+ TLS certificate
must be issued by a CI that the LPA trusts (``trust``, DER certificates)
*and* that the eUICC lists in ``euiccCiPKIdListForVerification``
(``ci_pkids``); it must carry the TLS role policy ``id-rspRole-dp-tls``
(2.23.146.1.2.1.3), the role's key usage and ``serverAuth``, and a
``subjectAltName`` dNSName matching the host of the address.  OpenSSL checks
the chain with only those CIs as trust anchors; right after the handshake,
before any request is sent, the leaf is checked again with
:func:`rspfed.pki.verify_chain` for the DPtls role and its SAN is matched.

``ca_file`` (PEM) adds CAs for servers with WebPKI certificates (SGP.22 v3
style): a leaf that chains to one of those gets normal WebPKI checks (chain
and SAN), not the RSP role checks.  ``tls=False`` speaks plain HTTP, for
local testing only.

Errors: the server's certificate is refused with
:class:`~rspfed.errors.UntrustedCertificateError` (no trusted, eUICC-listed
CI), :class:`~rspfed.errors.CertificateRoleError` (not a DPtls certificate,
or its SAN does not name the host), :class:`~rspfed.errors.CertificateExpiredError`
or :class:`~rspfed.errors.CertificateRevokedError`; a function that answers
``Failed`` raises its :class:`~rspfed.errors.FunctionExecutionError`
subclass; a malformed body :class:`~rspfed.errors.DecodeError`; an
unexpected HTTP status :class:`~rspfed.errors.ProtocolError` (5xx:
:class:`~rspfed.errors.TransportError`); connection failures and time-outs
:class:`~rspfed.errors.TransportError`.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Final, Protocol, TypeVar

import aiohttp
import attrs
from cryptography import x509

from rspfed.errors import (
    CertificateError,
    CertificateExpiredError,
    CertificateRevokedError,
    CertificateRoleError,
    DecodeError,
    ProtocolError,
    RspfedError,
    StorageError,
    TransportError,
    UntrustedCertificateError,
)
from rspfed.es9p import (
    ADMIN_PROTOCOL,
    FUNCTIONS,
    AuthenticateClientRequest,
    AuthenticateClientResponse,
    CancelSessionRequest,
    CancelSessionResponse,
    GetBoundProfilePackageRequest,
    GetBoundProfilePackageResponse,
    HandleNotificationRequest,
    InitiateAuthenticationRequest,
    InitiateAuthenticationResponse,
    decode_response,
    encode_request,
)
from rspfed.lpa.activation import validate_address
from rspfed.pki import CertificateRole, RspCertificate, parse_certificate, verify_chain

__all__ = [
    "CONTENT_TYPE",
    "USER_AGENT",
    "Es9",
    "Es9Client",
    "Es9Settings",
    "check_server_certificate",
    "tls_context",
]

#: ``Content-Type`` of every ES9+ request.
CONTENT_TYPE: Final = "application/json;charset=UTF-8"
#: ``User-Agent`` SGP.22 §6.5.1 asks an LPA in a device to send.
USER_AGENT: Final = "gsma-rsp-lpad"

M = TypeVar("M", bound=attrs.AttrsInstance)

_EXPIRED_CODES = frozenset({9, 10})  # X509_V_ERR_CERT_NOT_YET_VALID, _HAS_EXPIRED
_REVOKED_CODE = 23  # X509_V_ERR_CERT_REVOKED


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _host_matches(host: str, certificate: x509.Certificate, dns_names: Sequence[str]) -> bool:
    """RFC 6125 matching: dNSName (one leading ``*.`` label allowed) or iPAddress."""
    host = host.rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        try:
            san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return False
        return ip in san.value.get_values_for_type(x509.IPAddress)
    for name in dns_names:
        pattern = name.rstrip(".").lower()
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            first, rest = host.split(".", 1)
            if first and rest == pattern[2:] and "*" not in rest:
                return True
    return False


def check_server_certificate(
    certificate: bytes,
    *,
    host: str,
    cis: Sequence[RspCertificate],
    now: datetime,
    webpki: bool = False,
) -> None:
    """Check the SM-DP+ TLS leaf ``certificate`` (DER) for ``host`` (see the module doc).

    ``cis`` are the trusted CIs the eUICC lists for verification.  A leaf
    issued by one of them must be a valid DPtls certificate
    (:func:`rspfed.pki.verify_chain`); any other leaf is accepted only when
    ``webpki`` (OpenSSL verified it against ``ca_file``).  The SAN must match
    ``host`` in both cases.  Raises a :class:`~rspfed.errors.CertificateError`
    subclass.
    """
    try:
        leaf = parse_certificate(certificate)
    except DecodeError:
        raise UntrustedCertificateError("the server's TLS certificate is malformed") from None
    issued_by_ci = any(
        ci.subject_key_id is not None
        and ci.subject_key_id == leaf.authority_key_id
        and ci.subject == leaf.issuer
        for ci in cis
    )
    if issued_by_ci:
        verify_chain(leaf, role=CertificateRole.DPTLS, trust_anchors=[c.der for c in cis], now=now)
    elif not webpki:
        raise UntrustedCertificateError(
            f"TLS certificate {leaf.describe()} is not issued by a CI the eUICC lists "
            "for verification"
        )
    if not _host_matches(host, leaf.certificate, leaf.dns_names):
        names = ", ".join(leaf.dns_names) or "none"
        raise CertificateRoleError(
            f"TLS certificate subjectAltName ({names}) does not match the SM-DP+ host {host}"
        )


class _Rejected(ssl.SSLCertVerificationError):
    """Carries our :class:`CertificateError` through asyncio's handshake machinery."""

    def __init__(self, error: CertificateError) -> None:
        super().__init__(str(error))
        self.error = error


def tls_context(
    *,
    host: str,
    trust: Sequence[bytes] = (),
    ci_pkids: Collection[bytes] | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    now: Callable[[], datetime] = _utcnow,
) -> ssl.SSLContext:
    """The client :class:`ssl.SSLContext` for an SM-DP+ at ``host`` (TLS 1.2 or later).

    ``trust``: CI certificates (DER) the LPA knows; only those whose
    SubjectKeyIdentifier is in ``ci_pkids`` (the eUICC's
    euiccCiPKIdListForVerification; ``None``: all) become trust anchors.
    ``ca_file`` adds WebPKI CAs.  Raises :class:`UntrustedCertificateError`
    when no anchor is left, :class:`StorageError` for an unreadable ``ca_file``.
    """
    cis: list[RspCertificate] = []
    for der in trust:
        ci = parse_certificate(der)
        if ci.subject_key_id is not None and (ci_pkids is None or ci.subject_key_id in ci_pkids):
            cis.append(ci)
    if not cis and ca_file is None:
        raise UntrustedCertificateError(
            "no CI certificate known to the LPA is listed by the eUICC for verification"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # checked below, for both trust paths
    context.verify_mode = ssl.CERT_REQUIRED
    if cis:
        context.load_verify_locations(cadata=b"".join(ci.der for ci in cis))
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=os.fspath(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise StorageError(f"cannot load CA file {os.fspath(ca_file)}: {exc}") from None
    webpki = ca_file is not None
    anchors = tuple(cis)

    class _CheckedObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            super().do_handshake()
            der = self.getpeercert(binary_form=True)
            if der is None:
                raise _Rejected(UntrustedCertificateError("the server sent no certificate"))
            try:
                check_server_certificate(der, host=host, cis=anchors, now=now(), webpki=webpki)
            except CertificateError as exc:
                raise _Rejected(exc) from None

    context.sslobject_class = _CheckedObject
    return context


def _certificate_error(exc: BaseException) -> RspfedError:
    """Our error for a failed TLS certificate verification."""
    if isinstance(exc, _Rejected):
        return exc.error
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        text = exc.verify_message or "verification failed"
        if code in _EXPIRED_CODES:
            return CertificateExpiredError(f"SM-DP+ TLS certificate: {text}")
        if code == _REVOKED_CODE:
            return CertificateRevokedError(f"SM-DP+ TLS certificate: {text}")
        return UntrustedCertificateError(
            f"SM-DP+ TLS certificate does not chain to a CI that both the LPA trusts and "
            f"the eUICC lists for verification (or to a --ca-file CA): {text}"
        )
    return TransportError(f"TLS handshake failed: {type(exc).__name__}")


class Es9(Protocol):
    """The ES9+ functions the LPA calls (:class:`Es9Client` over HTTPS; an
    in-process adapter around :class:`rspfed.smdp.Smdp` fits as well)."""

    async def initiate_authentication(
        self, request: InitiateAuthenticationRequest
    ) -> InitiateAuthenticationResponse:
        """ES9+.InitiateAuthentication."""
        ...

    async def authenticate_client(
        self, request: AuthenticateClientRequest
    ) -> AuthenticateClientResponse:
        """ES9+.AuthenticateClient."""
        ...

    async def get_bound_profile_package(
        self, request: GetBoundProfilePackageRequest
    ) -> GetBoundProfilePackageResponse:
        """ES9+.GetBoundProfilePackage."""
        ...

    async def cancel_session(self, request: CancelSessionRequest) -> CancelSessionResponse:
        """ES9+.CancelSession."""
        ...

    async def handle_notification(self, request: HandleNotificationRequest) -> None:
        """ES9+.HandleNotification."""
        ...


class Es9Client:
    """ES9+ functions of one SM-DP+ (``address`` = ``FQDN[:port]``), as coroutines.

    Use as ``async with Es9Client(...) as es9:``; see the module doc for
    ``trust``, ``ci_pkids``, ``ca_file`` and ``tls``.  ``now`` is the clock
    for certificate validity; ``timeout`` (seconds) bounds each request.
    """

    def __init__(
        self,
        address: str,
        *,
        trust: Sequence[bytes] = (),
        ci_pkids: Collection[bytes] | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        tls: bool = True,
        now: Callable[[], datetime] = _utcnow,
        timeout: float = 60.0,
    ) -> None:
        self.address = validate_address(address)
        host = address.partition(":")[0].rstrip(".")
        self._ssl: ssl.SSLContext | bool = (
            tls_context(host=host, trust=trust, ci_pkids=ci_pkids, ca_file=ca_file, now=now)
            if tls
            else False
        )
        scheme = "https" if tls else "http"
        self._base = f"{scheme}://{address}"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Es9Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=4),
                headers={
                    "User-Agent": USER_AGENT,
                    "X-Admin-Protocol": ADMIN_PROTOCOL,
                    "Content-Type": CONTENT_TYPE,
                    "Accept": "application/json",
                },
                skip_auto_headers=("Content-Type",),
            )
        return self._session

    async def post(self, function: str, body: bytes) -> tuple[int, bytes]:
        """POST ``body`` to the ES9+ ``function``; the HTTP status and response body."""
        url = self._base + FUNCTIONS[function].path
        try:
            async with self._client().post(url, data=body) as response:
                data = await response.read()
                return response.status, data
        except aiohttp.ClientConnectorCertificateError as exc:
            raise _certificate_error(exc.certificate_error) from None
        except aiohttp.ClientSSLError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ssl.SSLCertVerificationError):
                raise _certificate_error(cause) from None
            raise TransportError(f"{function}: TLS failure ({type(exc).__name__})") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            what = type(exc).__name__
            raise TransportError(f"{function}: {what} talking to {self.address}") from None

    async def _call(self, name: str, body: bytes, response_type: type[M]) -> M:
        status, data = await self.post(name, body)
        self._check_status(name, status)
        return decode_response(response_type, data, function=name)

    @staticmethod
    def _check_status(name: str, status: int) -> None:
        if status >= 500:
            raise TransportError(f"{name}: the SM-DP+ answered HTTP {status}")
        if status != 200:
            raise ProtocolError(f"{name}: the SM-DP+ answered HTTP {status}")

    async def initiate_authentication(
        self, request: InitiateAuthenticationRequest
    ) -> InitiateAuthenticationResponse:
        """ES9+.InitiateAuthentication."""
        return await self._call(
            request.FUNCTION, encode_request(request), InitiateAuthenticationResponse
        )

    async def authenticate_client(
        self, request: AuthenticateClientRequest
    ) -> AuthenticateClientResponse:
        """ES9+.AuthenticateClient."""
        return await self._call(
            request.FUNCTION, encode_request(request), AuthenticateClientResponse
        )

    async def get_bound_profile_package(
        self, request: GetBoundProfilePackageRequest
    ) -> GetBoundProfilePackageResponse:
        """ES9+.GetBoundProfilePackage."""
        return await self._call(
            request.FUNCTION, encode_request(request), GetBoundProfilePackageResponse
        )

    async def cancel_session(self, request: CancelSessionRequest) -> CancelSessionResponse:
        """ES9+.CancelSession."""
        return await self._call(request.FUNCTION, encode_request(request), CancelSessionResponse)

    async def handle_notification(self, request: HandleNotificationRequest) -> None:
        """ES9+.HandleNotification (HTTP 204 expected; a 200 with a header is checked)."""
        name = request.FUNCTION
        status, data = await self.post(name, encode_request(request))
        if status == 204:
            return
        self._check_status(name, status)
        if data:
            decode_response(CancelSessionResponse, data, function=name)


@attrs.frozen
class Es9Settings:
    """How the LPA reaches SM-DP+ servers: trust (CI certificates, DER), ``ca_file``,
    ``tls``, the clock and the per-request time-out.  :meth:`client` makes an
    :class:`Es9Client` for one address and the eUICC's CI list."""

    trust: tuple[bytes, ...] = attrs.field(default=(), repr=False)
    ca_file: str | None = None
    tls: bool = True
    now: Callable[[], datetime] = _utcnow
    timeout: float = 60.0

    def client(self, address: str, ci_pkids: Collection[bytes] | None) -> Es9Client:
        """An :class:`Es9Client` for ``address`` trusting the CIs in ``ci_pkids``."""
        return Es9Client(
            address,
            trust=self.trust,
            ci_pkids=ci_pkids,
            ca_file=self.ca_file,
            tls=self.tls,
            now=self.now,
            timeout=self.timeout,
        )
