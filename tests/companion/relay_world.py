"""A phone, its companion watch and an operator, in one process, for the relay tests (issue H).

Everything is the real code, wired without sockets:

* the operator core, its SM-DP+ core and AuC (:mod:`tests.federation.world`),
  with a subscription whose primary phone downloaded its profile and
  registered its federation key over EAP-AKA';
* the watch: a software eUICC with its SQLite store in ``tmp_path``, kept open
  for the whole test (as ``rspfed companion serve`` keeps it), answering the
  relay with :class:`rspfed.transfer.relay.CompanionResponder`;
* one companion *session* per :meth:`RelayWorld.session`: two
  :class:`~rspfed.transfer.PairingConnection` s (the watch offerer, the phone
  joiner, reconnecting with a stored :class:`~rspfed.transfer.PairedKey`),
  each driven by :class:`~rspfed.transport.drive.Driver` over one end of
  :func:`~rspfed.transport.stream.memory_stream_pair`; the phone sends
  ``companionRequest``, reads ``companionInfo`` and then runs ``work`` (the
  unchanged LPA code: :func:`rspfed.lpa.download`, notifications) in a worker
  thread with its own event loop, its :class:`~rspfed.lpa.es10.Es10` being
  the real :class:`rspfed.transfer.relay.RemoteEs10` (each ``transceive`` one
  ``es10Request`` / ``es10Response`` exchange on the channel's loop, bounded
  by a timeout) over :class:`CuttingChannel`, as ``rspfed companion add``
  has it;
* faults: :class:`Cut` cuts the memory link at a named ES10 exchange (before
  the request leaves the phone, while the watch's answer is in flight, or
  right after the phone got the answer); ``wrap`` puts an adversarial
  :class:`~rspfed.lpa.es10.Es10` (``tests/companion/test_relay_tamper.py``)
  between the LPA and the relay.

Every wait is bounded (the drivers' and the bridge's timeouts, and
:data:`SESSION_TIMEOUT` around a whole session), so a broken relay fails a
test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import enum
import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import attrs

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.errors import ProtocolError, RspfedError
from rspfed.euicc.euicc import Euicc
from rspfed.federation import DeviceClass, Service
from rspfed.federation.operator import Operator
from rspfed.federation.types import Device, DeviceState, Enrolment, Plan
from rspfed.lpa import InProcessEs10
from rspfed.lpa.download import DeviceInfo
from rspfed.lpa.es10 import Es10
from rspfed.saip.install import install_package
from rspfed.smdp import InProcessEs9, ItemState, Smdp
from rspfed.transfer import (
    NEED_DATA,
    Bye,
    ByeReceived,
    Capability,
    CompanionInfo,
    CompanionInfoReceived,
    CompanionRequest,
    CompanionRequested,
    ConnectionClosed,
    DeviceRole,
    Es10Answered,
    Es10Request,
    Es10Requested,
    Es10Response,
    Event,
    Hello,
    HelloReceived,
    Paired,
    PairedKey,
    PairingConnection,
    Role,
)
from rspfed.transfer.relay import CompanionResponder, RemoteEs10, request_tag
from rspfed.transport.drive import Driver
from rspfed.transport.stream import MemoryLink, memory_stream_pair
from tests.federation.world import GB, OperatorWorld, Phone, make_operator_world
from tests.smdp.helpers import NOW, World

__all__ = [
    "EXCHANGE_TIMEOUT",
    "SESSION_TIMEOUT",
    "WATCH_DEVICE_INFO",
    "Cut",
    "CutWhen",
    "CuttingChannel",
    "RelayWorld",
    "SessionOutcome",
    "WatchOutcome",
    "device_info_from_der",
    "make_relay_world",
    "store_snapshot",
]

T = TypeVar("T")

EXCHANGE_TIMEOUT = 10.0
"""Seconds one relayed ES10 exchange (and one driver step) may take."""
SESSION_TIMEOUT = 30.0
"""Seconds a whole companion session may take."""

WATCH_DEVICE_INFO = DeviceInfo(tac=bytes.fromhex("35290611"))
"""The watch's SGP.22 DeviceInfo (its own TAC), carried in ``companionInfo``."""


def device_info_from_der(der: bytes) -> DeviceInfo:
    """The :class:`DeviceInfo` of a ``DeviceInfo`` DER (what the phone's LPA puts in
    ``ctxParams1``)."""
    native = asn1.decode(rsp.DeviceInfo, der).native
    caps = tuple(
        (str(k), bytes(v)) for k, v in (native.get("deviceCapabilities") or {}).items() if v
    )
    imei = native.get("imei")
    return DeviceInfo(
        tac=bytes(native["tac"]), capabilities=caps, imei=None if imei is None else bytes(imei)
    )


def store_snapshot(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of an SQLite file, read afresh from disk."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            str(r[0])
            for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        return {t: sorted(db.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        db.close()


class CutWhen(enum.Enum):
    """Where, around one relayed ES10 exchange, :class:`Cut` cuts the link."""

    BEFORE_REQUEST = "before the request"
    """The phone's request never leaves it: the watch's eUICC never sees it."""
    ANSWER_LOST = "answer lost"
    """The watch's eUICC carried the request out; its answer is lost in flight."""
    AFTER_ANSWER = "after the answer"
    """The phone got the answer; the link dies before the next request."""


@attrs.frozen
class Cut:
    """Cut the memory link at the ``nth`` relayed request whose outer tag is ``tag``.

    With ``answer=True`` the tag is the *answer's* (e.g. ``BF37``, the
    ProfileInstallationResult of the last LoadBoundProfilePackage segment):
    the watch's eUICC has answered, the answer is lost (``when`` must be
    :attr:`CutWhen.ANSWER_LOST`).
    """

    tag: bytes
    when: CutWhen
    nth: int = 1
    answer: bool = False

    def __str__(self) -> str:
        what = "answer " if self.answer else ""
        return f"{what}{self.tag.hex().upper()}#{self.nth} {self.when.value}"


class _Cutter:
    """Counts the relayed requests and cuts the link where a :class:`Cut` says."""

    def __init__(self, cut: Cut | None) -> None:
        self.cut = cut
        self.link: MemoryLink | None = None
        self.seen = 0
        self.armed = False  # the watch's next answer is to be lost
        self.after_answer = False  # cut once the phone has the answer
        self.done = False

    def _matches(self, der: bytes, *, answer: bool) -> bool:
        cut = self.cut
        if cut is None or self.done or cut.answer != answer or request_tag(der) != cut.tag:
            return False
        self.seen += 1
        return self.seen == cut.nth

    def on_answer(self, der: bytes) -> None:
        """The watch is about to send the answer ``der``."""
        if self._matches(der, answer=True):
            self.armed = True

    def before(self, der: bytes) -> None:
        if not self._matches(der, answer=False):
            return
        assert self.cut is not None
        if self.cut.when is CutWhen.BEFORE_REQUEST:
            self._fire()
        elif self.cut.when is CutWhen.ANSWER_LOST:
            self.armed = True
        else:
            self.after_answer = True

    def after(self) -> None:
        if self.after_answer and not self.done:
            self._fire()

    def tamper(self, sender: str, data: bytes) -> bytes:
        if sender == "watch" and self.armed and not self.done:
            self._fire()
            return b""
        return data

    def _fire(self) -> None:
        assert self.link is not None
        self.done = True
        self.armed = False
        self.link.cut()


class CuttingChannel:
    """The phone's side of the session as the :class:`~rspfed.transfer.relay.Es10Channel`
    that :class:`~rspfed.transfer.relay.RemoteEs10` drives: each message goes
    through the connection's driver, with the :class:`Cut` hooks around it.
    ``requests`` records each relayed request's tag in order.
    """

    def __init__(self, driver: Driver[Any], cutter: _Cutter) -> None:
        self._driver = driver
        self._cutter = cutter
        self.requests: list[bytes] = []

    async def send(self, message: Es10Request) -> None:
        """Send one relayed request (cut before it if the :class:`Cut` says so)."""
        self.requests.append(request_tag(message.der))
        self._cutter.before(message.der)
        await self._driver.send(message)

    async def next_event(self) -> Event:
        """The connection's next event (cut after an answer if the :class:`Cut` says so)."""
        event: Event = await self._driver.next_event()
        if isinstance(event, Es10Answered):
            self._cutter.after()
        return event


@attrs.define
class WatchOutcome:
    """How the watch's side of a session ended."""

    answered: int = 0
    refused: int = 0
    error: BaseException | None = None
    """The exception that ended the watch's session (``None``: a bye or an orderly end)."""
    ended_by: str = ""


@attrs.define
class SessionOutcome(Generic[T]):
    """How a session ended on both sides: ``result`` of the phone's ``work`` or its
    ``error``; the relayed request tags; the watch's outcome; octets on the wire."""

    result: T | None
    error: BaseException | None
    requests: list[bytes]
    watch: WatchOutcome
    wire: list[tuple[str, bytes]]
    info: CompanionInfo | None


Work = Callable[[Es10, CompanionInfo], Awaitable[T]]
Wrap = Callable[[Es10], Es10]


@attrs.define
class RelayWorld:
    """The operator world, the primary phone and the watch (module doc)."""

    ow: OperatorWorld
    subscription_id: str
    phone: Phone
    watch_path: Path
    watch: Euicc
    key: PairedKey
    sessions: int = 0

    @property
    def smdp(self) -> Smdp:
        """The SM-DP+ core."""
        return self.ow.smdp

    @property
    def operator(self) -> Operator:
        """The operator core."""
        return self.ow.operator

    @property
    def watch_eid(self) -> str:
        """The watch's EID."""
        return self.watch.eid

    def watch_hello(self) -> Hello:
        """The watch's hello (role companion)."""
        return Hello(
            name="Ana's watch",
            device_class=DeviceClass.WATCH,
            role=DeviceRole.COMPANION,
            eid=self.watch_eid,
            capabilities={Capability.COMPANION},
        )

    def phone_hello(self) -> Hello:
        """The phone's hello (role primary)."""
        return Hello(
            name="Ana's phone",
            device_class=DeviceClass.PHONE,
            role=DeviceRole.PRIMARY,
            eid=self.phone.eid,
            capabilities={Capability.COMPANION},
        )

    def order(self) -> Enrolment:
        """A new watch-class token signed by the phone, redeemed at the operator."""
        token = self.ow.token(
            self.phone,
            self.subscription_id,
            self.watch_eid,
            DeviceClass.WATCH,
            frozenset({Service.DATA}),
            quota=GB,
        )
        return self.operator.redeem(token, self.watch_eid, name="Ana's watch")

    def es9(self) -> InProcessEs9:
        """The SM-DP+ core as the phone LPA's ES9+."""
        return InProcessEs9(self.smdp)

    def item_state(self, iccid: str) -> ItemState:
        """The SM-DP+ inventory state of ``iccid``."""
        item = self.smdp.item(iccid)
        assert item is not None
        return item.state

    def watch_device(self) -> Device:
        """The operator's record of the watch (after a sync with the SM-DP+)."""
        self.operator.sync()
        devices = [
            d
            for state in DeviceState
            for d in self.ow.store.devices_in_state(state)
            if d.eid == self.watch_eid
        ]
        assert len(devices) == 1, devices
        return devices[0]

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """The watch's eUICC store, read from disk."""
        return store_snapshot(self.watch_path)

    @property
    def phone_path(self) -> Path:
        """The phone's eUICC store (``OperatorWorld.euicc`` made it first)."""
        return self.ow.tmp / "euicc1" / "euicc.db"

    def phone_snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        """The phone's eUICC store, read from disk."""
        return store_snapshot(self.phone_path)

    def restart_watch(self) -> None:
        """The watch restarts: its eUICC is closed and opened again from its store
        (whatever it held in memory, such as a session, is gone)."""
        self.watch.close()
        self.watch = Euicc.open(self.watch_path, installer=_installer)

    @contextmanager
    def reopened(self) -> Iterator[Euicc]:
        """A second handle on the watch's eUICC store, opened from disk."""
        card = Euicc.open(self.watch_path, installer=_installer)
        try:
            yield card
        finally:
            card.close()

    def session(
        self,
        work: Work[T],
        *,
        cut: Cut | None = None,
        wrap: Wrap | None = None,
        key: PairedKey | None = None,
        cut_after: int | None = None,
    ) -> SessionOutcome[T]:
        """Run one companion session (module doc) and return how both sides ended.

        ``cut_after``: the memory link dies after that many octets (both
        directions), possibly inside a record.
        """
        self.sessions += 1
        return asyncio.run(
            asyncio.wait_for(
                self._session(work, cut=cut, wrap=wrap, key=key or self.key, cut_after=cut_after),
                SESSION_TIMEOUT,
            )
        )

    async def _session(
        self,
        work: Work[T],
        *,
        cut: Cut | None,
        wrap: Wrap | None,
        key: PairedKey,
        cut_after: int | None,
    ) -> SessionOutcome[T]:
        cutter = _Cutter(cut)
        watch_end, phone_end = memory_stream_pair(
            cut_after=cut_after, tamper=cutter.tamper, names=("watch", "phone")
        )
        cutter.link = watch_end.link
        watch_conn = PairingConnection(
            Role.OFFERER, local=self.watch_hello(), rand=os.urandom, paired=key
        )
        phone_conn = PairingConnection(
            Role.JOINER, local=self.phone_hello(), rand=os.urandom, paired=key
        )
        watch_driver: Driver[Any] = Driver(
            watch_conn, watch_end, need_data=NEED_DATA, timeout=EXCHANGE_TIMEOUT
        )
        phone_driver: Driver[Any] = Driver(
            phone_conn, phone_end, need_data=NEED_DATA, timeout=EXCHANGE_TIMEOUT
        )
        watch_task = asyncio.create_task(self._serve(watch_driver, cutter))
        channel = CuttingChannel(phone_driver, cutter)
        bridge = RemoteEs10(channel, asyncio.get_running_loop(), timeout=EXCHANGE_TIMEOUT)
        result: T | None = None
        error: BaseException | None = None
        info: CompanionInfo | None = None
        try:
            info = await self._open(phone_driver)
            es10: Es10 = bridge if wrap is None else wrap(bridge)

            def run() -> T:
                assert info is not None
                return asyncio.run(_call(work, es10, info))

            result = await asyncio.to_thread(run)
            await phone_driver.send(Bye())
            await phone_driver.next_event(timeout=2.0)
        except RspfedError as exc:
            if result is None:
                error = exc
        except BaseException as exc:  # recorded: the tests assert it never happens
            error = exc
        finally:
            await phone_driver.aclose()
        watch = await watch_task
        return SessionOutcome(
            result, error, channel.requests, watch, list(watch_end.link.transcript), info
        )

    async def _open(self, driver: Driver[Any]) -> CompanionInfo:
        event = await driver.next_event()
        if not isinstance(event, Paired):
            raise ProtocolError(f"expected Paired, got {type(event).__name__}")
        event = await driver.next_event()
        if not isinstance(event, HelloReceived):
            raise ProtocolError(f"expected the watch's hello, got {type(event).__name__}")
        await driver.send(CompanionRequest())
        event = await driver.next_event()
        if not isinstance(event, CompanionInfoReceived):
            raise ProtocolError(f"expected companionInfo, got {type(event).__name__}")
        return event.message

    async def _serve(self, driver: Driver[Any], cutter: _Cutter) -> WatchOutcome:
        """The watch: companion info, then every relayed request through the responder."""
        out = WatchOutcome()
        responder = CompanionResponder(InProcessEs10(self.watch.isdr))
        try:
            while True:
                event = await driver.next_event()
                if isinstance(event, Paired | HelloReceived):
                    continue
                if isinstance(event, CompanionRequested):
                    der = asn1.encode(rsp.DeviceInfo(WATCH_DEVICE_INFO.to_asn1()))
                    await driver.send(CompanionInfo("Ana's watch", self.watch_eid, der))
                    continue
                if isinstance(event, Es10Requested):
                    before = responder.refused
                    answer = responder.answer(event.message)
                    if isinstance(answer, Es10Response):
                        cutter.on_answer(answer.der)
                    await driver.send(answer)
                    if responder.refused > before:
                        out.refused += 1
                    else:
                        out.answered += 1
                    continue
                if isinstance(event, ByeReceived | ConnectionClosed):
                    out.ended_by = type(event).__name__
                    return out
                raise ProtocolError(f"unexpected {type(event).__name__}")
        except BaseException as exc:  # recorded: the tests assert it is an RspfedError
            out.error = exc
            return out
        finally:
            await driver.aclose()

    def close(self) -> None:
        """Close the watch's eUICC and the operator's store."""
        self.watch.close()
        self.ow.close()


async def _call(work: Work[T], es10: Es10, info: CompanionInfo) -> T:
    return await work(es10, info)


def _installer(package: bytes) -> str:
    return install_package(package).iccid


def make_relay_world(tmp: Path, world: World, *, seed: int = 1) -> RelayWorld:
    """The operator world with a registered primary phone, and a new watch."""
    from rspfed.lpa import Lpa as RealLpa

    tmp.mkdir(parents=True, exist_ok=True)
    ow = make_operator_world(tmp, world)
    sub, enrolment = ow.operator.subscribe("ts48", Plan(pool_bytes=20 * GB, device_limit=8))
    phone = ow.euicc()
    ow.download(phone, enrolment.activation_code)
    ow.register(phone)
    assert phone.key is not None
    assert (tmp / "euicc1" / "euicc.db").exists()
    (tmp / "watch").mkdir()
    path = tmp / "watch" / "euicc.db"
    watch = Euicc.create(path, world.pki, now=NOW, installer=_installer)
    assert RealLpa(InProcessEs10(watch.isdr)).profiles() == []
    return RelayWorld(ow, sub.id, phone, path, watch, PairedKey.from_psk(bytes([seed]) * 32))
