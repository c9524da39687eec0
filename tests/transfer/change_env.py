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
    "Driver",
    "Faults",
    "FaultyConnection",
    "InProcessOperator",
    "Party",
    "build_base",
    "fast_dir",
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
        return cls(base, tmp, clock, faults, dw)

    def _open_party(self, name: str) -> Party:
        store = DeviceStore.open(self.tmp / f"device-{name}.sqlite")
        store._db = FaultyConnection(store._db, self.faults.hook(f"{name}-device"))  # type: ignore[assignment]
        euicc = Euicc.open(
            self.tmp / f"euicc-{name}" / "euicc.db",
            installer=lambda p: install_package(p).iccid,
        )
        inner = euicc._store
        inner._db = FaultyConnection(inner._db, self.faults.hook(f"{name}-euicc"))  # type: ignore[assignment]
        return Party(name, store, euicc)

    def __getitem__(self, name: str) -> Party:
        """The device ``name`` (opened from its files on first use after a (re)open)."""
        party = self.parties.get(name)
        if party is None:
            party = self.parties[name] = self._open_party(name)
        return party

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
        if operator:
            self.dw.reopen_operator()

    def close(self) -> None:
        for party in self.parties.values():
            party.close()
        self.parties.clear()
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


def fast_dir(tmp: Path) -> Path:
    """A directory for many short-lived worlds: in memory (``/dev/shm``) when the system
    has it (the stores' ``synchronous=FULL`` fsyncs cost little there), else ``tmp``."""
    import tempfile

    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="rspfed-change-", dir=shm))
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp


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


# --------------------------------------------------------------------------
# a change driven step by step, with crash recovery and the invariants


def _run(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


def _tolerant(coro: Any) -> Any:
    """Run a resume-like step; ``StateError`` (the switch has not come yet) is not a failure."""
    try:
        return _run(coro)
    except StateError:
        return None


@attrs.define
class Driver:
    """Drives one change of ``mover``'s record onto ``target``'s eUICC in ``env``.

    :meth:`steps` are the parties' actions in protocol order; :meth:`converge`
    brings every side to its end from the journals alone (what ``rspfed
    transfer resume`` on both devices plus the operator's restart do);
    :meth:`check` asserts the network invariant on the committed state.
    """

    env: ChangeEnv
    mover: str
    target: str
    device_id: str
    ticket: Any = None
    pair: tuple[str, str] | None = None
    served_log: list[tuple[str, ...]] = attrs.Factory(list)

    @classmethod
    def start(cls, env: ChangeEnv, mover: str, target: str) -> Driver:
        record = env[mover].store.record()
        assert record is not None
        assert record.device_id is not None
        return cls(env, mover, target, record.device_id)

    @property
    def old(self) -> Party:
        return self.env[self.mover]

    @property
    def new(self) -> Party:
        return self.env[self.target]

    # -- invariants -------------------------------------------------------------

    def _pair(self) -> tuple[str, str] | None:
        if self.pair is None:
            found = self.env.dw.operator.store.changes_of_device(self.device_id)
            if found:
                c = found[0].change
                self.pair = (c.old_imsi, c.new_imsi)
        return self.pair

    def check(self) -> None:
        """EXACTLY ONE of the two IMSIs is served (the network's committed state)."""
        pair = self.pair
        if pair is None:
            return
        reader = self.env.reader()
        try:
            found = tuple(served(reader, pair))
        finally:
            reader._store.close()  # type: ignore[attr-defined]
        assert len(found) == 1, (pair, found)
        if not self.served_log or self.served_log[-1] != found:
            self.served_log.append(found)

    def check_usable(self) -> None:
        """The served IMSI's profile is enabled on its device (every party at rest)."""
        self.check()
        if self.pair is None:
            return
        served_now = self.served_log[-1][0]
        operator = self.env.dw.operator
        for record in operator.store.changes_of_device(self.device_id):
            c = record.change
            if served_now == c.old_imsi:
                assert self.old.profiles().get(c.old_iccid) is True, "old served, not enabled"
            elif served_now == c.new_imsi:
                assert self.new.profiles().get(c.new_iccid) is True, "new served, not enabled"

    # -- steps ----------------------------------------------------------------------

    def request(self) -> None:
        from rspfed.transfer import change as ch

        env = self.env
        order = _run(
            ch.old_request_change(env.operator, self.old.store, new_eid=self.new.eid, now=env.clock)
        )
        self.pair = (order.change.old_imsi, order.change.new_imsi)
        self.ticket = ch.ticket_from_journal(self._old_journal())

    def _old_journal(self) -> Any:
        journal = self.old.store.change()
        assert journal is not None
        return journal

    def order_sent(self) -> None:
        from rspfed.transfer import change as ch

        ch.old_order_sent(self.old.store, now=self.env.clock)

    def apply(self, *, es9: Any = None) -> None:
        from rspfed.transfer import change as ch

        env = self.env
        _tolerant(
            ch.new_apply_order(
                env.operator,
                self.new.store,
                self.new.lpa,
                self.new.card,
                self.ticket,
                now=env.clock,
                es9=es9 if es9 is not None else env.es9,
                wait=0,
            )
        )

    def finish_old(self, *, abandon: bool = False) -> None:
        from rspfed.transfer import change as ch

        env = self.env
        _tolerant(
            ch.resume(
                env.operator, self.old.store, self.old.lpa, now=env.clock, es9=env.es9,
                abandon=abandon,
            )
        )  # fmt: skip

    def finish_new(self) -> None:
        from rspfed.transfer import change as ch

        env = self.env
        journal = self.new.store.change()
        if journal is None or journal.finished:
            return
        if journal.phase == "registered":
            old = self.old.store.change()
            ch.new_finish(self.new.store, () if old is None else old.companions, now=env.clock)
            return
        _tolerant(
            ch.resume(
                env.operator, self.new.store, self.new.lpa, self.new.card, now=env.clock,
                es9=env.es9,
            )
        )  # fmt: skip

    def steps(self) -> list[Callable[[], None]]:
        return [self.request, self.order_sent, self.apply, self.finish_old, self.finish_new]

    # -- recovery -----------------------------------------------------------------

    def recover(self) -> None:
        """Every process restarts from its files; the operator syncs."""
        self.env.reopen()
        self.env.dw.operator.sync()
        self._pair()
        self.check_usable()

    def converge(self, *, abandon: bool = False, rounds: int = 4) -> None:
        """Both sides resume from their journals (re-requesting when the old device's
        request never reached its journal) until both ended."""
        for _ in range(rounds):
            old = self.old.store.change()
            if old is None:
                if abandon:
                    # never journaled: the order (if any) lapses; nothing to roll back here
                    self.env.clock.advance(self.env.dw.operator.config.order_ttl)
                    self.env.dw.operator.sync()
                    self.check()
                    return
                self.request()
                old = self._old_journal()
            self.ticket = self.ticket or _ticket(old)
            if old.phase == "requested":
                self.order_sent()
            new = self.new.store.change()
            if new is None and not abandon:
                self.apply()
            elif new is not None and not new.finished:
                self.finish_new()
            self.check()
            new = self.new.store.change()
            # a new device that gave up (changeResult failed) makes the old one abandon
            gave_up = new is not None and new.phase == "cancelled"
            self.finish_old(abandon=abandon or gave_up)
            self.check()
            self.finish_new()
            self.check()
            new = self.new.store.change()
            old = self.old.store.change()
            if old is not None and old.finished and (new is None or new.finished):
                return

    def assert_switched(self) -> None:
        """The end of a change that went through: new served, old deleted, journals done."""
        pair = self.pair
        assert pair is not None
        assert self.served_log[-1] == (pair[1],)
        old, new = self.old.store.change(), self.new.store.change()
        assert old is not None
        assert old.phase == "done"
        assert new is not None
        assert new.phase == "done"
        assert old.old_iccid not in self.old.profiles()
        assert self.new.profiles().get(new.new_iccid or "") is True
        record = self.env.dw.operator.store.change(new.change_id)
        assert record is not None
        assert record.change.state.value == "completed"
        view = self.env.dw.view()
        from tests.federation.world import Phone

        view.attach(Phone(self.new.euicc))
        key = self.new.store.private_key()
        assert key is not None
        self.env.operator.caller(key)

    def assert_rolled_back(self) -> None:
        """The end of a change rolled back: old served, order cancelled, new device clean."""
        pair = self.pair
        if pair is None:
            return
        assert self.served_log[-1] == (pair[0],)
        for record in self.env.dw.operator.store.changes_of_device(self.device_id):
            assert record.change.state.value == "cancelled"
            assert record.change.new_iccid not in self.new.profiles()
        new = self.new.store.change()
        assert new is None or new.phase == "cancelled"
        from tests.federation.world import Phone

        self.env.dw.view().attach(Phone(self.old.euicc))
        old = self.old.store.change()
        replaced = None if old is None else old.replaced_iccid
        if replaced is not None:  # the linked profile the change would have replaced
            assert self.new.profiles().get(replaced) is True
            self.env.dw.view().attach(Phone(self.new.euicc))


def _ticket(journal: Any) -> Any:
    from rspfed.transfer import change as ch

    return ch.ticket_from_journal(journal)
