"""serve_operator: worker processes sharing the port and the stores, plain HTTP, passphrase;
and the server's background reconciliation (a lapsed order is cancelled without any call)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import DecodeError, NotFoundError, UsageError
from rspfed.federation import DeviceClass, Service, issue_token
from rspfed.federation.client import OperatorClient, operator_tls_context
from rspfed.federation.datadir import close_operator, open_operator
from rspfed.federation.http import serve_operator
from rspfed.federation.types import DeviceState, OperatorConfig
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
    data: Path, *, workers: int = 1, tls: bool = True, passphrase: bytes | None = None
) -> tuple[asyncio.Task[None], asyncio.Event, int]:
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve_operator(
            data, port=0, ready=ready.set_result, stop=stop, workers=workers, tls=tls,
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


def test_two_workers_share_the_stores(tmp_path: Path, pki: TestPki) -> None:
    directory = make_operator_dir(tmp_path, pki)
    directory.sock.close()
    op = open_operator(directory.data)
    try:
        sub, _ = op.subscribe("ts48", PLAN)
    finally:
        close_operator(op)
    tablet = make_euicc(tmp_path, pki, "tablet")

    async def run() -> None:
        task, stop, port = await _serving(directory.data, workers=2)
        try:
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
