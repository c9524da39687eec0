"""OperatorClient against odd servers (malformed answers, 5xx, unknown errors), its URL
checks, and an EAP-AKA' resynchronisation relayed over HTTPS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import (
    DecodeError,
    ProtocolError,
    TokenExpiredError,
    TransportError,
    UsageError,
)
from rspfed.federation import DeviceClass, Service
from rspfed.federation.client import OperatorClient
from rspfed.federation.datadir import open_network_store
from rspfed.network import NetworkRefusedError, RefusalReason
from rspfed.pki.testpki import TestPki
from tests.federation_http.conftest import (
    PLAN,
    download_and_enable,
    make_euicc,
    make_operator_dir,
    running,
    tls_for,
    usim_of,
)

ANSWERS: dict[str, tuple[int, bytes]] = {
    "redeem": (200, b"not json"),
    "join": (200, b'{"request": {"request-id": "r"}, "secret": "s"}'),
    "join/collect": (500, b"<html>oops</html>"),
    "requests": (418, b'{"error": {"type": "TeapotError", "message": "short and stout"}}'),
    "devices": (403, b'{"error": {"type": "TokenExpiredError", "message": "too late"}}'),
    "status": (503, b'{"error": {"type": "RspfedError", "message": "internal error"}}'),
    "remove": (200, b'{"device": 5}'),
    "revoke": (200, b'{"cancelled": "many"}'),
    "eap": (200, b'{"session": "x", "eap-relay-packet": "AwEABA==", "done": true}'),
}


@asynccontextmanager
async def odd_server() -> AsyncIterator[str]:
    app = web.Application()
    for route, (status, body) in ANSWERS.items():

        async def answer(_: web.Request, status: int = status, body: bytes = body) -> web.Response:
            return web.Response(status=status, body=body, content_type="application/json")

        app.router.add_post(f"/base/rspfed/v1/{route}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/base"
    finally:
        await runner.cleanup()


def test_odd_answers() -> None:
    key = ec.generate_private_key(ec.SECP256R1())

    async def body() -> None:
        async with odd_server() as url, OperatorClient(url) as op:
            with pytest.raises(DecodeError):
                await op.redeem(b"\x30\x00", "1" * 32)
            with pytest.raises(DecodeError):
                await op.join("s", "1" * 32, DeviceClass.TABLET, "t")
            with pytest.raises(TransportError, match="500"):
                await op.collect("r", "s")
            with pytest.raises(ProtocolError, match="TeapotError"):
                await op.requests(key)
            with pytest.raises(TokenExpiredError, match="too late"):
                await op.devices(key)
            with pytest.raises(TransportError, match="503"):
                await op.status(key)
            with pytest.raises(DecodeError):
                await op.remove(key, "d")
            with pytest.raises(DecodeError):
                await op.revoke(key)
            # an EAP-Failure for the first message: no challenge was answered
            with pytest.raises((ProtocolError, NetworkRefusedError)):
                await op.attach(usim=lambda r, a: b"", imsi="001010000000001", mnc_length=2)
            with pytest.raises(ProtocolError):  # 404 for a route the odd server lacks
                await op.approve(key, "r", b"\x30\x00")
        async with OperatorClient("http://127.0.0.1:9/") as op:  # nobody listens on 9
            with pytest.raises(TransportError):
                await op.requests(key)

    asyncio.run(body())


@pytest.mark.parametrize(
    "url", ["ftp://h", "https://", "operator.example", "https://h/x?y=1", "https://h/#f"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(UsageError):
        OperatorClient(url)


def test_key_must_be_p256() -> None:
    async def body() -> None:
        async with OperatorClient("http://127.0.0.1:9") as op:
            with pytest.raises(UsageError):
                await op.register(
                    usim=lambda r, a: b"", imsi="001010000000001", mnc_length=2,
                    eid="1" * 32, key=ec.generate_private_key(ec.SECP384R1()),
                )  # fmt: skip

    asyncio.run(body())


def test_resynchronisation_over_https(tmp_path: Path, pki: TestPki) -> None:
    """The AuC forgets its SQN: the USIM answers AUTS, the operator resynchronises and
    sends a new challenge in the same exchange, and the attach succeeds.  A device that
    rejects the challenge gets EAP-Failure: refused."""
    directory = make_operator_dir(tmp_path, pki)
    phone = make_euicc(tmp_path, pki, "phone")

    async def body() -> None:
        async with running(directory) as server:
            _, enrolment = server.operator.subscribe("ts48", PLAN)
            await download_and_enable(phone, enrolment.activation_code)
            async with OperatorClient(server.url, ssl_context=tls_for(phone)) as op:
                for _ in range(3):
                    await op.attach(**usim_of(phone))
                imsi = usim_of(phone)["imsi"]
                network = open_network_store(directory.data)
                try:
                    subscriber = network.get(imsi)
                    assert subscriber is not None
                    assert subscriber.seq_he >= 3
                    network.put(attrs.evolve(subscriber, seq_he=0, ind=0))
                finally:
                    network.close()
                rounds: list[bytes | tuple[bytes, bytes, bytes]] = []
                usim = usim_of(phone)
                inner = usim["usim"]

                def counting(rand: bytes, autn: bytes) -> bytes | tuple[bytes, bytes, bytes]:
                    rounds.append(inner(rand, autn))
                    return rounds[-1]

                usim["usim"] = counting
                assert Service.DATA in await op.attach(**usim, service=Service.DATA)
                assert [isinstance(r, bytes) for r in rounds] == [True, False]  # AUTS, then RES
                # a USIM that refuses every challenge: EAP-Failure, refused
                # a device expecting another network name rejects the challenge
                with pytest.raises(NetworkRefusedError) as refused:
                    await op.attach(**usim_of(phone), network_name=b"another network")
                assert refused.value.reason is RefusalReason.AUTHENTICATION_FAILED

    asyncio.run(body())
