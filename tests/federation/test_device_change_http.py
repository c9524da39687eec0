"""The device-change routes over real HTTPS on loopback (OperatorClient against
the real application), with real software eUICCs downloading over HTTPS and
their LPAs delivering the enable and delete notifications to the SM-DP+."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.crypto.curves import Curve
from rspfed.errors import AuthorizationError, NotFoundError, SignatureError, StateError
from rspfed.euicc.euicc import Euicc
from rspfed.federation.client import OperatorClient
from rspfed.federation.types import ChangeState, DeviceRole
from rspfed.lpa import Es9Settings, InProcessEs10, Lpa, download, store_ci_certificates
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


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(
        tmp_path_factory.mktemp("change-pki") / "pki", curves=[Curve.NIST], now=datetime.now(UTC)
    )


def _lpa(euicc: Euicc) -> Lpa:
    return Lpa(
        InProcessEs10(euicc.isdr), settings=Es9Settings(trust=store_ci_certificates(euicc.store))
    )


async def _download_disabled(euicc: Euicc, code: str) -> str:
    result = await download(
        InProcessEs10(euicc.isdr),
        code,
        settings=Es9Settings(trust=store_ci_certificates(euicc.store)),
    )
    return result.iccid


def test_device_change_over_https(tmp_path: Path, pki: TestPki) -> None:
    directory = make_operator_dir(tmp_path, pki)
    old = make_euicc(tmp_path, pki, "old")
    new = make_euicc(tmp_path, pki, "new")

    async def story() -> None:
        async with running(directory) as server:
            _sub, enrolment = server.operator.subscribe("ts48", PLAN)
            old_iccid = await download_and_enable(old, enrolment.activation_code)
            old_key = ec.generate_private_key(ec.SECP256R1())
            async with OperatorClient(server.url, ssl_context=tls_for(old)) as op:
                await op.register(**usim_of(old), eid=old.eid, key=old_key)
                assert await op.device_change_for(old_key) is None
                order = await op.device_change(old_key, new.eid, name="new phone")
                assert order.change.state is ChangeState.ORDERED
                again = await op.device_change(old_key, new.eid)
                assert again.change.id == order.change.id
                assert again.activation_code == order.activation_code
                with pytest.raises(AuthorizationError):  # the first secret stopped working
                    await op.device_change_status(order.change.id, order.secret)
                with pytest.raises(NotFoundError):
                    await op.device_change_status("cnope", again.secret)
                with pytest.raises(StateError):
                    await op.complete_device_change(order.change.id, again.secret)
                latest = await op.device_change_for(old_key)
                assert latest is not None
                assert latest.id == order.change.id
            secret = again.secret
            async with OperatorClient(server.url, ssl_context=tls_for(new)) as nop:
                new_iccid = await _download_disabled(new, again.activation_code)
                assert new_iccid == order.change.new_iccid
                seen = await nop.device_change_status(order.change.id, secret)
                assert seen.state is ChangeState.INSTALLED
                lpa = _lpa(new)
                lpa.enable(new_iccid)
                with pytest.raises(NetworkRefusedError) as refused:
                    await nop.attach(**usim_of(new))
                assert refused.value.reason is RefusalReason.PENDING
                await lpa.deliver_notifications()  # the enable notification: the switch
                seen = await nop.device_change_status(order.change.id, secret)
                assert seen.state is ChangeState.SWITCHED
                assert seen.switched is not None
                await nop.attach(**usim_of(new))
                new_key = ec.generate_private_key(ec.SECP256R1())
                device = await nop.register(**usim_of(new), eid=new.eid, key=new_key)
                assert device.role is DeviceRole.PRIMARY
                assert device.iccid == new_iccid
                assert (await nop.status(new_key)).eid == new.eid
            async with OperatorClient(server.url, ssl_context=tls_for(old)) as op:
                with pytest.raises(SignatureError):  # the old key is retired
                    await op.status(old_key)
                with pytest.raises(NetworkRefusedError) as refused:
                    await op.attach(**usim_of(old))
                assert refused.value.reason is RefusalReason.REMOVED
                lpa = _lpa(old)
                lpa.disable(old_iccid)
                lpa.delete(old_iccid)
                await lpa.deliver_notifications()
                done = await op.device_change_status(order.change.id, secret)
                assert done.state is ChangeState.COMPLETED
                assert (await op.complete_device_change(order.change.id, secret)) == done

    asyncio.run(story())


def test_cancel_over_https(tmp_path: Path, pki: TestPki) -> None:
    directory = make_operator_dir(tmp_path, pki)
    old = make_euicc(tmp_path, pki, "old")
    new = make_euicc(tmp_path, pki, "new")

    async def story() -> None:
        async with running(directory) as server:
            _sub, enrolment = server.operator.subscribe("ts48", PLAN)
            await download_and_enable(old, enrolment.activation_code)
            old_key = ec.generate_private_key(ec.SECP256R1())
            async with OperatorClient(server.url, ssl_context=tls_for(old)) as op:
                await op.register(**usim_of(old), eid=old.eid, key=old_key)
                order = await op.device_change(old_key, new.eid)
                cancelled = await op.cancel_device_change(old_key, order.change.id)
                assert cancelled.state is ChangeState.CANCELLED
                assert (await op.cancel_device_change(old_key, order.change.id)) == cancelled
                await op.attach(**usim_of(old))
                status = await op.device_change_status(order.change.id, order.secret)
                assert status == cancelled

    asyncio.run(story())
