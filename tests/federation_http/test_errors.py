"""Refusals over HTTPS: each comes back as its own RspfedError class with the right status.

Raw requests (aiohttp) check the status and body; :class:`OperatorClient`
checks that the client raises the very class the core raised.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import (
    DecodeError,
    DeviceLimitError,
    NotFoundError,
    ProtocolError,
    RspfedError,
    SignatureError,
    StateError,
    TokenEidMismatchError,
    TokenExpiredError,
    TransportError,
    UntrustedCertificateError,
)
from rspfed.euicc.euicc import Euicc
from rspfed.federation import DeviceClass, Service, issue_token
from rspfed.federation.client import OperatorClient, operator_tls_context
from rspfed.federation.operator import TokenScopeError
from rspfed.federation.signing import sign_request
from rspfed.federation.types import Plan
from rspfed.federation.wire import dump
from rspfed.network import NetworkRefusedError, RefusalReason
from rspfed.pki.testpki import TestPki
from tests.federation_http.conftest import (
    GB,
    PLAN,
    Running,
    download_and_enable,
    make_euicc,
    make_operator_dir,
    running,
    tls_for,
    usim_of,
)

API = "/rspfed/v1"


@attrs.define
class Primary:
    server: Running
    phone: Euicc
    key: ec.EllipticCurvePrivateKey
    subscription_id: str
    tls: ssl.SSLContext

    def token(self, eid: str, device_class: DeviceClass = DeviceClass.LAPTOP, **kw: Any) -> bytes:
        args: dict[str, Any] = {
            "primary_key": self.key,
            "subscription_id": self.subscription_id,
            "eid": eid,
            "device_class": device_class,
            "services": frozenset({Service.DATA}),
            "quota": GB,
            "now": datetime.now(UTC),
            "rand": os.urandom,
        }
        args.update(kw)
        return issue_token(**args)

    def client(self) -> OperatorClient:
        return OperatorClient(self.server.url, ssl_context=self.tls)

    async def raw(
        self, route: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"
    ) -> tuple[int, Any, dict[str, str]]:
        sent = {"Content-Type": "application/json"} | (headers or {})
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, self.server.url + API + "/" + route, data=body, headers=sent, ssl=self.tls
            ) as response,
        ):
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                answer = None
            return response.status, answer, dict(response.headers)

    def signed(self, route: str, body: bytes, **kw: Any) -> dict[str, str]:
        args: dict[str, Any] = {"now": datetime.now(UTC), "nonce": os.urandom(16)} | kw
        header = sign_request(self.key, method="POST", path=f"{API}/{route}", body=body, **args)
        return {"Authorization": header}


@asynccontextmanager
async def primary(tmp: Path, pki: TestPki, plan: Plan = PLAN) -> AsyncIterator[Primary]:
    directory = make_operator_dir(tmp, pki)
    phone = make_euicc(tmp, pki, "phone")
    async with running(directory) as server:
        sub, enrolment = server.operator.subscribe("ts48", plan)
        await download_and_enable(phone, enrolment.activation_code)
        key = ec.generate_private_key(ec.SECP256R1())
        tls = tls_for(phone)
        async with OperatorClient(server.url, ssl_context=tls) as op:
            await op.register(**usim_of(phone), eid=phone.eid, key=key)
        yield Primary(server, phone, key, sub.id, tls)


def error_of(answer: Any) -> str:
    assert isinstance(answer, dict)
    error = answer["error"]
    assert set(error) >= {"type", "message"}
    assert isinstance(error["message"], str)
    return str(error["type"])


async def raises(kind: type[RspfedError], call: Awaitable[Any]) -> RspfedError:
    with pytest.raises(kind) as info:
        await call
    assert type(info.value) is kind, type(info.value)
    return info.value


def test_refusals_map_to_their_classes(tmp_path: Path, pki: TestPki) -> None:
    other = make_euicc(tmp_path, pki, "other")
    third = make_euicc(tmp_path, pki, "third")

    async def body() -> None:
        plan = Plan(pool_bytes=20 * GB, device_limit=2)
        async with primary(tmp_path, pki, plan) as p, p.client() as op:
            # token refusals
            stranger = ec.generate_private_key(ec.SECP256R1())
            forged = p.token(other.eid, primary_key=stranger)
            await raises(SignatureError, op.redeem(forged, other.eid))
            await raises(TokenEidMismatchError, op.redeem(p.token(other.eid), third.eid))
            old = datetime.now(UTC) - timedelta(hours=2)
            await raises(TokenExpiredError, op.redeem(p.token(other.eid, now=old), other.eid))
            voice = p.token(other.eid, services=frozenset({Service.DATA, Service.VOICE}))
            await raises(TokenScopeError, op.redeem(voice, other.eid))
            await raises(DecodeError, op.redeem(b"\x30\x03\x02\x01\x01", other.eid))
            # unknown things
            await raises(NotFoundError, op.join("snope", other.eid, DeviceClass.TABLET, "t"))
            await raises(NotFoundError, op.collect("rnope", "secret"))
            await raises(NotFoundError, op.remove(p.key, "dnope"))
            # state: the primary cannot be removed
            [me] = await op.devices(p.key)
            await raises(StateError, op.remove(p.key, me.id))
            # the device limit (2: the phone and one more)
            await op.redeem(p.token(other.eid), other.eid)
            await raises(DeviceLimitError, op.redeem(p.token(third.eid), third.eid))
            # the network: an unknown IMSI, registration for another eUICC's profile
            usim = usim_of(p.phone)
            refused = await raises(
                NetworkRefusedError,
                op.attach(usim=usim["usim"], imsi="001019999999999", mnc_length=2),
            )
            assert isinstance(refused, NetworkRefusedError)
            assert refused.reason is RefusalReason.UNKNOWN_SUBSCRIBER
            await raises(
                TokenEidMismatchError,
                op.register(**usim, eid=other.eid, key=ec.generate_private_key(ec.SECP256R1())),
            )

    asyncio.run(body())


def test_malformed_requests_are_400(tmp_path: Path, pki: TestPki) -> None:
    async def body() -> None:
        async with primary(tmp_path, pki) as p:
            eid = p.phone.eid
            cases: list[tuple[str, bytes]] = [
                ("redeem", b"{not json"),
                ("redeem", b"[1, 2]"),
                ("redeem", b"\xff\xff"),
                ("redeem", dump({"token": "a+b/", "eid": eid})),
                ("redeem", dump({"token": "AAAA====", "eid": eid})),
                ("redeem", dump({"eid": eid})),
                ("redeem", dump({"token": 5, "eid": eid})),
                (
                    "join",
                    dump(
                        {"subscription-id": "s", "eid": eid, "device-class": "toaster", "name": "x"}
                    ),
                ),
                ("join/collect", dump({"request-id": "r"})),
                ("eap", dump({"session": "x", "eap-relay-packet": "not base64!"})),
                ("eap", dump({"eap-id": "6001010000000001@x", "purpose": "dance"})),
                ("eap", dump({"eap-id": "not a NAI", "purpose": "attach"})),
            ]
            for route, raw in cases:
                status, answer, _ = await p.raw(route, raw)
                assert (status, error_of(answer)) == (400, "DecodeError"), (route, raw, answer)
            status, answer, _ = await p.raw("redeem", b"{}", {"Content-Type": "text/plain"})
            assert (status, error_of(answer)) == (415, "DecodeError")
            status, answer, _ = await p.raw("nothing", b"{}")
            assert (status, error_of(answer)) == (404, "NotFoundError")
            status, answer, headers = await p.raw("redeem", b"", method="GET")
            assert (status, error_of(answer), headers["Allow"]) == (405, "UsageError", "POST")
            status, answer, _ = await p.raw("redeem", b"{" + b" " * (2 << 20) + b"}")
            assert (status, error_of(answer)) == (413, "DecodeError")
            # an unknown EAP session
            status, answer, _ = await p.raw(
                "eap", dump({"session": "nope", "eap-relay-packet": "AgEABA=="})
            )
            assert (status, error_of(answer)) == (404, "NotFoundError")
            # the SM-DP+'s routes keep their SGP.22 answers
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    p.server.url + "/gsma/rsp2/es9plus/initiateAuthentication",
                    data=b"{",
                    headers={
                        "Content-Type": "application/json",
                        "X-Admin-Protocol": "gsma/rsp/v2.2.0",
                    },
                    ssl=p.tls,
                ) as response,
            ):
                assert response.status == 400
                assert "header" in await response.json()

    asyncio.run(body())


def test_signed_requests(tmp_path: Path, pki: TestPki) -> None:
    async def body() -> None:
        async with primary(tmp_path, pki) as p:
            # unsigned
            status, answer, headers = await p.raw("devices", b"{}")
            assert (status, error_of(answer)) == (401, "SignatureError")
            assert headers["WWW-Authenticate"] == "RSPFED-SIG1"
            # signed: fine once, replayed: ReplayError
            signed = p.signed("devices", b"{}")
            status, answer, _ = await p.raw("devices", b"{}", signed)
            assert status == 200
            assert len(answer["devices"]) == 1
            status, answer, _ = await p.raw("devices", b"{}", signed)
            assert (status, error_of(answer)) == (401, "ReplayError")
            # the body or the route changed under the signature
            signed = p.signed("devices", b"{}")
            status, answer, _ = await p.raw("devices", b"{ }", signed)
            assert (status, error_of(answer)) == (401, "SignatureError")
            status, answer, _ = await p.raw("requests", b"{}", p.signed("devices", b"{}"))
            assert (status, error_of(answer)) == (401, "SignatureError")
            # stale, malformed, unknown key
            stale = p.signed("devices", b"{}", now=datetime.now(UTC) - timedelta(hours=1))
            status, answer, _ = await p.raw("devices", b"{}", stale)
            assert (status, error_of(answer)) == (401, "ProtocolError")
            bad = {"Authorization": "RSPFED-SIG1 keyId=zz"}
            status, answer, _ = await p.raw("devices", b"{}", bad)
            assert (status, error_of(answer)) == (401, "DecodeError")
            stranger = ec.generate_private_key(ec.SECP256R1())
            header = sign_request(
                stranger, method="POST", path=f"{API}/devices", body=b"{}",
                now=datetime.now(UTC), nonce=os.urandom(16),
            )  # fmt: skip
            status, answer, _ = await p.raw("devices", b"{}", {"Authorization": header})
            assert (status, error_of(answer)) == (401, "SignatureError")
            # a signed request whose body is malformed: authenticated, then 400
            raw = b'{"token-id": "XYZ"}'
            status, answer, _ = await p.raw("revoke", raw, p.signed("revoke", raw))
            assert (status, error_of(answer)) == (400, "DecodeError")
            # the client: every signed call works and a revoke of nothing cancels nothing
            async with p.client() as op:
                assert await op.requests(p.key) == []
                assert await op.revoke(p.key, bytes(16)) == 0
                assert await op.revoke(p.key) == 0
                assert (await op.status(p.key)).eid == p.phone.eid
                await raises(SignatureError, op.devices(stranger))

    asyncio.run(body())


def test_transport_and_tls_failures(tmp_path: Path, pki: TestPki) -> None:
    async def body() -> None:
        async with primary(tmp_path, pki) as p:
            # a client that trusts no CI of ours: the TLS certificate is refused
            other_pki = TestPki.create(tmp_path / "other-pki", now=datetime.now(UTC))
            from cryptography.hazmat.primitives.serialization import Encoding

            from rspfed.crypto.curves import Curve

            foreign = other_pki.material(Curve.NIST).ci.public_bytes(Encoding.DER)
            ctx = operator_tls_context("localhost", trust=[foreign])
            async with OperatorClient(p.server.url, ssl_context=ctx) as op:
                await raises(UntrustedCertificateError, op.devices(p.key))
            # without a context: the system CAs do not know the test CI either
            async with OperatorClient(p.server.url) as op:
                with pytest.raises(RspfedError):
                    await op.devices(p.key)
            # plain HTTP against the TLS server
            url = p.server.url.replace("https://", "http://")
            async with OperatorClient(url) as op:
                with pytest.raises((TransportError, ProtocolError)):
                    await op.devices(p.key)
        # nobody listening any more
        async with OperatorClient(p.server.url, ssl_context=p.tls) as op:
            await raises(TransportError, op.devices(p.key))

    asyncio.run(body())
