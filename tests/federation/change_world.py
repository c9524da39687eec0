"""Helpers for the device-change tests: a moving device's new eUICC downloads,
enables and notifies, the old one deletes and notifies (real eUICCs, the
SM-DP+ core and the operator core in one process)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import attrs
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.es9p import messages as m
from rspfed.euicc.euicc import Euicc
from rspfed.federation import DeviceClass
from rspfed.federation.operator import Operator
from rspfed.federation.signing import sign_request
from rspfed.federation.store import SqliteOperatorStore
from rspfed.federation.types import Caller
from rspfed.lpa import ActivationCode, InProcessEs10
from rspfed.lpa import Lpa as RealLpa
from rspfed.lpa.notifications import remove_notification
from rspfed.network import Auc, NetworkRefusedError, SqliteSubscriberStore, SubscriberState
from rspfed.saip.install import install_package
from rspfed.smdp import Smdp, SqliteSmdpStore
from tests.federation.world import PLAN, OperatorWorld, Phone
from tests.smdp.helpers import Clock, Lpa, World, make_euicc, make_smdp, make_world

__all__ = [
    "Base",
    "Crash",
    "DiskWorld",
    "Faults",
    "build_base",
    "delete_and_notify",
    "deliver",
    "download_only",
    "enable_and_notify",
    "new_euicc",
    "open_copy",
    "reject_download",
    "served",
]


def _lpa(device: Phone) -> RealLpa:
    return RealLpa(InProcessEs10(device.euicc.isdr))


class HasSmdp(Protocol):
    """A world with an SM-DP+ core (OperatorWorld, DiskWorld)."""

    @property
    def smdp(self) -> Smdp: ...


def download_only(ow: HasSmdp, device: Phone, code: str) -> str:
    """Download (the profile stays disabled after install); its ICCID."""
    before = {p.iccid for p in _lpa(device).profiles()}
    ac = ActivationCode.parse(code)
    Lpa(ow.smdp, device.euicc.isdr).download(ac.matching_id or None)
    after = [p.iccid for p in _lpa(device).profiles() if p.iccid not in before]
    assert len(after) == 1
    return after[0]


def reject_download(ow: HasSmdp, device: Phone, code: str) -> None:
    """The end user rejects the download (ES9+.CancelSession, endUserRejection): the
    order fails for good at the SM-DP+ (ERROR)."""
    ac = ActivationCode.parse(code)
    lpa = Lpa(ow.smdp, device.euicc.isdr)
    auth = lpa.authenticate(lpa.initiate(), ac.matching_id or None)
    request = asn1.encode(
        rsp.CancelSessionRequest(
            {"transactionId": auth.transaction_id, "reason": "endUserRejection"}
        )
    )
    answer = device.euicc.isdr.handle(request)
    ow.smdp.cancel_session(m.CancelSessionRequest(auth.transaction_id, answer))


def deliver(ow: HasSmdp, device: Phone, event: str | None = None) -> int:
    """Send the eUICC's pending notifications (of ``event``) to the SM-DP+; how many."""
    isdr = InProcessEs10(device.euicc.isdr)
    sent = 0
    for note in _lpa(device).notifications():
        if event is not None and note.event != event:
            continue
        ow.smdp.handle_notification(m.HandleNotificationRequest(note.pending_notification))
        remove_notification(isdr, note.seq_number)
        sent += 1
    return sent


def enable_and_notify(ow: HasSmdp, device: Phone, iccid: str, *, notify: bool = True) -> None:
    """ES10c.EnableProfile of ``iccid`` (the other profile is disabled) and its notification."""
    _lpa(device).enable(iccid)
    device.iccid = iccid
    if notify:
        deliver(ow, device, "enable")


def delete_and_notify(ow: HasSmdp, device: Phone, iccid: str, *, notify: bool = True) -> None:
    """Disable (if enabled) and delete ``iccid``, then send the delete notification."""
    lpa = _lpa(device)
    for p in lpa.profiles():
        if p.iccid == iccid and p.enabled:
            lpa.disable(iccid)
    lpa.delete(iccid)
    if notify:
        deliver(ow, device, "delete")


# -- a world on disk that can be snapshotted, crashed and reopened -------------------


class Crash(BaseException):
    """An injected crash (a BaseException: no ``except RspfedError`` swallows it)."""


@attrs.define
class Faults:
    """Counts the writes of both stores (each write statement and each commit) and
    crashes at the ``crash_at``-th; ``check`` runs at every counted instant."""

    crash_at: int | None = None
    count: int = 0
    labels: list[str] = attrs.Factory(list)
    check: Callable[[], None] | None = None
    armed: bool = False

    def hook(self, store: str) -> Callable[[str], None]:
        def fault(label: str) -> None:
            if not self.armed:
                return
            if self.check is not None:
                self.check()
            self.count += 1
            self.labels.append(f"{store}:{label}")
            if self.count == self.crash_at:
                self.armed = False
                raise Crash(f"{store}:{label}")

        return fault


@attrs.define
class DiskWorld:
    """SM-DP+, network (AuC) and operator stores and eUICCs in one directory.

    ``open`` builds every object from the files; the stores get ``faults``' hooks.
    """

    world: World
    tmp: Path
    clock: Clock
    faults: Faults
    smdp: Smdp
    auc: Auc
    network: SqliteSubscriberStore
    store: SqliteOperatorStore
    operator: Operator
    euiccs: dict[str, Euicc]
    keys: dict[str, ec.EllipticCurvePrivateKey]

    @classmethod
    def open(
        cls,
        world: World,
        tmp: Path,
        clock: Clock,
        faults: Faults,
        keys: dict[str, ec.EllipticCurvePrivateKey],
        types: dict[str, Any] | None = None,
    ) -> DiskWorld:
        smdp = Smdp(world.config, SqliteSmdpStore.open(tmp / "smdp.sqlite"), now=clock)
        if types is not None:  # the prepared TS.48 template (0.3 s to prepare) is reused
            smdp._types.update(types)
        network = SqliteSubscriberStore(tmp / "network.sqlite", fault=faults.hook("network"))
        auc = Auc(network, rand=os.urandom)
        store = SqliteOperatorStore(tmp / "operator.sqlite", fault=faults.hook("operator"))
        operator = Operator(store, smdp, auc, now=clock, rand=os.urandom)
        euiccs: dict[str, Euicc] = {}  # opened on first use
        return cls(world, tmp, clock, faults, smdp, auc, network, store, operator, euiccs, keys)

    def reopen_operator(self) -> None:
        """The operator process restarts: both its stores reopened from disk."""
        with contextlib.suppress(Exception):
            self.store.close()
        with contextlib.suppress(Exception):
            self.network.close()
        self.network = SqliteSubscriberStore(
            self.tmp / "network.sqlite", fault=self.faults.hook("network")
        )
        self.auc = Auc(self.network, rand=os.urandom)
        self.store = SqliteOperatorStore(
            self.tmp / "operator.sqlite", fault=self.faults.hook("operator")
        )
        self.operator = Operator(self.store, self.smdp, self.auc, now=self.clock, rand=os.urandom)

    def close(self) -> None:
        for closer in (self.store.close, self.network.close, self.smdp_close):
            with contextlib.suppress(Exception):
                closer()
        for e in self.euiccs.values():
            with contextlib.suppress(Exception):
                e.close()

    def smdp_close(self) -> None:
        self.smdp._store.close()

    def view(self) -> OperatorWorld:
        """The same objects as an :class:`OperatorWorld` (its register/attach/token helpers)."""
        return OperatorWorld(
            self.world, self.clock, self.smdp, self.auc, self.store, self.operator, self.tmp
        )

    def phone(self, name: str) -> Phone:
        euicc = self.euiccs.get(name)
        if euicc is None:
            euicc = Euicc.open(
                self.tmp / f"euicc-{name}" / "euicc.db",
                installer=lambda p: install_package(p).iccid,
            )
            self.euiccs[name] = euicc
        lpa = _lpa_of(euicc)
        enabled = [p.iccid for p in lpa.profiles() if p.enabled]
        return Phone(euicc, self.keys.get(name), enabled[0] if enabled else None)

    def caller(self, name: str) -> Caller:
        key = self.keys[name]
        header = sign_request(
            key, method="POST", path="/x", body=b"", now=self.clock(), nonce=os.urandom(16)
        )
        return self.operator.authenticate_request(header, "POST", "/x", b"")

    def snapshot(self, to: Path) -> None:
        """Copy every file (stores closed first, so the copy is consistent)."""
        self.close()
        shutil.copytree(self.tmp, to)


def _lpa_of(euicc: Euicc) -> RealLpa:
    return RealLpa(InProcessEs10(euicc.isdr))


def new_euicc(world: World, tmp: Path, name: str) -> Euicc:
    return make_euicc(world, tmp / f"euicc-{name}")


def served(auc: Auc, imsis: Sequence[str]) -> list[str]:
    """Which of ``imsis`` the AuC serves (knows and has in service)."""
    out = []
    for imsi in imsis:
        try:
            sub = auc.subscriber(imsi)
        except NetworkRefusedError:
            continue
        if sub.state is SubscriberState.ACTIVE:
            out.append(imsi)
    return out


@attrs.define
class Base:
    """The snapshot every run starts from: phone (primary), laptop and tablet
    (linked, registered), and two fresh eUICCs (newphone, newtablet)."""

    world: World
    path: Path
    clock_start: datetime
    keys: dict[str, ec.EllipticCurvePrivateKey]
    types: dict[str, Any]
    order_ttl: timedelta


def build_base(tmp: Path) -> Base:
    """The snapshot under ``tmp / "base"`` (built once per test module)."""
    world = make_world(tmp / "pki")
    path = tmp / "base"
    path.mkdir()
    clock = Clock()
    smdp = make_smdp(world, path / "smdp.sqlite", clock)
    euiccs = {
        n: new_euicc(world, path, n) for n in ("phone", "laptop", "tablet", "newphone", "newtablet")
    }
    for e in euiccs.values():
        e.close()
    faults = Faults()
    dw = DiskWorld.open(world, path, clock, faults, {}, dict(smdp._types))
    dw.smdp._store.close()
    dw.smdp = smdp
    dw.operator = type(dw.operator)(dw.store, smdp, dw.auc, now=clock, rand=os.urandom)
    ow = dw.view()
    sub, enrolment = dw.operator.subscribe("ts48", PLAN)
    phone = dw.phone("phone")
    ow.download(phone, enrolment.activation_code)
    ow.register(phone)
    assert phone.key is not None
    dw.keys["phone"] = phone.key
    for name, cls in (("laptop", DeviceClass.LAPTOP), ("tablet", DeviceClass.TABLET)):
        device = dw.phone(name)
        token = ow.token(phone, sub.id, device.eid, cls)
        linked = dw.operator.redeem(token, device.eid, name=name)
        ow.download(device, linked.activation_code)
        dw.operator.sync()
        ow.register(device)
        assert device.key is not None
        dw.keys[name] = device.key
    types = dict(smdp._types)
    dw.close()
    return Base(world, path, clock.now, dict(dw.keys), types, dw.operator.config.order_ttl)


def open_copy(base: Base, tmp: Path, faults: Faults) -> DiskWorld:
    """A fresh copy of the base snapshot at ``tmp``, opened (stores with ``faults``' hooks)."""
    shutil.copytree(base.path, tmp)
    return DiskWorld.open(
        base.world, tmp, Clock(base.clock_start), faults, dict(base.keys), base.types
    )
