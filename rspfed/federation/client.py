"""The device side of the operator's HTTP API (:mod:`rspfed.federation.http`).

:class:`OperatorClient` (``async with``) calls the ``/rspfed/v1/`` routes
over one aiohttp connection pool.  TLS is verified: with ``ssl_context``
(typically :func:`operator_tls_context`: what the LPA trusts for an SM-DP+ —
the CIs the eUICC lists — plus a ``--ca-file``), else with the system's
CAs.  Plain HTTP only for an ``http://`` URL (a ``--no-tls`` server).

Errors: an error answer raises the :class:`~rspfed.errors.RspfedError`
subclass it names (looked up in :data:`rspfed.errors.__all__`, and
:class:`~rspfed.network.NetworkRefusedError`; an unknown name is a
:class:`~rspfed.errors.ProtocolError`); a malformed answer is a
:class:`~rspfed.errors.DecodeError`; connection failures, time-outs and 5xx
answers without a known error are :class:`~rspfed.errors.TransportError`;
the server's TLS certificate refused is a
:class:`~rspfed.errors.CertificateError` subclass.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.eap.machines import EapAkaPrimePeer, PeerState, UsimAuthenticate
from rspfed.errors import DecodeError, ProtocolError, RspfedError, TransportError, UsageError
from rspfed.federation.change import device_change_from_json, device_change_order_from_json
from rspfed.federation.http import API_PREFIX
from rspfed.federation.ledger import LedgerState, decode_state
from rspfed.federation.pool import FiredAlert, UsageResult
from rspfed.federation.signing import sign_request
from rspfed.federation.token import DeviceClass, Service
from rspfed.federation.types import (
    Device,
    DeviceChange,
    DeviceChangeOrder,
    EapPurpose,
    Enrolment,
    JoinRequest,
    JoinTicket,
)
from rspfed.federation.wire import (
    MAX_BODY,
    Reader,
    b64,
    b64url,
    device_from_json,
    dump,
    enrolment_from_json,
    error_from_json,
    fired_alert_from_json,
    join_request_from_json,
    join_ticket_from_json,
    parse_body,
    usage_result_from_json,
)
from rspfed.lpa.es9 import _certificate_error, tls_context
from rspfed.network.errors import NetworkRefusedError, RefusalReason
from rspfed.network.nai import permanent_identity
from rspfed.network.radio import VisibleNetwork, check_plmn

__all__ = ["USER_AGENT", "OperatorClient", "operator_tls_context", "scan", "sync_usage"]

#: ``User-Agent`` of the client.
USER_AGENT: Final = "rspfed-operator-client"
_MAX_EAP_ROUNDS: Final = 4
_NONCE: Final = 16


def _utcnow() -> datetime:
    return datetime.now(UTC)


def operator_tls_context(
    host: str,
    *,
    trust: Sequence[bytes] = (),
    ci_pkids: Collection[bytes] | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    now: Callable[[], datetime] = _utcnow,
) -> ssl.SSLContext:
    """The client TLS context for an operator at ``host``: as the LPA's for an SM-DP+
    (:func:`rspfed.lpa.es9.tls_context`: a CERT.DPtls from a CI in ``trust`` that the
    eUICC lists in ``ci_pkids``), plus the CAs of ``ca_file`` (PEM)."""
    return tls_context(host=host, trust=trust, ci_pkids=ci_pkids, ca_file=ca_file, now=now)


def _point(key: ec.EllipticCurvePrivateKey) -> bytes:
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise UsageError("the key must be a P-256 private key")
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class OperatorClient:
    """The operator's API at ``url`` (``https://host[:port]``, or ``http://`` for a
    ``--no-tls`` server), as coroutines.

    ``ssl_context`` verifies the server (default: the system CAs); ``timeout``
    bounds each request (seconds); ``now`` and ``rand`` give the time and
    nonces of signed requests.  Use as ``async with OperatorClient(...) as op:``.
    """

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        now: Callable[[], datetime] = _utcnow,
        rand: Callable[[int], bytes] = os.urandom,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise UsageError("the operator URL must be https://HOST[:PORT] (http:// for --no-tls)")
        if parts.query or parts.fragment:
            raise UsageError("the operator URL may not have a query or fragment")
        self.url = url.rstrip("/")
        self._prefix = parts.path.rstrip("/") + API_PREFIX
        self._ssl: ssl.SSLContext | bool = (
            False if parts.scheme == "http" else (ssl_context if ssl_context else True)
        )
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._now = now
        self._rand = rand
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"OperatorClient({self.url!r})"

    async def __aenter__(self) -> OperatorClient:
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
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            )
        return self._session

    # -- transport ---------------------------------------------------------------

    async def _send(self, route: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        url = self.url.removesuffix(urlsplit(self.url).path) + self._prefix + "/" + route
        try:
            async with self._client().post(url, data=body, headers=headers) as response:
                data = await response.content.read(MAX_BODY + 1)
                return response.status, data
        except aiohttp.ClientConnectorCertificateError as exc:
            raise _certificate_error(exc.certificate_error) from None
        except aiohttp.ClientSSLError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ssl.SSLCertVerificationError):
                raise _certificate_error(cause) from None
            raise TransportError(f"{route}: TLS failure ({type(exc).__name__})") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise TransportError(f"{route}: {type(exc).__name__} talking to the operator") from None

    async def _call(
        self,
        route: str,
        request: dict[str, Any],
        *,
        key: ec.EllipticCurvePrivateKey | None = None,
        accept: tuple[int, ...] = (200,),
    ) -> tuple[int, Reader]:
        body = dump(request)
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = sign_request(
                key,
                method="POST",
                path=self._prefix + "/" + route,
                body=body,
                now=self._now(),
                nonce=self._rand(_NONCE),
            )
        status, data = await self._send(route, body, headers)
        if status in accept:
            return status, Reader(parse_body(data, what=f"{route} answer"), route)
        raise self._failure(route, status, data)

    @staticmethod
    def _failure(route: str, status: int, data: bytes) -> RspfedError:
        try:
            error = error_from_json(parse_body(data, what=f"{route} error"))
        except DecodeError:
            if status >= 500:
                return TransportError(f"{route}: the operator answered HTTP {status}")
            return ProtocolError(f"{route}: the operator answered HTTP {status}")
        if status >= 500 and type(error) in (ProtocolError, RspfedError):
            return TransportError(f"{route}: the operator answered HTTP {status}: {error}")
        return error

    # -- EAP-AKA' ------------------------------------------------------------------

    async def _eap(self, peer: EapAkaPrimePeer, first: dict[str, Any]) -> Reader:
        _, answer = await self._call("eap", first)
        for _ in range(_MAX_EAP_ROUNDS):
            session = answer.text("session", max_length=64)
            done = answer.flag("done")
            reply = peer.receive(answer.b64("eap-relay-packet"))
            if reply is None:
                if peer.state is PeerState.SUCCESS and done:
                    return answer
                raise NetworkRefusedError(
                    RefusalReason.AUTHENTICATION_FAILED, "the operator sent EAP-Failure"
                )
            if done:
                raise ProtocolError("the operator ended the EAP exchange early")
            request = {"session": session, "eap-relay-packet": b64(reply)}
            _, answer = await self._call("eap", request)
        raise ProtocolError("the EAP exchange does not end")

    async def register(
        self,
        *,
        usim: UsimAuthenticate,
        imsi: str,
        mnc_length: int,
        eid: str,
        key: ec.EllipticCurvePrivateKey,
        network_name: bytes | None = None,
    ) -> Device:
        """Register ``key`` (the primary's federation key or a secondary's device key)
        by EAP-AKA' with the device's USIM (``usim``, e.g.
        :func:`rspfed.network.usim.eap_usim`) for ``imsi``; the device record.

        ``network_name``: when given, the challenge's AT_KDF_INPUT must be it.
        """
        identity = permanent_identity(imsi, mnc_length=mnc_length)
        peer = EapAkaPrimePeer(
            identity=identity, usim=usim, network_name=network_name, federation_key=_point(key)
        )
        first = {
            "eap-id": identity.decode("ascii"),
            "purpose": EapPurpose.REGISTER.value,
            "eid": eid,
        }
        answer = await self._eap(peer, first)
        return device_from_json(answer.obj.get("device"))

    async def attach(
        self,
        *,
        usim: UsimAuthenticate,
        imsi: str,
        mnc_length: int,
        service: Service | None = None,
        network_name: bytes | None = None,
        plmn: str | None = None,
    ) -> frozenset[Service]:
        """Attach to the simulated network by EAP-AKA'; the services granted.

        With ``service``, the network also checks that one
        (:class:`~rspfed.network.NetworkRefusedError` when refused).  With
        ``plmn`` (``MCC || MNC``) the attach goes through that network: it
        must be on air (``no-coverage``) and be the home PLMN or a roaming
        partner (``plmn-not-allowed``); without it, the home network.
        """
        identity = permanent_identity(imsi, mnc_length=mnc_length)
        peer = EapAkaPrimePeer(identity=identity, usim=usim, network_name=network_name)
        first: dict[str, Any] = {
            "eap-id": identity.decode("ascii"),
            "purpose": EapPurpose.ATTACH.value,
        }
        if service is not None:
            first["service"] = Service(service).value
        if plmn is not None:
            first["plmn"] = check_plmn(plmn)
        answer = await self._eap(peer, first)
        return answer.services("services")

    # -- enrolment -------------------------------------------------------------------

    async def redeem(self, token: bytes, eid: str, *, name: str | None = None) -> Enrolment:
        """Redeem a federation token (DER) for the eUICC ``eid``: its activation code.

        ``name`` is what the operator calls the new device (default: its class).
        """
        body: dict[str, Any] = {"token": b64url(token), "eid": eid}
        if name is not None:
            body["name"] = name
        _, answer = await self._call("redeem", body)
        return enrolment_from_json(answer.obj)

    async def join(
        self, subscription_id: str, eid: str, device_class: DeviceClass, name: str
    ) -> JoinTicket:
        """Ask to join a subscription (cloud enrolment); keep the ticket's secret."""
        request = {
            "subscription-id": subscription_id,
            "eid": eid,
            "device-class": DeviceClass(device_class).value,
            "name": name,
        }
        _, answer = await self._call("join", request)
        return join_ticket_from_json(answer.obj)

    async def collect(self, request_id: str, secret: str) -> Enrolment | None:
        """The activation code of an approved join request; None while it is pending."""
        status, answer = await self._call(
            "join/collect", {"request-id": request_id, "secret": secret}, accept=(200, 202)
        )
        if status == 202:
            return None
        return enrolment_from_json(answer.obj)

    # -- signed management -------------------------------------------------------------

    async def requests(self, key: ec.EllipticCurvePrivateKey) -> list[JoinRequest]:
        """Pending and approved join requests of the subscription (primary's key)."""
        _, answer = await self._call("requests", {}, key=key)
        return answer.items("requests", join_request_from_json)

    async def approve(
        self, key: ec.EllipticCurvePrivateKey, request_id: str, token: bytes
    ) -> JoinRequest:
        """Approve a join request with a token the primary signed for its EID and class."""
        request = {"request-id": request_id, "token": b64url(token)}
        _, answer = await self._call("approve", request, key=key)
        return join_request_from_json(answer.obj.get("request"))

    async def devices(self, key: ec.EllipticCurvePrivateKey) -> list[Device]:
        """The subscription's devices (primary's key)."""
        _, answer = await self._call("devices", {}, key=key)
        return answer.items("devices", device_from_json)

    async def remove(self, key: ec.EllipticCurvePrivateKey, device_id: str) -> Device:
        """Remove a secondary (primary's key); its record as removed."""
        _, answer = await self._call("remove", {"device-id": device_id}, key=key)
        return device_from_json(answer.obj.get("device"))

    async def revoke(self, key: ec.EllipticCurvePrivateKey, token_id: bytes | None = None) -> int:
        """Revoke one token (by id) or all outstanding ones; the orders cancelled."""
        request = {} if token_id is None else {"token-id": bytes(token_id).hex()}
        _, answer = await self._call("revoke", request, key=key)
        return answer.number("cancelled")

    async def status(self, key: ec.EllipticCurvePrivateKey) -> Device:
        """The signing device's own record."""
        _, answer = await self._call("status", {}, key=key)
        return device_from_json(answer.obj.get("device"))

    # -- device change (docs/device-change-operator.md) -----------------------------

    async def device_change(
        self,
        key: ec.EllipticCurvePrivateKey,
        new_eid: str,
        *,
        name: str | None = None,
        device_class: DeviceClass | None = None,
    ) -> DeviceChangeOrder:
        """Ask to move the signing device's record to the eUICC ``new_eid``.

        The order's activation code is for the new device; keep its secret
        (shown once): it reads the change (:meth:`device_change_status`) and
        completes it after the switch, when the old key no longer signs.
        """
        body: dict[str, Any] = {"new-eid": new_eid}
        if name is not None:
            body["name"] = name
        if device_class is not None:
            body["device-class"] = DeviceClass(device_class).value
        _, answer = await self._call("device-change", body, key=key)
        return device_change_order_from_json(answer.obj)

    async def device_change_status(self, change_id: str, secret: str) -> DeviceChange:
        """A device change, read with its secret (no key needed)."""
        request = {"change-id": change_id, "secret": secret}
        _, answer = await self._call("device-change/status", request)
        return device_change_from_json(answer.obj.get("change"))

    async def cancel_device_change(
        self, key: ec.EllipticCurvePrivateKey, change_id: str
    ) -> DeviceChange:
        """Cancel an ordered or installed change (the moving device's or the primary's key)."""
        _, answer = await self._call("device-change/cancel", {"change-id": change_id}, key=key)
        return device_change_from_json(answer.obj.get("change"))

    async def complete_device_change(self, change_id: str, secret: str) -> DeviceChange:
        """The old device's profile is deleted: the switched change is completed."""
        request = {"change-id": change_id, "secret": secret}
        _, answer = await self._call("device-change/complete", request)
        return device_change_from_json(answer.obj.get("change"))

    async def device_change_for(self, key: ec.EllipticCurvePrivateKey) -> DeviceChange | None:
        """The signing device's latest device change (``None`` if none)."""
        _, answer = await self._call("device-change/latest", {}, key=key)
        found = answer.obj.get("change")
        return None if found is None else device_change_from_json(found)

    # -- the shared data pool ------------------------------------------------------

    async def attach_data(
        self,
        *,
        usim: UsimAuthenticate,
        imsi: str,
        mnc_length: int,
        network_name: bytes | None = None,
        plmn: str | None = None,
    ) -> str:
        """Attach by EAP-AKA' for data; the short-lived bearer id to carry traffic on.

        :class:`~rspfed.network.NetworkRefusedError` when the network refuses
        the IMSI or data (``service-not-allowed``), or the network ``plmn``
        (as for :meth:`attach`).  The bearer's traffic is metered against
        ``plmn`` when it is a visited network.
        """
        identity = permanent_identity(imsi, mnc_length=mnc_length)
        peer = EapAkaPrimePeer(identity=identity, usim=usim, network_name=network_name)
        first: dict[str, Any] = {
            "eap-id": identity.decode("ascii"),
            "purpose": EapPurpose.ATTACH.value,
            "service": Service.DATA.value,
        }
        if plmn is not None:
            first["plmn"] = check_plmn(plmn)
        answer = await self._eap(peer, first)
        return answer.text("bearer", max_length=64)

    async def cells(self) -> list[VisibleNetwork]:
        """The operator's simulated radio on air now (``network/cells``), strongest first."""
        _, answer = await self._call("network/cells", {})
        cells = answer.obj.get("cells")
        if not isinstance(cells, list):
            raise DecodeError("cells: a list", type_name="network/cells")
        try:
            return [VisibleNetwork.from_json(c) for c in cells]
        except UsageError as exc:
            raise DecodeError(f"cells: {exc}", type_name="network/cells") from None

    async def use(self, bearer: str, octets: int) -> UsageResult:
        """Carry ``octets`` on a bearer; what the network carried (``refusal`` if not all)."""
        _, answer = await self._call("network/use", {"bearer": bearer, "octets": octets})
        return usage_result_from_json(answer.obj)

    async def usage(self, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
        """The pool's usage view as JSON (:func:`rspfed.federation.wire.usage_view_to_json`)."""
        _, answer = await self._call("usage", {}, key=key)
        if not isinstance(answer.obj, dict):  # pragma: no cover - parse_body gives objects
            raise DecodeError("usage answer: not an object")
        return answer.obj

    async def usage_state(
        self, key: ec.EllipticCurvePrivateKey, since: int = 0
    ) -> tuple[LedgerState, int]:
        """The ledger delta written after version ``since`` (all for 0), and the version."""
        _, answer = await self._call("usage/state", {"since": since}, key=key)
        return decode_state(answer.b64("state")), answer.number("version")

    async def report_usage(self, key: ec.EllipticCurvePrivateKey, batch: bytes) -> int:
        """Send a signed device batch (DER); how many counters grew at the operator."""
        _, answer = await self._call("usage/report", {"batch": b64(batch)}, key=key)
        return answer.number("merged")

    async def alerts(self, key: ec.EllipticCurvePrivateKey) -> list[FiredAlert]:
        """Alerts queued for the signing device (until acknowledged)."""
        _, answer = await self._call("alerts", {}, key=key)
        return answer.items("alerts", fired_alert_from_json)

    async def ack_alerts(self, key: ec.EllipticCurvePrivateKey, ids: Sequence[bytes]) -> int:
        """Acknowledge alerts by id; how many were pending."""
        _, answer = await self._call("alerts/ack", {"ids": [bytes(i).hex() for i in ids]}, key=key)
        return answer.number("acked")


async def sync_usage(
    client: OperatorClient,
    key: ec.EllipticCurvePrivateKey,
    replica: LedgerState,
    *,
    since: int = 0,
) -> tuple[LedgerState, int]:
    """Bring a device's ledger replica up to date through the operator.

    Fetches the delta written after version ``since`` (0: the whole state, a
    device back from a period offline catches up in one message) and merges
    it into ``replica`` in place.  Returns what grew in the replica and the
    operator's version: pass it as ``since`` next time.  Merging is
    idempotent, so a lost version only costs a larger answer.
    """
    delta, version = await client.usage_state(key, since)
    return replica.merge(delta), version


async def scan(clients: Sequence[OperatorClient]) -> list[VisibleNetwork]:
    """What a device sees: every operator's cells on air now (``network/cells``).

    The union of the operators' answers (asked concurrently), one entry per
    ``(PLMN, RAT)`` (the strongest when several operators simulate it),
    strongest first (ties by PLMN, then RAT).  An operator that cannot be
    reached (:class:`~rspfed.errors.TransportError`) contributes nothing, as
    a network out of range would; any other error is raised.  With no
    operator reachable at all the result is empty.
    """
    answers = await asyncio.gather(*(c.cells() for c in clients), return_exceptions=True)
    best: dict[tuple[str, str], VisibleNetwork] = {}
    for answer in answers:
        if isinstance(answer, TransportError):
            continue
        if isinstance(answer, BaseException):
            raise answer
        for net in answer:
            key = (net.plmn, net.rat.value)
            old = best.get(key)
            if old is None or net.signal_dbm > old.signal_dbm:
                best[key] = net
    return sorted(best.values(), key=lambda v: (-v.signal_dbm, v.plmn, v.rat.value))
