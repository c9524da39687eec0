"""A device with profiles from two SM-DP+ cores (two carriers), in process.

One software eUICC holds profile A (carrier 1, SM-DP+ ``dp1.example.com``),
profile B (carrier 2, ``dp2.example.com``) and a disabled profile P from
carrier 1 whose PPR1 is set (the eUICC's RAT allows PPR1 for carrier 1).
Each profile's notifications go to its own SM-DP+.  Building it (PKI, two
SM-DP+ cores, three real downloads) takes a few seconds, so it is built
once and *copied* (the store files) for each test or hypothesis example.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import attrs

from rspfed.errors import TransportError
from rspfed.es9p import HandleNotificationRequest
from rspfed.euicc._state import OperatorId, RatRule
from rspfed.euicc.euicc import Euicc
from rspfed.lpa import InProcessEs10, Lpa
from rspfed.lpa.notifications import Delivery, deliver
from rspfed.smdp import ProfileType, Smdp, SmdpConfig, SqliteSmdpStore
from tests.smdp.helpers import NOW, TEMPLATE, TYPE_METADATA, Clock, make_euicc, make_world
from tests.smdp.helpers import Lpa as MiniLpa

DP1 = "dp1.rspfed.invalid"
DP2 = "dp2.rspfed.invalid"


def _metadata(address: str, prefix: str, imsi: str, **extra: Any) -> dict[str, Any]:
    meta = dict(TYPE_METADATA)
    meta["notificationConfigurationInfo"] = [
        {"events": ["install", "enable", "disable", "delete"], "address": address}
    ]
    meta["iccidPrefix"] = prefix
    meta["imsiPrefix"] = imsi
    meta.update(extra)
    return meta


@attrs.frozen
class Template:
    directory: Path
    a: str
    b: str
    p: str
    config: SmdpConfig


_TEMPLATE: Template | None = None


def _smdp(config: SmdpConfig, path: Path, address: str, clock: Clock) -> Smdp:
    return Smdp(attrs.evolve(config, address=address), SqliteSmdpStore.open(path), now=clock)


def _download(smdp: Smdp, euicc: Euicc, profile_type: str) -> str:
    iccid = smdp.download_order(profile_type=profile_type, eid=euicc.eid)
    order = smdp.confirm_order(iccid=iccid, eid=euicc.eid)
    MiniLpa(smdp, euicc.isdr, address=smdp.config.address).download(order.matching_id)
    return iccid


def _fast_dir() -> str | None:
    """A tmpfs where there is one: the stores sync every write (fsync-bound otherwise)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def template() -> Template:
    """The world built once (see the module doc)."""
    global _TEMPLATE
    if _TEMPLATE is not None:
        return _TEMPLATE
    root = Path(tempfile.mkdtemp(prefix="rspfed-carrier-", dir=_fast_dir()))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    world = make_world(root / "pki")
    clock = Clock()
    for name in ("smdp1", "smdp2"):
        store = SqliteSmdpStore.create(root / f"{name}.sqlite")
        store.close()
    smdp1 = _smdp(world.config, root / "smdp1.sqlite", DP1, clock)
    smdp2 = _smdp(world.config, root / "smdp2.sqlite", DP2, clock)
    smdp1.add_profile_type(
        ProfileType.from_metadata("ts48", TEMPLATE, _metadata(DP1, "8900001", "00101"))
    )
    smdp1.add_profile_type(
        ProfileType.from_metadata(
            "ts48-ppr1",
            TEMPLATE,
            _metadata(DP1, "8900003", "00101", profilePolicyRules=["ppr1"], profileOwner="00101"),
        )
    )
    smdp2.add_profile_type(
        ProfileType.from_metadata("ts48", TEMPLATE, _metadata(DP2, "8900002", "00102"))
    )
    euicc = make_euicc(world, root / "device")
    euicc.store.commit(
        attrs.evolve(
            euicc.store.state,
            rat=(RatRule(frozenset({"ppr1"}), (OperatorId(bytes.fromhex("00F110")),)),),
        )
    )
    a = _download(smdp1, euicc, "ts48")
    b = _download(smdp2, euicc, "ts48")
    p = _download(smdp1, euicc, "ts48-ppr1")
    lpa = Lpa(InProcessEs10(euicc.isdr))
    lpa.enable(a)
    # the notifications of the set-up are delivered now: tests start with none pending
    for note in lpa.notifications():
        (smdp1 if note.address == DP1 else smdp2).handle_notification(
            HandleNotificationRequest(note.pending_notification)
        )
        from rspfed.lpa.notifications import remove_notification

        remove_notification(lpa.es10, note.seq_number)
    euicc.close()
    smdp1.store.close()
    smdp2.store.close()
    _TEMPLATE = Template(root, a, b, p, world.config)
    return _TEMPLATE


class InProcessEs9:
    """ES9+.HandleNotification into an :class:`Smdp` in process; ``online`` False makes
    it unreachable (a :class:`TransportError`, as over HTTPS)."""

    def __init__(self, smdp: Smdp) -> None:
        self.smdp = smdp
        self.online = True

    async def handle_notification(self, request: HandleNotificationRequest) -> None:
        if not self.online:
            raise TransportError(f"{self.smdp.config.address} is unreachable")
        self.smdp.handle_notification(request)


@attrs.define
class Device:
    """A copy of the template: the eUICC store, the two SM-DP+ cores, the settings path."""

    directory: Path
    a: str
    b: str
    p: str
    euicc: Euicc
    smdp1: Smdp
    smdp2: Smdp
    es9: dict[str, InProcessEs9]

    @property
    def store_path(self) -> Path:
        return self.directory / "device" / "euicc.db"

    @property
    def settings_path(self) -> Path:
        return self.directory / "device" / "euicc.db.lpa"

    def lpa(self) -> Lpa:
        return Lpa(InProcessEs10(self.euicc.isdr))

    def reopen(self) -> None:
        """A crash: close and reopen the eUICC store."""
        self.euicc.close()
        self.euicc = Euicc.open(self.store_path, now=lambda: NOW)

    def smdp_for(self, address: str) -> Smdp:
        return self.smdp1 if address == DP1 else self.smdp2

    async def deliver(self, lpa: Lpa) -> list[Delivery]:
        pending = lpa.notifications()
        if not pending:
            return []
        clients: Any = self.es9
        return await deliver(lpa.es10, pending, lpa.settings, None, clients=clients)

    def received(self) -> dict[str, list[tuple[str | None, int, str]]]:
        """What each SM-DP+ received (iccid, seq, event) beyond installs."""
        return {
            address: [
                (n.iccid, n.seq_number, n.event)
                for n in smdp.notifications()
                if n.event in ("enable", "disable")
            ]
            for address, smdp in ((DP1, self.smdp1), (DP2, self.smdp2))
        }

    def close(self) -> None:
        self.euicc.close()
        self.smdp1.store.close()
        self.smdp2.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def device(directory: Path | None = None) -> Device:
    """A fresh copy of the template world."""
    t = template()
    root = (
        Path(directory)
        if directory is not None
        else Path(tempfile.mkdtemp(prefix="rspfed-dev-", dir=_fast_dir()))
    )
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(t.directory / "device", root / "device")
    for name in ("smdp1.sqlite", "smdp2.sqlite"):
        shutil.copy(t.directory / name, root / name)
    clock = Clock()
    smdp1 = _smdp(t.config, root / "smdp1.sqlite", DP1, clock)
    smdp2 = _smdp(t.config, root / "smdp2.sqlite", DP2, clock)
    euicc = Euicc.open(root / "device" / "euicc.db", now=lambda: NOW)
    es9 = {DP1: InProcessEs9(smdp1), DP2: InProcessEs9(smdp2)}
    return Device(root, t.a, t.b, t.p, euicc, smdp1, smdp2, es9)
