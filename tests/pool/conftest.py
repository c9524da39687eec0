"""A family on one subscription for the pool tests: phone, laptop and tablet, all real.

The phone downloads its profile, registers its federation key; the laptop
(1 GB quota) and the tablet (no quota) redeem tokens, download their linked
profiles, register device keys.  The SM-DP+, eUICCs, AuC and operator are
the real code (tests/federation/world.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from rspfed.federation import DeviceClass, Service
from rspfed.federation.pool import FiredAlert, PoolService
from rspfed.federation.types import Device, Plan
from tests.federation.world import GB, OperatorWorld, Phone, make_operator_world
from tests.federation_http.conftest import pki  # noqa: F401 - the HTTPS tests' PKI fixture
from tests.smdp.helpers import make_world

MB = 1 << 20
POOL = 4 * GB
QUOTA = GB
PLAN = Plan(pool_bytes=POOL, device_limit=4)


@attrs.define
class Family:
    ow: OperatorWorld
    pool: PoolService
    sub_id: str
    phone: Phone
    laptop: Phone
    tablet: Phone
    devices: dict[str, Device]
    fired: list[FiredAlert]

    def new_pool(self) -> PoolService:
        """A PoolService as after a restart (the next gateway counter epoch)."""
        return PoolService(
            self.ow.operator, now=self.ow.clock, rand=os.urandom, on_alert=self.fired.append
        )


@pytest.fixture(scope="session")
def shared_world(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_world(tmp_path_factory.mktemp("pki"))


def make_family(tmp: Path, shared_world) -> Family:  # type: ignore[no-untyped-def]
    ow = make_operator_world(tmp, shared_world)
    sub, enrolment = ow.operator.subscribe("ts48", PLAN)
    phone = ow.euicc()
    ow.download(phone, enrolment.activation_code)
    ow.register(phone)
    devices = {"phone": ow.store.devices(sub.id)[0]}
    laptop, tablet = ow.euicc(), ow.euicc()
    for name, dev, cls, quota in (
        ("laptop", laptop, DeviceClass.LAPTOP, QUOTA),
        ("tablet", tablet, DeviceClass.TABLET, 0),
    ):
        token = ow.token(phone, sub.id, dev.eid, cls, frozenset({Service.DATA}), quota=quota)
        ow.download(dev, ow.operator.redeem(token, dev.eid, name=name).activation_code)
        devices[name] = ow.register(dev)
    fired: list[FiredAlert] = []
    pool = PoolService(ow.operator, now=ow.clock, rand=os.urandom, on_alert=fired.append)
    return Family(ow, pool, sub.id, phone, laptop, tablet, devices, fired)


@pytest.fixture
def family(tmp_path: Path, shared_world) -> Iterator[Family]:  # type: ignore[no-untyped-def]
    fam = make_family(tmp_path, shared_world)
    yield fam
    fam.ow.close()
