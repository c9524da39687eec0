"""End to end: two operators over HTTPS on loopback, one phone with a profile of each.

Carrier One (HPLMN 00101) and Carrier Two (HPLMN 00102) each run the real
operator application (ES9+ and ``/rspfed/v1`` on one origin) with their own
cells.  The phone downloads a profile from each over HTTPS, marks Carrier
Two's as the backup and runs :class:`rspfed.lpa.watch.Watch` with shortened
timers.  Carrier One's cell is scheduled off air a moment after the watch starts
and back three seconds later: the watch fails over to the backup, then, once
Carrier One is seen again, switches back on trial and confirms it with an
attach.  Each switch's notifications reach each profile's own SM-DP+.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rspfed.crypto.curves import Curve
from rspfed.euicc.euicc import Euicc
from rspfed.federation import cells as radio
from rspfed.federation.client import OperatorClient
from rspfed.federation.datadir import init_operator_dir, open_operator_store
from rspfed.lpa import Es9Settings, InProcessEs10, Lpa, download, store_ci_certificates
from rspfed.lpa._failover_state import Timers
from rspfed.lpa.settings import LpaSettings, default_path
from rspfed.lpa.watch import Watch, software_euicc
from rspfed.network.radio import Rat
from rspfed.pki.testpki import TestPki
from rspfed.smdp import ProfileType, Smdp
from rspfed.smdp.datadir import load_config, open_store
from tests.federation_http.conftest import (
    PLAN,
    TEMPLATE,
    OperatorDir,
    make_euicc,
    reserve_port,
    running,
    tls_for,
)

ONE, TWO = "00101", "00102"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(
        tmp_path_factory.mktemp("carrier-pki") / "pki", curves=[Curve.NIST], now=datetime.now(UTC)
    )


def carrier(tmp: Path, pki: TestPki, name: str, hplmn: str, iccid_prefix: str) -> OperatorDir:
    """An operator data directory whose profiles have their own ICCID range and HPLMN."""
    sock = reserve_port()
    address = f"localhost:{sock.getsockname()[1]}"
    data = tmp / name
    init_operator_dir(data, pki=pki, address=address, curves=(Curve.NIST,))
    store = open_store(data)
    try:
        core = Smdp(load_config(data), store, now=lambda: datetime.now(UTC))
        meta: dict[str, Any] = {
            "serviceProviderName": name,
            "profileName": f"{name} TS.48",
            "profileClass": "operational",
            "notificationConfigurationInfo": [
                {"events": ["install", "enable", "disable", "delete"], "address": address}
            ],
            "iccidPrefix": iccid_prefix,
            "imsiPrefix": hplmn,
            "op": "cdc202d5123e20f62b6d676ac72cb318",
        }
        core.add_profile_type(ProfileType.from_metadata("ts48", TEMPLATE, meta))
    finally:
        store.close()
    return OperatorDir(data, address, sock, int(sock.getsockname()[1]))


def cells(
    directory: OperatorDir, plmn: str, name: str, schedule: list[tuple[datetime, int | None]]
) -> None:
    store = open_operator_store(directory.data)
    try:
        now = datetime.now(UTC)
        for at, dbm in schedule:
            radio.set_cell(store, plmn, Rat.EUTRAN, dbm, now=now, at=at, country="FR", name=name)
    finally:
        store.close()


async def fetch(euicc: Euicc, code: str) -> str:
    result = await download(
        InProcessEs10(euicc.isdr),
        code,
        settings=Es9Settings(trust=store_ci_certificates(euicc.store)),
    )
    return result.iccid


def test_backup_takes_over_and_gives_back(tmp_path: Path, pki: TestPki) -> None:
    one = carrier(tmp_path, pki, "Carrier One", ONE, "8900011")
    two = carrier(tmp_path, pki, "Carrier Two", TWO, "8900012")
    start = datetime.now(UTC) - timedelta(seconds=1)
    cells(one, ONE, "Carrier One", [(start, -80)])
    cells(two, TWO, "Carrier Two", [(start, -95)])
    phone = make_euicc(tmp_path, pki, "phone")
    store_path = tmp_path / "phone" / "euicc.db"
    timers = Timers(
        lost_after=timedelta(seconds=0.5),
        seen_for=timedelta(seconds=0.5),
        trial_timeout=timedelta(seconds=1),
        hold=timedelta(seconds=1),
    )

    async def story() -> None:
        async with running(one) as op1, running(two) as op2:
            _, e1 = op1.operator.subscribe("ts48", PLAN)
            _, e2 = op2.operator.subscribe("ts48", PLAN)
            a = await fetch(phone, e1.activation_code)
            b = await fetch(phone, e2.activation_code)
            Lpa(InProcessEs10(phone.isdr)).enable(a)
            context = tls_for(phone)
            phone.close()
            clients = [
                OperatorClient(op1.url, ssl_context=context),
                OperatorClient(op2.url, ssl_context=context),
            ]
            lines: list[str] = []
            watch = Watch(
                open_device=lambda: software_euicc(store_path),
                settings_path=default_path(store_path),
                clients=clients,
                timers=timers,
                interval=timedelta(seconds=0.25),
                on_decision=lines.append,
            )
            # the backup marker, as `rspfed lpa backup set` does
            from rspfed.lpa.failover import Failover
            from rspfed.lpa.policy import ProfilePolicy

            with (
                software_euicc(store_path) as link,
                LpaSettings.open(default_path(store_path)) as s,
            ):
                await ProfilePolicy(
                    Failover(link.lpa, s, now=lambda: datetime.now(UTC))
                ).set_backup(b)

            # Carrier One goes off air in a moment and comes back 3 s later (the running
            # server reads its cells per request)
            soon = datetime.now(UTC) + timedelta(seconds=1.5)
            cells(one, ONE, "Carrier One", [(soon, None), (soon + timedelta(seconds=3), -80)])
            deadline = time.monotonic() + 15
            failed_over = gave_back = False
            while time.monotonic() < deadline and not gave_back:
                await watch.round()
                with LpaSettings.open(default_path(store_path)) as s:
                    state = s.failover_state()
                failed_over = failed_over or any(f"-> {b}: primary {a} lost" in x for x in lines)
                gave_back = failed_over and state.phase.value == "on-primary"
                await asyncio.sleep(0.25)
            for client in clients:
                await client.close()
            text = "\n".join(lines)
            assert failed_over, text
            assert gave_back, text
            assert f"switch {b} -> {a}: primary {a} seen again (trial)" in text
            assert "trial -> on-primary (attach-ok)" in text
            # each switch notified each profile's own SM-DP+ (on the operator's origin)
            got1 = [
                (n.iccid, n.event)
                for n in op1.operator.smdp.notifications()
                if n.event != "install"
            ]
            got2 = [
                (n.iccid, n.event)
                for n in op2.operator.smdp.notifications()
                if n.event != "install"
            ]
            assert got1[-2:] == [(a, "disable"), (a, "enable")], text
            assert got2[-2:] == [(b, "enable"), (b, "disable")], text
            # the profiles' operators were learned by attaching
            with LpaSettings.open(default_path(store_path)) as s:
                assert s.operator_url(a) == op1.url
                assert s.operator_url(b) == op2.url

    asyncio.run(story())
