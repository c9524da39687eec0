"""The whole federation story over real HTTPS on loopback, with real software eUICCs.

Subscribe (core) → the phone downloads and enables its profile over HTTPS →
registers its federation key with EAP-AKA' via its USIM over HTTPS → signs a
token for a laptop → the laptop redeems it, downloads its own linked profile
over HTTPS → attaches with data (voice refused by the network) → the phone
removes the laptop → the laptop's attach is refused.  Then the cloud join
(request, list, approve, collect) over HTTPS.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import (
    AuthorizationError,
    TokenConsumedError,
)
from rspfed.federation import DeviceClass, Service, issue_token
from rspfed.federation.client import OperatorClient
from rspfed.federation.types import DeviceRole, DeviceState, JoinState
from rspfed.network import NetworkRefusedError, RefusalReason
from rspfed.pki.testpki import TestPki
from rspfed.smdp import ItemState
from tests.federation_http.conftest import (
    GB,
    PLAN,
    download_and_enable,
    make_euicc,
    make_operator_dir,
    running,
    tls_for,
    usim_of,
)


def token_for(
    key: ec.EllipticCurvePrivateKey,
    subscription_id: str,
    eid: str,
    device_class: DeviceClass,
    services: frozenset[Service] = frozenset({Service.DATA}),
) -> bytes:
    return issue_token(
        primary_key=key,
        subscription_id=subscription_id,
        eid=eid,
        device_class=device_class,
        services=services,
        quota=GB,
        now=datetime.now(UTC),
        rand=os.urandom,
    )


def test_phone_and_laptop_over_https(tmp_path: Path, pki: TestPki) -> None:
    directory = make_operator_dir(tmp_path, pki)
    phone = make_euicc(tmp_path, pki, "phone")
    laptop = make_euicc(tmp_path, pki, "laptop")

    async def story() -> None:
        async with running(directory) as server:
            sub, enrolment = server.operator.subscribe("ts48", PLAN)
            assert enrolment.activation_code.startswith(f"LPA:1${directory.address}$")

            # the phone downloads and enables its profile over HTTPS
            iccid = await download_and_enable(phone, enrolment.activation_code)
            assert iccid == enrolment.iccid
            # the install notification reached the operator: the device is active
            item = server.operator.smdp.item(iccid)
            assert item is not None
            assert item.state is ItemState.INSTALLED
            # read from the store, no operator call in between: the after-ES9+ sync did it
            [recorded] = server.operator.store.devices(sub.id)
            assert recorded.state is DeviceState.ACTIVE
            assert recorded.eid == phone.eid

            phone_key = ec.generate_private_key(ec.SECP256R1())
            async with OperatorClient(server.url, ssl_context=tls_for(phone)) as op:
                device = await op.register(**usim_of(phone), eid=phone.eid, key=phone_key)
                assert device.role is DeviceRole.PRIMARY
                assert device.state is DeviceState.ACTIVE
                assert device.eid == phone.eid
                assert device.iccid == iccid
                assert await op.attach(**usim_of(phone), service=Service.VOICE) >= {
                    Service.DATA,
                    Service.VOICE,
                }
                token = token_for(phone_key, sub.id, laptop.eid, DeviceClass.LAPTOP)

            # the laptop redeems the token and downloads its own linked profile
            async with OperatorClient(server.url, ssl_context=tls_for(laptop)) as lop:
                linked = await lop.redeem(token, laptop.eid, name="Ana's laptop")
                assert linked.iccid != iccid
                assert linked.expires is not None
                assert await lop.redeem(token, laptop.eid) == linked  # same order again
                laptop_iccid = await download_and_enable(laptop, linked.activation_code)
                assert laptop_iccid == linked.iccid
                with pytest.raises(TokenConsumedError):
                    await lop.redeem(token, laptop.eid)
                # the network: data yes, voice no
                assert await lop.attach(**usim_of(laptop), service=Service.DATA) == {Service.DATA}
                with pytest.raises(NetworkRefusedError) as refused:
                    await lop.attach(**usim_of(laptop), service=Service.VOICE)
                assert refused.value.reason is RefusalReason.SERVICE_NOT_ALLOWED
                # its own device key, and its own status
                laptop_key = ec.generate_private_key(ec.SECP256R1())
                laptop_device = await lop.register(
                    **usim_of(laptop), eid=laptop.eid, key=laptop_key
                )
                assert laptop_device.role is DeviceRole.SECONDARY
                assert (await lop.status(laptop_key)).iccid == laptop_iccid
                with pytest.raises(AuthorizationError):
                    await lop.devices(laptop_key)

            # the phone lists and removes the laptop
            async with OperatorClient(server.url, ssl_context=tls_for(phone)) as op:
                devices = {d.device_class: d for d in await op.devices(phone_key)}
                assert set(devices) == {DeviceClass.PHONE, DeviceClass.LAPTOP}
                assert devices[DeviceClass.LAPTOP].token_consumed
                assert devices[DeviceClass.LAPTOP].name == "Ana's laptop"  # named at redemption
                assert devices[DeviceClass.LAPTOP].device_key_id == laptop_device.device_key_id
                removed = await op.remove(phone_key, laptop_device.id)
                assert removed.state is DeviceState.REMOVED

            async with OperatorClient(server.url, ssl_context=tls_for(laptop)) as lop:
                with pytest.raises(NetworkRefusedError) as refused:
                    await lop.attach(**usim_of(laptop))
                assert refused.value.reason is RefusalReason.REMOVED
                # its key still answers status, so it learns to delete its profile
                assert (await lop.status(laptop_key)).state is DeviceState.REMOVED
                with pytest.raises(AuthorizationError):
                    await lop.devices(laptop_key)

    asyncio.run(story())


def test_cloud_join_over_https(tmp_path: Path, pki: TestPki) -> None:
    directory = make_operator_dir(tmp_path, pki)
    phone = make_euicc(tmp_path, pki, "phone")
    tablet = make_euicc(tmp_path, pki, "tablet")

    async def story() -> None:
        async with running(directory) as server:
            sub, enrolment = server.operator.subscribe("ts48", PLAN)
            await download_and_enable(phone, enrolment.activation_code)
            key = ec.generate_private_key(ec.SECP256R1())
            async with OperatorClient(server.url, ssl_context=tls_for(phone)) as op:
                await op.register(**usim_of(phone), eid=phone.eid, key=key)
                async with OperatorClient(server.url, ssl_context=tls_for(tablet)) as top:
                    ticket = await top.join(sub.id, tablet.eid, DeviceClass.TABLET, "my tablet")
                    assert ticket.request.state is JoinState.PENDING
                    assert await top.collect(ticket.request.id, ticket.secret) is None
                    [pending] = await op.requests(key)
                    assert pending == ticket.request
                    token = token_for(
                        key,
                        sub.id,
                        pending.eid,
                        pending.device_class,
                        frozenset({Service.DATA, Service.VOICE}),
                    )
                    approved = await op.approve(key, pending.id, token)
                    assert approved.state is JoinState.APPROVED
                    with pytest.raises(AuthorizationError):
                        await top.collect(ticket.request.id, "wrong secret")
                    got = await top.collect(ticket.request.id, ticket.secret)
                    assert got is not None
                    await download_and_enable(tablet, got.activation_code)
                    services = await top.attach(**usim_of(tablet), service=Service.VOICE)
                    assert Service.VOICE in services
                    assert await op.requests(key) == []

    asyncio.run(story())
