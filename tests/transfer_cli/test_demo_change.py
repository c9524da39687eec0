"""The demo's device-change chapter (:func:`rspfed.cli._demo_change.chapter_device_change`)
against a demo-like world: the operator service over HTTPS, a primary phone with
its device store (made through the real commands) and a linked tablet; the new
phone is made by the chapter through the demo's ``device(name)`` factory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rspfed.cli._demo_change import ChangeTold, chapter_device_change
from rspfed.cli._demo_common import DemoDevice, profiles_of
from rspfed.euicc.euicc import Euicc
from rspfed.federation.client import OperatorClient, operator_tls_context
from rspfed.federation.device import DeviceStore
from rspfed.lpa import store_ci_certificates
from tests.transfer_cli.conftest import Service, devices, linked, make_primary, profiles


def test_chapter_moves_the_phone_and_the_tablet_still_attaches(
    service: Service, tmp_path: Path
) -> None:
    primary = make_primary(service, "demo", "--classes", "phone,tablet")
    tablet_euicc, _, tablet_eid = linked(service, primary, "demo-tablet", "tablet")
    ((old_iccid, _),) = profiles(primary.euicc)

    async def run() -> tuple[ChangeTold, list[str]]:
        made: list[DemoDevice] = []

        def open_device(name: str, path: Path) -> DemoDevice:
            card = Euicc.open(path)
            trust = store_ci_certificates(card.store)
            client = OperatorClient(
                service.url, ssl_context=operator_tls_context("localhost", trust=trust)
            )
            made.append(DemoDevice(name, card, client))
            return made[-1]

        def device(name: str) -> DemoDevice:
            path, _ = service.euicc(f"demo-{name}")
            return open_device(name, path)

        phone = open_device("phone", primary.euicc)
        phone.store = DeviceStore.open(primary.device)
        phone.key = phone.store.private_key()
        phone.iccid = old_iccid
        tablet = open_device("tablet", tablet_euicc)
        tablet.iccid = profiles_of(tablet)[0].iccid
        try:
            told = await chapter_device_change(
                17, root=tmp_path, phone=phone, device=device, tablet=tablet
            )
            left = [p.iccid for p in profiles_of(phone)]
        finally:
            for each in made:
                await each.client.close()
                each.euicc.close()
                if each.store is not None:
                    each.store.close()
        return told, left

    told, left = asyncio.run(run())
    assert told.old_iccid == old_iccid
    assert told.new_iccid != old_iccid
    assert left == []  # the old phone's profile is deleted
    assert told.attached == {"tablet": told.attached["tablet"]}
    assert "refused" not in told.attached["tablet"]
    new_euicc = service.tmp / "demo-new-phone.euicc"
    assert profiles(new_euicc) == [(told.new_iccid, "enabled")]
    listed = devices(tmp_path / "new-phone-device.db", new_euicc)
    assert listed[told.new_eid]["role"] == "primary"
    assert told.old_eid not in listed
    assert listed[tablet_eid]["state"] == "active"
