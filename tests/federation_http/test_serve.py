"""serve_operator: worker processes sharing the port and the stores, plain HTTP, passphrase;
and the server's background reconciliation (a lapsed order is cancelled without any call)."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from rspfed.eap import EapAkaPrimePeer
from rspfed.errors import DecodeError, NotFoundError, UsageError
from rspfed.euicc.euicc import Euicc
from rspfed.federation import DeviceClass, Service, issue_token
from rspfed.federation.client import OperatorClient, operator_tls_context
from rspfed.federation.datadir import close_operator, open_operator
from rspfed.federation.http import serve_operator
from rspfed.federation.types import DeviceState, OperatorConfig
from rspfed.federation.wire import b64, b64url, dump
from rspfed.network.nai import permanent_identity
from rspfed.network.usim import eap_usim, read_usim_identity
from rspfed.pki.testpki import TestPki
from rspfed.smdp import ItemState
from tests.federation_http.conftest import (
    GB,
    PLAN,
    ci_der,
    download_and_enable,
    make_euicc,
    make_operator_dir,
    running,
    tls_for,
    usim_of,
)


async def _serving(
    data: Path,
    *,
    workers: int = 1,
    tls: bool = True,
    passphrase: bytes | None = None,
    port: int = 0,
) -> tuple[asyncio.Task[None], asyncio.Event, int]:
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve_operator(
            data, port=port, ready=ready.set_result, stop=stop, workers=workers, tls=tls,
            passphrase=passphrase,
        )
    )  # fmt: skip
    for _ in range(3000):
        if ready.done():
            return task, stop, ready.result()
        if task.done():
            task.result()  # raises the start-up error
            break
        await asyncio.sleep(0.02)
    raise AssertionError("the server did not start")


JSON = {"Content-Type": "application/json"}


def _listeners(port: int) -> int:
    """Sockets listening on 127.0.0.1:``port`` (each SO_REUSEPORT worker has its own)."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1:4:2] == [f"0100007F:{port:04X}", "0A"])


async def _relay_eap(url: str, context: ssl.SSLContext, phone: Euicc, key: bytes) -> Any:
    """EAP-AKA' registration with every message on a new TLS connection (so the kernel
    spreads them over the workers); the final answer."""
    imsi, mnc = read_usim_identity(phone.card)
    identity = permanent_identity(imsi, mnc_length=mnc)
    peer = EapAkaPrimePeer(identity=identity, usim=eap_usim(phone.card), federation_key=key)
    request: dict[str, Any] = {"eap-id": identity.decode(), "purpose": "register", "eid": phone.eid}
    for _ in range(4):
        connector = aiohttp.TCPConnector(ssl=context, force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(f"{url}/rspfed/v1/eap", data=dump(request), headers=JSON) as response,
        ):
            answer = await response.json()
            assert response.status == 200, answer
        reply = peer.receive(base64.b64decode(answer["eap-relay-packet"]))
        if reply is None:
            assert answer["done"]
            return answer
        request = {"session": answer["session"], "eap-relay-packet": b64(reply)}
    raise AssertionError("the exchange did not end")


def test_two_workers_share_the_stores(tmp_path: Path, pki: TestPki) -> None:
    directory = make_operator_dir(tmp_path, pki)
    directory.sock.close()  # the workers listen on the address's port
    op = open_operator(directory.data)
    try:
        sub, enrolment = op.subscribe("ts48", PLAN)
    finally:
        close_operator(op)
    tablet = make_euicc(tmp_path, pki, "tablet")
    phone = make_euicc(tmp_path, pki, "phone")

    async def run() -> None:
        task, stop, port = await _serving(directory.data, workers=2, port=directory.port)
        try:
            assert _listeners(port) == 2
            url = f"https://localhost:{port}"
            context = operator_tls_context("localhost", trust=[ci_der(pki)])
            tickets = []
            for i in range(6):  # a new connection each time: spread over the workers
                async with OperatorClient(url, ssl_context=context) as client:
                    ticket = await client.join(sub.id, tablet.eid, DeviceClass.TABLET, f"t{i}")
                    tickets.append(ticket)
            assert len({t.request.id for t in tickets}) == 6
            for ticket in tickets:  # every worker sees every request
                async with OperatorClient(url, ssl_context=context) as client:
                    assert await client.collect(ticket.request.id, ticket.secret) is None
                    with pytest.raises(NotFoundError):
                        await client.join("snope", tablet.eid, DeviceClass.TABLET, "x")
            # a download, then EAP-AKA' registrations whose messages hop between workers
            await download_and_enable(phone, enrolment.activation_code)
            for _ in range(3):
                key = ec.generate_private_key(ec.SECP256R1())
                point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
                answer = await _relay_eap(url, context, phone, point)
                assert answer["device"]["device-key"] == b64url(point)
                async with OperatorClient(url, ssl_context=context) as client:
                    assert (await client.status(key)).device_key == point
        finally:
            stop.set()
            await task

    asyncio.run(run())


def test_plain_http_and_passphrase(tmp_path: Path, pki: TestPki) -> None:
    directory = make_operator_dir(tmp_path, pki, passphrase=b"pw")
    directory.sock.close()

    async def run() -> None:
        with pytest.raises(UsageError, match="passphrase"):
            await _serving(directory.data, passphrase=b"wrong")
        task, stop, port = await _serving(directory.data, passphrase=b"pw", tls=False)
        try:
            async with OperatorClient(f"http://127.0.0.1:{port}") as client:
                with pytest.raises(DecodeError, match="EID"):
                    await client.join("snope", "8" * 32, DeviceClass.TABLET, "x")
        finally:
            stop.set()
            await task

    asyncio.run(run())


def test_background_sync_lapses_an_order(tmp_path: Path, pki: TestPki) -> None:
    config = OperatorConfig(order_ttl=timedelta(seconds=1))
    directory = make_operator_dir(tmp_path, pki, config=config)
    phone = make_euicc(tmp_path, pki, "phone")
    laptop = make_euicc(tmp_path, pki, "laptop")

    async def run() -> None:
        async with running(directory, sync_interval=0.1) as server:
            sub, enrolment = server.operator.subscribe("ts48", PLAN)
            await download_and_enable(phone, enrolment.activation_code)
            key = ec.generate_private_key(ec.SECP256R1())
            async with OperatorClient(server.url, ssl_context=tls_for(phone)) as client:
                await client.register(**usim_of(phone), eid=phone.eid, key=key)
                token = issue_token(
                    primary_key=key, subscription_id=sub.id, eid=laptop.eid,
                    device_class=DeviceClass.LAPTOP, services=frozenset({Service.DATA}),
                    quota=GB, now=datetime.now(UTC), rand=os.urandom,
                )  # fmt: skip
                linked = await client.redeem(token, laptop.eid)
            store = server.operator.store
            states = sorted(d.state.value for d in store.devices(sub.id))
            assert states == ["active", "ordered"]
            # nobody calls the operator: the background task cancels the order
            for _ in range(60):
                await asyncio.sleep(0.1)
                if len(store.devices(sub.id)) == 1:
                    break
            assert [d.state for d in store.devices(sub.id)] == [DeviceState.ACTIVE]
            item = server.operator.smdp.item(linked.iccid)
            assert item is not None
            assert item.state is ItemState.AVAILABLE

    asyncio.run(run())
