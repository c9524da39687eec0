"""An asynchronous ES2+ client (the operator's side) over HTTPS with mutual TLS.

Example::

    ctx = client_ssl_context(cert="operator.pem", key="operator.key.pem", ca_file="ca.pem")
    async with Es2Client("https://smdp.example:8443", ssl_context=ctx,
                         requester=requester_of("operator.pem")) as es2:
        iccid = await es2.download_order(profile_type="test")
        order = await es2.confirm_order(iccid=iccid)
        print(order.activation_code)

Failures: a ``Failed`` answer raises the
:class:`~rspfed.errors.FunctionExecutionError` subclass for its subject code;
a refused server certificate :class:`~rspfed.errors.UntrustedCertificateError`;
a connection failure or time-out :class:`~rspfed.errors.TransportError`; an
answer that is not ES2+ (wrong HTTP status, missing ``X-Admin-Protocol``,
malformed JSON) :class:`~rspfed.errors.ProtocolError` or
:class:`~rspfed.errors.DecodeError`.
"""

from __future__ import annotations

import itertools
import os
import ssl
from pathlib import Path
from types import TracebackType
from typing import Final, TypeVar

import aiohttp
from cryptography import x509
from cryptography.x509.oid import NameOID

from rspfed.errors import (
    FunctionExecutionError,
    ProtocolError,
    TransportError,
    UntrustedCertificateError,
    UsageError,
)
from rspfed.es2p.codec import decode_es2_response, encode_es2_request
from rspfed.es2p.messages import (
    PATH_PREFIX,
    CancelOrderRequest,
    CancelOrderResponse,
    ConfirmOrderRequest,
    ConfirmOrderResponse,
    DownloadOrderRequest,
    DownloadOrderResponse,
    Es2Message,
    ReleaseProfileRequest,
    ReleaseProfileResponse,
    RequestHeader,
)
from rspfed.es9p.codec import DEFAULT_MAX_SIZE
from rspfed.es9p.messages import ADMIN_PROTOCOL

__all__ = ["Es2Client", "client_ssl_context", "requester_of"]

R = TypeVar("R", bound=Es2Message)
_JSON: Final = "application/json;charset=UTF-8"


def client_ssl_context(
    *,
    cert: str | os.PathLike[str] | None = None,
    key: str | os.PathLike[str] | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    passphrase: bytes | None = None,
) -> ssl.SSLContext:
    """A TLS 1.2+ client context: system CAs plus ``ca_file``, and the client
    certificate ``cert`` (PEM, chain allowed) with its ``key`` for mutual TLS."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if ca_file is not None:
            ctx.load_verify_locations(cafile=os.fspath(ca_file))
        if cert is not None:
            ctx.load_cert_chain(
                os.fspath(cert), os.fspath(key) if key is not None else None, password=passphrase
            )
    except ssl.SSLError as exc:
        raise UsageError(f"cannot load TLS files: {exc.reason or 'bad PEM or key'}") from None
    except OSError as exc:
        raise UsageError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    return ctx


def requester_of(cert: str | os.PathLike[str]) -> str:
    """The operator identity in a client certificate (its subject commonName, else organisation).

    This is what the SM-DP+ takes as the ES2+ requester, so a client uses it as
    ``functionRequesterIdentifier``.
    """
    try:
        parsed = x509.load_pem_x509_certificate(Path(cert).read_bytes())
    except ValueError:
        raise UsageError(f"{os.fspath(cert)} is not a PEM certificate") from None
    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
        attrs_ = parsed.subject.get_attributes_for_oid(oid)
        if attrs_:
            return str(attrs_[0].value)
    raise UsageError(f"{os.fspath(cert)} has no commonName or organisation")


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int, function: str) -> bytes:
    """The whole body, refusing more than ``limit`` octets (:class:`ProtocolError`)."""
    chunks: list[bytes] = []
    total = 0
    async for chunk in resp.content.iter_chunked(65536):
        total += len(chunk)
        if total > limit:
            raise ProtocolError(f"{function}: answer larger than {limit} octets")
        chunks.append(chunk)
    return b"".join(chunks)


class Es2Client:
    """ES2+ functions of one SM-DP+ (``base_url`` like ``https://smdp.example:8443``).

    One keep-alive connection (``aiohttp``) serves every call; use it as an
    async context manager or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        requester: str,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise UsageError("the ES2+ URL must start with https:// (or http:// for tests)")
        if not requester:
            raise UsageError("an ES2+ requester identifier is needed")
        self.base_url = base_url.rstrip("/")
        self.requester = requester
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._calls = itertools.count(1)
        self._prefix = os.urandom(4).hex()

    async def __aenter__(self) -> Es2Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _next_call_id(self) -> str:
        return f"{self._prefix}-{next(self._calls)}"

    async def call(self, request: Es2Message, response_class: type[R]) -> R:
        """POST ``request`` to its function path and decode the answer as ``response_class``."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        header = RequestHeader(self.requester, self._next_call_id())
        body = encode_es2_request(request, header)
        url = self.base_url + PATH_PREFIX + request.FUNCTION
        headers = {"Content-Type": _JSON, "X-Admin-Protocol": ADMIN_PROTOCOL}
        try:
            async with self._session.post(url, data=body, headers=headers, ssl=self._ssl) as resp:
                answer = await _read_bounded(resp, DEFAULT_MAX_SIZE, request.FUNCTION)
                status = resp.status
                admin = resp.headers.get("X-Admin-Protocol", "")
        except aiohttp.ClientConnectorCertificateError:
            raise UntrustedCertificateError(
                f"{request.FUNCTION}: the server certificate is not trusted"
            ) from None
        except aiohttp.ClientSSLError as exc:
            raise TransportError(f"{request.FUNCTION}: TLS failed ({type(exc).__name__})") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"{request.FUNCTION}: {type(exc).__name__}") from None
        if status != 200:
            try:  # the SM-DP+ puts a status header into its 4xx bodies
                decode_es2_response(response_class, answer)
            except FunctionExecutionError:
                raise
            except Exception:  # noqa: S110 - any other body: report the HTTP status
                pass
            raise ProtocolError(f"{request.FUNCTION}: HTTP status {status}")
        if not admin.startswith("gsma/rsp/v2."):
            raise ProtocolError(f"{request.FUNCTION}: X-Admin-Protocol missing in the answer")
        return decode_es2_response(response_class, answer)

    async def download_order(
        self, *, profile_type: str | None = None, iccid: str | None = None, eid: str | None = None
    ) -> str:
        """ES2+.DownloadOrder: reserve a profile; returns its ICCID."""
        resp = await self.call(
            DownloadOrderRequest(eid=eid, iccid=iccid, profile_type=profile_type),
            DownloadOrderResponse,
        )
        return resp.iccid

    async def confirm_order(
        self,
        *,
        iccid: str,
        eid: str | None = None,
        matching_id: str | None = None,
        confirmation_code: str | None = None,
        smds_address: str | None = None,
        release_flag: bool = True,
    ) -> ConfirmOrderResponse:
        """ES2+.ConfirmOrder: returns the matchingId (and activation code)."""
        return await self.call(
            ConfirmOrderRequest(
                iccid=iccid,
                release_flag=release_flag,
                eid=eid,
                matching_id=matching_id,
                confirmation_code=confirmation_code,
                smds_address=smds_address,
            ),
            ConfirmOrderResponse,
        )

    async def cancel_order(
        self,
        *,
        iccid: str,
        final_profile_status_indicator: str = "Available",
        eid: str | None = None,
        matching_id: str | None = None,
    ) -> None:
        """ES2+.CancelOrder."""
        await self.call(
            CancelOrderRequest(
                iccid=iccid,
                final_profile_status_indicator=final_profile_status_indicator,
                eid=eid,
                matching_id=matching_id,
            ),
            CancelOrderResponse,
        )

    async def release_profile(self, *, iccid: str) -> None:
        """ES2+.ReleaseProfile."""
        await self.call(ReleaseProfileRequest(iccid=iccid), ReleaseProfileResponse)
