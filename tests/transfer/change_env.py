"""Harness of the device-change device-side tests (rspfed.transfer.change).

An in-process world on disk: the operator core with its SQLite stores and the
network's subscriber store (``tests.federation.change_world.DiskWorld``), the
SM-DP+ core, software eUICCs (real SQLite stores) and one real
:class:`~rspfed.federation.device.DeviceStore` per device.  The operator is
reached through :class:`InProcessOperator`, an adapter that satisfies
:class:`rspfed.transfer.change.ChangeOperator` by calling the real operator
core (signed requests are signed and verified; registration runs EAP-AKA'
against the core); the LPA's ES9+ goes to the SM-DP+ core through
:class:`rspfed.smdp.InProcessEs9`.

Crash injection: every device store and eUICC store connection is wrapped so
that each write statement (INSERT/UPDATE/DELETE/REPLACE) and each COMMIT calls
the shared :class:`~tests.federation.change_world.Faults` hook before it, and
each COMMIT after it too; the operator's two stores call the same hook
(their own ``fault=`` parameter).  The n-th instant raises
:class:`~tests.federation.change_world.Crash` (a BaseException).  After a
crash :meth:`ChangeEnv.reopen` closes and reopens everything from disk.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.eap import EapAkaPrimePeer
from rspfed.eap.machines import UsimAuthenticate
from rspfed.errors import StateError
from rspfed.euicc.euicc import Euicc
from rspfed.federation import DeviceClass
from rspfed.federation.device import DeviceRecord, DeviceStore
from rspfed.federation.enrol import register_device
from rspfed.federation.operator import Operator
from rspfed.federation.signing import sign_request
from rspfed.federation.types import (
    Caller,
    Device,
    DeviceChange,
    DeviceChangeOrder,
    EapPurpose,
)
from rspfed.lpa import InProcessEs10
from rspfed.lpa import Lpa as RealLpa
from rspfed.network import Auc, NetworkRefusedError, SqliteSubscriberStore, SubscriberState
from rspfed.network.nai import permanent_identity
from rspfed.saip.install import install_package
from rspfed.smdp import InProcessEs9
from tests.federation.change_world import Crash, DiskWorld, Faults, new_euicc
from tests.federation.world import PLAN
from tests.smdp.helpers import Clock, World, make_smdp, make_world

__all__ = [
    "OPERATOR_URL",
    "Base",
    "ChangeEnv",
    "Crash",
    "Faults",
    "FaultyConnection",
    "InProcessOperator",
    "Party",
    "build_base",
]

OPERATOR_URL = "https://operator.test"
NAMES = ("phone", "laptop", "tablet", "newphone", "newtablet")
_WRITES = ("insert", "update", "delete", "replace", "commit")


class FaultyConnection:
    """A :class:`sqlite3.Connection` whose writes call ``fault(label)`` before (and
    COMMIT also after) they run; everything else is the connection's own."""

    def __init__(self, connection: sqlite3.Connection, fault: Callable[[str], None]) -> None:
        self._c = connection
        self._fault = fault

    def _verb(self, sql: str) -> str | None:
        verb = sql.split(None, 1)[0].lower() if sql.strip() else ""
        return verb if verb in _WRITES else None

    def execute(self, sql: str, args: Any = ()) -> sqlite3.Cursor:
        verb = self._verb(sql)
        if verb is not None:
            self._fault(f"{verb}:before")
        cursor = self._c.execute(sql, args)
        if verb == "commit":
            self._fault("commit:after")
        return cursor

    def executemany(self, sql: str, args: Iterable[Any]) -> sqlite3.Cursor:
        verb = self._verb(sql)
        if verb is not None:
            self._fault(f"{verb}:before")
        return self._c.executemany(sql, args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._c, name)


def _point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class InProcessOperator:
    """The :class:`rspfed.transfer.change.ChangeOperator` calls straight into the
    operator core of ``env`` (whichever :class:`Operator` it has now)."""

    def __init__(self, env: ChangeEnv) -> None:
        self.env = env

    @property
    def op(self) -> Operator:
        return self.env.dw.operator

    def caller(self, key: ec.EllipticCurvePrivateKey) -> Caller:
        header = sign_request(
            key, method="POST", path="/x", body=b"", now=self.env.clock(), nonce=os.urandom(16)
        )
        return self.op.authenticate_request(header, "POST", "/x", b"")

    async def device_change(
        self,
        key: ec.EllipticCurvePrivateKey,
        new_eid: str,
        *,
        name: str | None = None,
        device_class: DeviceClass | None = None,
    ) -> DeviceChangeOrder:
        return self.op.device_change(
            self.caller(key), new_eid, name=name, device_class=device_class
        )

    async def device_change_status(self, change_id: str, secret: str) -> DeviceChange:
        return self.op.device_change_status(change_id, secret)

    async def cancel_device_change(
        self, key: ec.EllipticCurvePrivateKey, change_id: str
    ) -> DeviceChange:
        return self.op.cancel_device_change(self.caller(key), change_id)

    async def complete_device_change(self, change_id: str, secret: str) -> DeviceChange:
        return self.op.complete_device_change(change_id, secret)

    async def register(
        self,
        *,
        usim: UsimAuthenticate,
        imsi: str,
        mnc_length: int,
        eid: str,
        key: ec.EllipticCurvePrivateKey,
        network_name: bytes | None = None,
    ) -> Device:
        identity = permanent_identity(imsi, mnc_length=mnc_length)
        peer = EapAkaPrimePeer(
            identity=identity, usim=usim, network_name=network_name, federation_key=_point(key)
        )
        step = self.op.eap_start(identity, purpose=EapPurpose.REGISTER, eid=eid)
        while not step.done:
            answer = peer.receive(step.packet)
            assert answer is not None
            step = self.op.eap_continue(step.session_id, answer)
        peer.receive(step.packet)
        if step.device is None:  # pragma: no cover - a register step names the device
            raise StateError("the registration named no device")
        return step.device


@attrs.define
class Party:
    """One device: its device store, eUICC, LPA and card (all reopened together)."""

    name: str
    store: DeviceStore
    euicc: Euicc

    @property
    def lpa(self) -> RealLpa:
        return RealLpa(InProcessEs10(self.euicc.isdr))

    @property
    def card(self) -> Any:
        return self.euicc.card

    @property
    def eid(self) -> str:
        return self.euicc.eid

    def profiles(self) -> dict[str, bool]:
        return {p.iccid: p.enabled for p in self.lpa.profiles()}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.store.close()
        with contextlib.suppress(Exception):
            self.euicc.close()


@attrs.define
class Base:
    """The snapshot every test starts from: phone (primary), laptop and tablet
    (linked), each with a device store holding its registered key; two fresh
    eUICCs with empty device stores (newphone, newtablet)."""

    world: World
    path: Path
    clock_start: datetime
    types: dict[str, Any]


@attrs.define
class ChangeEnv:
    """A copy of the base snapshot, opened; ``faults`` counts every write of every store."""

    base: Base
    tmp: Path
    clock: Clock
    faults: Faults
    dw: DiskWorld
    parties: dict[str, Party] = attrs.Factory(dict)

    @classmethod
    def open(cls, base: Base, tmp: Path, faults: Faults | None = None) -> ChangeEnv:
        shutil.copytree(base.path, tmp)
        faults = faults if faults is not None else Faults()
        clock = Clock(base.clock_start)
        dw = DiskWorld.open(base.world, tmp, clock, faults, {}, base.types)
        env = cls(base, tmp, clock, faults, dw)
        env._open_parties()
        return env

    def _open_parties(self) -> None:
        for name in NAMES:
            store = DeviceStore.open(self.tmp / f"device-{name}.sqlite")
            store._db = FaultyConnection(store._db, self.faults.hook(f"{name}-device"))  # type: ignore[assignment]
            euicc = Euicc.open(
                self.tmp / f"euicc-{name}" / "euicc.db",
                installer=lambda p: install_package(p).iccid,
            )
            inner = euicc._store
            inner._db = FaultyConnection(inner._db, self.faults.hook(f"{name}-euicc"))  # type: ignore[assignment]
            self.parties[name] = Party(name, store, euicc)

    def __getitem__(self, name: str) -> Party:
        return self.parties[name]

    @property
    def operator(self) -> InProcessOperator:
        return InProcessOperator(self)

    @property
    def es9(self) -> InProcessEs9:
        return InProcessEs9(self.dw.smdp)

    def reopen(self, *, operator: bool = True) -> None:
        """Every device (store + eUICC) and, with ``operator``, the operator process
        restart: everything is reopened from the files."""
        for party in self.parties.values():
            party.close()
        self.parties.clear()
        self._open_parties()
        if operator:
            self.dw.reopen_operator()

    def close(self) -> None:
        for party in self.parties.values():
            party.close()
        self.dw.close()

    def reader(self) -> Auc:
        """A separate reader of the network's committed state."""
        return Auc(SqliteSubscriberStore(self.tmp / "network.sqlite"), rand=os.urandom)


def served(auc: Auc, imsis: Iterable[str]) -> list[str]:
    """Which of ``imsis`` the AuC serves."""
    out = []
    for imsi in imsis:
        try:
            sub = auc.subscriber(imsi)
        except NetworkRefusedError:
            continue
        if sub.state is SubscriberState.ACTIVE:
            out.append(imsi)
    return out


def build_base(tmp: Path) -> Base:
    """Build the base snapshot under ``tmp / "base"`` (once per test module)."""
    import asyncio

    world = make_world(tmp / "pki")
    path = tmp / "base"
    path.mkdir()
    clock = Clock()
    smdp = make_smdp(world, path / "smdp.sqlite", clock)
    for name in NAMES:
        new_euicc(world, path, name).close()
        DeviceStore.create(path / f"device-{name}.sqlite").close()
    faults = Faults()
    dw = DiskWorld.open(world, path, clock, faults, {}, dict(smdp._types))
    dw.smdp._store.close()
    dw.smdp = smdp
    dw.operator = Operator(dw.store, smdp, dw.auc, now=clock, rand=os.urandom)
    ow = dw.view()
    sub, enrolment = dw.operator.subscribe("ts48", PLAN)
    phone = dw.phone("phone")
    ow.download(phone, enrolment.activation_code)
    ow.register(phone)
    assert phone.key is not None
    for name, cls in (("laptop", DeviceClass.LAPTOP), ("tablet", DeviceClass.TABLET)):
        device = dw.phone(name)
        token = ow.token(phone, sub.id, device.eid, cls)
        linked = dw.operator.redeem(token, device.eid, name=name)
        ow.download(device, linked.activation_code)
        dw.operator.sync()
    # each device registers the key of its own device store (rspfed.federation.enrol)
    holder = ChangeEnv(Base(world, path, clock.now, {}), path, clock, faults, dw)
    adapter = InProcessOperator(holder)
    for name in ("phone", "laptop", "tablet"):
        euicc = dw.phone(name).euicc
        with DeviceStore.open(path / f"device-{name}.sqlite") as store:
            store.set_record(DeviceRecord(operator_url=OPERATOR_URL))
            asyncio.run(
                register_device(
                    adapter,  # type: ignore[arg-type]
                    euicc.card,
                    store,
                    eid=euicc.eid,
                    operator_url=OPERATOR_URL,
                )
            )
    for name in ("newphone", "newtablet"):
        with DeviceStore.open(path / f"device-{name}.sqlite") as store:
            store.set_record(
                DeviceRecord(operator_url=OPERATOR_URL, eid=dw.phone(name).eid, name=name)
            )
    types = dict(smdp._types)
    dw.close()
    return Base(world, path, clock.now, types)
