"""The pool over real HTTPS: attach for data, traffic, quota refusal, alerts, usage sync."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import AuthorizationError, ReplayError
from rspfed.federation import DeviceClass, Service, issue_token
from rspfed.federation.client import OperatorClient, sync_usage
from rspfed.federation.http import POOL_KEY
from rspfed.federation.ledger import (
    LedgerState,
    SourceKind,
    UsageRecord,
    period_usage,
    sign_device_batch,
)
from rspfed.federation.types import Plan
from rspfed.network import NetworkRefusedError, RefusalReason
from rspfed.pki.testpki import TestPki
from tests.federation_http.conftest import (
    download_and_enable,
    make_euicc,
    make_operator_dir,
    running,
    tls_for,
    usim_of,
)

MB = 1 << 20
PLAN = Plan(pool_bytes=1000 * MB, device_limit=4)


def test_attach_use_alerts_and_sync_over_https(tmp_path: Path, pki: TestPki) -> None:
    directory = make_operator_dir(tmp_path, pki)
    phone = make_euicc(tmp_path, pki, "phone")
    laptop = make_euicc(tmp_path, pki, "laptop")

    async def story() -> None:
        async with running(directory) as server:
            sub, enrolment = server.operator.subscribe("ts48", PLAN)
            await download_and_enable(phone, enrolment.activation_code)
            phone_key = ec.generate_private_key(ec.SECP256R1())
            laptop_key = ec.generate_private_key(ec.SECP256R1())
            async with OperatorClient(server.url, ssl_context=tls_for(phone)) as op:
                await op.register(**usim_of(phone), eid=phone.eid, key=phone_key)
                token = issue_token(
                    primary_key=phone_key,
                    subscription_id=sub.id,
                    eid=laptop.eid,
                    device_class=DeviceClass.LAPTOP,
                    services=frozenset({Service.DATA}),
                    quota=300 * MB,
                    now=datetime.now(UTC),
                    rand=os.urandom,
                )
                async with OperatorClient(server.url, ssl_context=tls_for(laptop)) as lop:
                    linked = await lop.redeem(token, laptop.eid)
                    await download_and_enable(laptop, linked.activation_code)
                    device = await lop.register(**usim_of(laptop), eid=laptop.eid, key=laptop_key)

                    bearer = await lop.attach_data(**usim_of(laptop))
                    first = await lop.use(bearer, 200 * MB)
                    assert first.carried == 200 * MB
                    assert first.refusal is None
                    second = await lop.use(bearer, 200 * MB)  # the quota is 300 MB
                    assert second.carried == 100 * MB
                    assert second.refusal is RefusalReason.QUOTA_EXHAUSTED
                    phone_bearer = await op.attach_data(**usim_of(phone))
                    assert (await op.use(phone_bearer, 50 * MB)).carried == 50 * MB

                    # the laptop's own counters, signed
                    period = server.app[POOL_KEY].period(sub.id).id
                    batch = sign_device_batch(
                        device_key=laptop_key,
                        subscription_id=sub.id,
                        device_id=device.id,
                        sequence=1,
                        records=[
                            UsageRecord(SourceKind.DEVICE, device.id, device.iccid, period, 0, 1)
                        ],
                    )
                    assert await lop.report_usage(laptop_key, batch) == 1
                    with pytest.raises(ReplayError):
                        await lop.report_usage(laptop_key, batch)
                    phone_device = next(
                        d for d in server.operator.store.devices(sub.id) if d.id != device.id
                    )
                    phone_batch = sign_device_batch(
                        device_key=phone_key,
                        subscription_id=sub.id,
                        device_id=phone_device.id,
                        sequence=1,
                        records=[
                            UsageRecord(
                                SourceKind.DEVICE, phone_device.id, phone_device.iccid, period, 0, 9
                            )
                        ],
                    )
                    with pytest.raises(AuthorizationError):  # the laptop posting the phone's
                        await lop.report_usage(laptop_key, phone_batch)
                    with pytest.raises(NetworkRefusedError) as refused:
                        await lop.use("b" + "0" * 32, 1)
                    assert refused.value.reason is RefusalReason.NO_BEARER

                    # alerts: the laptop's 50/75/90/100 % of quota, to it and to the primary
                    got = await lop.alerts(laptop_key)
                    assert sorted(a.threshold for a in got) == [50, 75, 90, 100]
                    assert await lop.ack_alerts(laptop_key, [a.id for a in got]) == 4
                    assert await lop.alerts(laptop_key) == []
                    phone_alerts = await op.alerts(phone_key)
                    assert {a.id for a in got} <= {a.id for a in phone_alerts}

                    # usage sync: both replicas converge to the operator's state
                    replicas = [LedgerState(sub.id), LedgerState(sub.id)]
                    versions = [0, 0]
                    for i, (client, key) in enumerate(((op, phone_key), (lop, laptop_key))):
                        _, versions[i] = await sync_usage(client, key, replicas[i])
                    assert replicas[0] == replicas[1]
                    assert period_usage(replicas[0], period).total == 350 * MB
                    assert (await op.use(phone_bearer, MB)).carried == MB
                    delta, _ = await sync_usage(op, phone_key, replicas[0], since=versions[0])
                    assert 0 < len(delta.counters) <= 1
                    assert period_usage(replicas[0], period).total == 351 * MB

                    view = await op.usage(phone_key)
                    assert view["pool"]["used"] == 351 * MB
                    lines = {d["name"]: d for d in view["devices"]}
                    assert lines["phone"]["used"] == 51 * MB
                    laptop_line = next(d for d in view["devices"] if d["role"] == "secondary")
                    assert laptop_line["data"] == "barred"
                    assert laptop_line["reported"] == 1
                    mine = await lop.usage(laptop_key)
                    assert [d["device-id"] for d in mine["devices"]] == [device.id]

    asyncio.run(story())
