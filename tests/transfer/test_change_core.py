"""Device change, device side (rspfed.transfer.change), in process: the journal
(device store v3), a primary's change end to end, a secondary's, a change onto
a device holding a linked profile of the subscription, and crash injection at
every write of every store of every party (old device store + eUICC, new
device store + eUICC, operator store + network store) with recovery by
``resume`` on both sides and the operator's restart."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rspfed.errors import (
    RspfedError,
    SignatureError,
    StateError,
    TokenRevokedError,
    UsageError,
)
from rspfed.federation import DeviceClass, Service, issue_token
from rspfed.federation.device import (
    MIGRATIONS,
    SCHEMA_VERSION,
    ChangeJournal,
    CompanionRecord,
    DeviceRecord,
    DeviceStore,
    migrate,
)
from rspfed.federation.types import ChangeState, DeviceRole, DeviceState
from rspfed.network import NetworkRefusedError, SubscriberState
from rspfed.transfer import change as ch
from tests.federation.world import Phone
from tests.transfer.change_env import (
    OPERATOR_URL,
    Base,
    ChangeEnv,
    Crash,
    Driver,
    Faults,
    Party,
    build_base,
    fast_dir,
    served,
)

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Base]:
    where = fast_dir(tmp_path_factory.mktemp("change-core"))
    yield build_base(where)
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
def env(base: Base, tmp_path: Path) -> Iterator[ChangeEnv]:
    e = ChangeEnv.open(base, tmp_path / "run")
    yield e
    e.close()


# --------------------------------------------------------------------------
# the journal (device store schema v3)


def _companion(n: int = 1) -> CompanionRecord:
    return CompanionRecord(
        name=f"watch {n}",
        eid=f"{n:032d}",
        peer_role="watch",
        reconnection_id=bytes([n]) * 16,
        psk=bytes([n + 1]) * 32,
        transport="ble",
        paired=T0,
    )


def _journal(**kw: Any) -> ChangeJournal:
    fields: dict[str, Any] = {
        "side": "old",
        "change_id": "c-1",
        "phase": "requested",
        "secret": "s3cr3t-value",
        "operator_url": OPERATOR_URL,
        "created": T0,
        "updated": T0,
        "activation_code": "1$smdp.test$MATCH-1",
        "new_eid": "8" * 32,
        "old_iccid": "8949000000000000001",
        "new_iccid": "8949000000000000002",
        "role": "primary",
        "subscription_id": "s-1",
        "device_id": "d-1",
        "companions": (_companion(1), _companion(2)),
    }
    fields.update(kw)
    return ChangeJournal(**fields)


@pytest.mark.parametrize("passphrase", [None, b"correct horse"])
def test_journal_round_trip_sealed(tmp_path: Path, passphrase: bytes | None) -> None:
    path = tmp_path / "d.sqlite"
    journal = _journal()
    with DeviceStore.create(path, passphrase=passphrase) as store:
        assert store.change() is None
        store.set_change(journal)
        record = DeviceRecord(operator_url=OPERATOR_URL, role="primary")
        store.set_change(journal.at("order_sent", T0 + timedelta(1)), record=record)
        assert store.record() == record
    with DeviceStore.open(path, passphrase=passphrase) as store:
        got = store.change()
        assert got == journal.at("order_sent", T0 + timedelta(1))
        assert store.clear_change() is True
        assert store.change() is None
        assert store.clear_change() is False
    raw = path.read_bytes() + (
        path.with_name(path.name + "-wal").read_bytes()
        if path.with_name(path.name + "-wal").exists()
        else b""
    )
    if passphrase is not None:
        assert b"s3cr3t-value" not in raw
        assert b"MATCH-1" not in raw
        assert bytes([2]) * 32 not in raw
    for text in (repr(journal), str(journal)):
        assert "s3cr3t" not in text
        assert "MATCH" not in text
        assert "\\x02" not in text


def test_journal_needs_the_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    with DeviceStore.create(path, passphrase=b"pw") as store:
        store.set_change(_journal())
    with DeviceStore.open(path) as store, pytest.raises(UsageError):
        store.change()
    with DeviceStore.open(path, passphrase=b"wrong") as store, pytest.raises(UsageError):
        store.change()


def test_journal_refuses_bad_values() -> None:
    with pytest.raises(UsageError):
        _journal(side="both")
    with pytest.raises(UsageError):
        _journal(phase="enabled")  # a new-side phase on the old side
    with pytest.raises(UsageError):
        _journal(companions=tuple(_companion(i) for i in range(9)))
    with pytest.raises(UsageError):
        _journal(created=datetime(2026, 1, 1))


def test_version_2_store_migrates_to_3(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(db, MIGRATIONS[:2]) == 0
    db.execute("INSERT INTO record (id, operator_url, role) VALUES (1, 'https://op', 'primary')")
    db.close()
    with DeviceStore.open(path) as store:
        assert store.record() == DeviceRecord(operator_url="https://op", role="primary")
        assert store.change() is None
        store.set_change(_journal())
        assert store.change() == _journal()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    db.close()


# --------------------------------------------------------------------------
# whole changes


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def phone_of(party: Party) -> Phone:
    return Phone(party.euicc)


def attaches(env: ChangeEnv, party: Party) -> bool:
    try:
        env.dw.view().attach(phone_of(party))
    except NetworkRefusedError:
        return False
    return True


def signs(env: ChangeEnv, party: Party) -> bool:
    key = party.store.private_key()
    assert key is not None
    try:
        env.operator.caller(key)
    except (SignatureError, TokenRevokedError, StateError):
        return False
    return True


def do_change(
    env: ChangeEnv, old: Party, new: Party, **kw: Any
) -> tuple[ChangeJournal, ChangeJournal, Any]:
    op, clock = env.operator, env.clock
    order = run(ch.old_request_change(op, old.store, new_eid=new.eid, now=clock, **kw))
    record = old.store.record()
    assert record is not None
    assert record.role is not None
    ticket = ch.ticket_from_order(order, record.operator_url, record.role)
    ch.old_order_sent(old.store, now=clock)
    events: list[ch.ChangeEvent] = []
    new_j = run(
        ch.new_apply_order(
            op, new.store, new.lpa, new.card, ticket, now=clock, es9=env.es9, wait=0,
            progress=events.append,
        )
    )  # fmt: skip
    assert new_j.phase == "registered"
    old_j = run(ch.old_finish(op, old.store, old.lpa, now=clock, es9=env.es9, wait=0))
    assert old_j.phase == "done"
    new_j = ch.new_finish(new.store, old_j.companions, now=clock)
    assert new_j.phase == "done"
    return old_j, new_j, order


def test_primary_change_end_to_end(env: ChangeEnv) -> None:
    old, new, laptop = env["phone"], env["newphone"], env["laptop"]
    old_key = old.store.private_key()
    assert old_key is not None
    old.store.set_companion(_companion(3))
    old_iccid = next(i for i, on in old.profiles().items() if on)
    old_j, new_j, order = do_change(env, old, new, name="new phone")
    change = order.change
    reader = env.reader()
    assert served(reader, (change.old_imsi, change.new_imsi)) == [change.new_imsi]
    assert reader.subscriber(change.old_imsi).state is SubscriberState.REMOVED
    # the old phone: profile deleted, record no longer a member; the new one: enabled, primary
    assert old_iccid not in old.profiles()
    assert new.profiles() == {change.new_iccid: True}
    record = new.store.record()
    assert record is not None
    assert (record.role, record.subscription_id, record.device_id, record.eid) == (
        "primary", change.subscription_id, change.device_id, new.eid,
    )  # fmt: skip
    gone = old.store.record()
    assert gone is not None
    assert gone.device_id is None
    assert gone.role is None
    assert [c.eid for c in new.store.companions()] == [_companion(3).eid]
    assert old.store.companions() == []  # they went with the subscription
    assert new.store.companions()[0].psk == _companion(3).psk
    # the network: the new phone attaches, the laptop still attaches and signs
    assert attaches(env, new)
    assert attaches(env, laptop)
    assert signs(env, laptop)
    assert signs(env, new)
    assert not signs(env, old)
    # the new primary's token is redeemable, the old key's is refused
    fresh = env["newtablet"].eid

    def token(key: Any) -> bytes:
        return issue_token(
            primary_key=key, subscription_id=change.subscription_id, eid=fresh,
            device_class=DeviceClass.TABLET, services=frozenset({Service.DATA}),
            quota=10**9, now=env.clock(), rand=os.urandom,
        )  # fmt: skip

    with pytest.raises((TokenRevokedError, SignatureError)):
        env.dw.operator.redeem(token(old_key), fresh, name="t")
    new_key = new.store.private_key()
    assert new_key is not None
    enrolment = env.dw.operator.redeem(token(new_key), fresh, name="t")
    assert enrolment.activation_code
    state = env.dw.operator.store.change(change.id)
    assert state is not None
    assert state.change.state is ChangeState.COMPLETED
    assert old_j.old_iccid == old_iccid
    assert new_j.new_iccid == change.new_iccid


def test_secondary_change(env: ChangeEnv) -> None:
    old, new, phone = env["tablet"], env["newtablet"], env["phone"]
    _, _, order = do_change(env, old, new)
    change = order.change
    assert served(env.reader(), (change.old_imsi, change.new_imsi)) == [change.new_imsi]
    record = new.store.record()
    assert record is not None
    assert record.role == "secondary"
    assert attaches(env, new)
    assert signs(env, new)
    assert not signs(env, old)
    assert attaches(env, phone)
    assert signs(env, phone)


def test_change_onto_a_device_holding_a_linked_profile(env: ChangeEnv) -> None:
    old, laptop = env["phone"], env["laptop"]
    laptop_iccid = next(iter(laptop.profiles()))
    laptop_record = laptop.store.record()
    assert laptop_record is not None
    _, new_j, order = do_change(env, old, laptop)
    change = order.change
    assert change.replaced_iccid == laptop_iccid
    assert new_j.replaced_iccid == laptop_iccid
    assert laptop.profiles() == {change.new_iccid: True}  # the linked profile deleted
    replaced = env.dw.operator.store.device(laptop_record.device_id or "")
    assert replaced is not None
    assert replaced.state is DeviceState.REMOVED
    record = laptop.store.record()
    assert record is not None
    assert record.role == "primary"
    assert record.device_id == change.device_id
    assert attaches(env, laptop)
    assert signs(env, laptop)
    devices = env.dw.operator.store.devices(change.subscription_id)
    assert sum(1 for d in devices if d.occupies_slot) == 2  # primary + tablet: slot freed


def test_old_device_cancels_and_new_device_cleans_up(env: ChangeEnv) -> None:
    old, new = env["phone"], env["newphone"]
    op, clock = env.operator, env.clock
    order = run(ch.old_request_change(op, old.store, new_eid=new.eid, now=clock))
    ticket = ch.ticket_from_order(order, OPERATOR_URL, "primary")
    old_j = run(ch.resume(op, old.store, old.lpa, now=clock, abandon=True))
    assert old_j is not None
    assert old_j.phase == "cancelled"
    new_j = run(ch.new_apply_order(op, new.store, new.lpa, new.card, ticket, now=clock, wait=0))
    assert new_j.phase == "cancelled"
    assert new.profiles() == {}
    change = order.change
    assert served(env.reader(), (change.old_imsi, change.new_imsi)) == [change.old_imsi]
    assert attaches(env, old)
    assert signs(env, old)


def test_lapsed_order_rolls_back_on_resume(env: ChangeEnv) -> None:
    old, new = env["phone"], env["newphone"]
    op, clock = env.operator, env.clock
    order = run(ch.old_request_change(op, old.store, new_eid=new.eid, now=clock))
    ticket = ch.ticket_from_order(order, OPERATOR_URL, DeviceRole.PRIMARY)
    ch.old_order_sent(old.store, now=clock)
    with pytest.raises(StateError):  # the switch cannot come: notifications never reach it
        run(ch.new_apply_order(op, new.store, new.lpa, new.card, ticket, now=clock, wait=0,
                               es9=_Deaf(env.es9)))  # fmt: skip
    j = new.store.change()
    assert j is not None
    assert j.phase == "enabled"
    clock.advance(env.dw.operator.config.order_ttl + timedelta(seconds=1))
    old_j = run(ch.resume(op, old.store, old.lpa, now=clock))
    assert old_j is not None
    assert old_j.phase == "cancelled"
    new_j = run(ch.resume(op, new.store, new.lpa, new.card, now=clock))
    assert new_j is not None
    assert new_j.phase == "cancelled"
    assert new.profiles() == {}
    change = order.change
    assert served(env.reader(), (change.old_imsi, change.new_imsi)) == [change.old_imsi]
    assert attaches(env, old)


class _Deaf:
    """An ES9+ link that downloads but loses every notification (a cut link)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.deaf = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def handle_notification(self, request: Any) -> None:
        from rspfed.errors import TransportError

        if self.deaf:
            raise TransportError("link cut")
        await self.inner.handle_notification(request)


# --------------------------------------------------------------------------
# crash injection at every write of every store of every party

FLOWS = {
    "primary": ("phone", "newphone"),
    "secondary": ("tablet", "newtablet"),
    "replace": ("phone", "laptop"),
}
FULL = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" or bool(os.environ.get("RSPFED_ALL_CRASHES"))


def _points(base: Base, tmp: Path, mover: str, target: str) -> list[str]:
    """Every write instant of a clean run (the invariant checked at each one)."""
    faults = Faults()
    env = ChangeEnv.open(base, tmp, faults)
    try:
        driver = Driver.start(env, mover, target)
        faults.check = driver.check
        faults.armed = True
        for step in driver.steps():
            step()
            driver.check_usable()
        faults.armed = False
        driver.assert_switched()
        assert len(driver.served_log) == 2  # old, then new: never none, never both
        return list(faults.labels)
    finally:
        env.close()


def _absorbed(label: str) -> bool:
    """An instant whose injected exception the store absorbs by design: the eUICC
    store treats a failure after its COMMIT landed as success (it checks), so the
    crash there is the next instant's (every process restarts at any crash)."""
    return "-euicc:" in label and label.endswith("commit:after")


def _chosen(labels: list[str], flow: str) -> list[int]:
    """The crash points run.  All of them with RSPFED_ALL_CRASHES=1 (or the fuzz
    profile).  In CI (the time budget): every device-store (journal) transaction
    crashed before its first write and after its COMMIT (a crash before the COMMIT
    of the same transaction is the same rollback), every network write; for the
    primary's change also every 2nd operator write and every 5th eUICC write (the
    operator's stores are crash-tested at every write by tests/federation; most
    eUICC writes are the download's, whose recovery is SGP.22's)."""
    out = []
    euicc = operator = 0
    previous: dict[str, str] = {}
    for i, label in enumerate(labels, 1):
        store, _, what = label.partition(":")
        last = previous.get(store, "")
        previous[store] = what
        if _absorbed(label):
            continue
        if FULL:
            out.append(i)
            continue
        if store.endswith("-device") and what == "commit:before" and last != "commit:after":
            continue
        if store.endswith("-euicc"):
            euicc += 1
            if flow != "primary" or euicc % 5 != 1:
                continue
        if store == "operator":
            operator += 1
            if flow != "primary" or operator % 2 != 1:
                continue
        out.append(i)
    return out


PARTS = 3


@pytest.mark.parametrize("part", range(PARTS))
@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_crash_at_every_write_then_resume(base: Base, flow: str, part: int) -> None:
    """Each flow's crash points in PARTS interleaved slices (for the test workers)."""
    mover, target = FLOWS[flow]
    tmp_path = base.path.parent / f"crash-{flow}-{part}"
    labels = _points(base, tmp_path / "count", mover, target)
    crashed: list[str] = []
    points = _chosen(labels, flow)[part::PARTS]
    for k in points:
        faults = Faults(crash_at=k)
        env = ChangeEnv.open(base, tmp_path / f"run-{k}", faults)
        try:
            driver = Driver.start(env, mover, target)
            faults.armed = True
            try:
                for step in driver.steps():
                    step()
                    driver.check_usable()
            except Crash as crash:
                crashed.append(str(crash))
                driver.recover()
                driver.converge()
            faults.armed = False
            driver.check_usable()
            driver.assert_switched()
        finally:
            env.close()
            shutil.rmtree(tmp_path / f"run-{k}", ignore_errors=True)
    chosen = [labels[k - 1] for k in points]
    assert crashed == chosen
    print(f"{flow}/{part}: {len(labels)} write instants, {len(chosen)} crashed and recovered")


def test_order_sent_again_with_a_renewed_secret(env: ChangeEnv) -> None:
    """A cut after the download: the old device asks again (the operator renews the
    secret, the old one stops working) and resends; the new device takes it up."""
    old, new = env["phone"], env["newphone"]
    op, clock = env.operator, env.clock
    first = run(ch.old_request_change(op, old.store, new_eid=new.eid, now=clock))
    ticket = ch.ticket_from_order(first, OPERATOR_URL, "primary")
    with pytest.raises(StateError):
        run(
            ch.new_apply_order(
                op, new.store, new.lpa, new.card, ticket, now=clock, wait=0, es9=_Deaf(env.es9)
            )
        )
    with pytest.raises(StateError):  # enabled and announced: only the old device may cancel
        run(ch.cancel(op, new.store, new.lpa, now=clock))
    again = run(ch.old_request_change(op, old.store, new_eid=new.eid, now=clock))
    assert again.change.id == first.change.id
    assert again.secret != first.secret
    journal = old.store.change()
    assert journal is not None
    resent = ch.ticket_from_journal(journal)
    assert resent.secret == again.secret
    new_j = run(
        ch.new_apply_order(op, new.store, new.lpa, new.card, resent, now=clock, wait=0, es9=env.es9)
    )
    assert new_j.phase == "registered"
    assert new_j.secret == again.secret
    old_j = run(ch.old_finish(op, old.store, old.lpa, now=clock, es9=env.es9, wait=0))
    assert old_j.phase == "done"
    assert ch.new_finish(new.store, now=clock).phase == "done"
    # applying the same order again is a no-op
    assert (
        run(ch.new_apply_order(op, new.store, new.lpa, new.card, resent, now=clock, wait=0)).phase
        == "done"
    )
    change = again.change
    assert served(env.reader(), (change.old_imsi, change.new_imsi)) == [change.new_imsi]


def test_progress_events_and_polling(env: ChangeEnv) -> None:
    """The new side polls (injected sleep) until the switch; the events name each step."""
    old, new = env["tablet"], env["newtablet"]
    op, clock = env.operator, env.clock
    order = run(ch.old_request_change(op, old.store, new_eid=new.eid, now=clock))
    ticket = ch.ticket_from_order(order, OPERATOR_URL, "secondary")
    slept: list[float] = []
    deaf = _Deaf(env.es9)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            deaf.deaf = False  # the link comes back

    events: list[ch.ChangeEvent] = []
    journal = run(
        ch.new_apply_order(
            op, new.store, new.lpa, new.card, ticket, now=clock, es9=deaf, wait=10,
            interval=2, sleep=sleep, progress=events.append,
        )
    )  # fmt: skip
    assert journal.phase == "registered"
    assert slept == [2, 2]
    steps = [e.step for e in events]
    for step in (
        ch.ChangeStep.ORDER_RECEIVED,
        ch.ChangeStep.DOWNLOADING,
        ch.ChangeStep.DOWNLOADED,
        ch.ChangeStep.ENABLED,
        ch.ChangeStep.WAITING,
        ch.ChangeStep.NOTIFIED,
        ch.ChangeStep.SWITCHED,
        ch.ChangeStep.REGISTERED,
    ):
        assert step in steps
    assert steps.index(ch.ChangeStep.ENABLED) < steps.index(ch.ChangeStep.SWITCHED)


class _CutDownload:
    """An ES9+ link cut during the download (GetBoundProfilePackage lost) ``cuts`` times."""

    def __init__(self, inner: Any, cuts: int) -> None:
        self.inner = inner
        self.cuts = cuts

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get_bound_profile_package(self, request: Any) -> Any:
        from rspfed.errors import TransportError

        if self.cuts:
            self.cuts -= 1
            raise TransportError("link cut")
        return await self.inner.get_bound_profile_package(request)


def test_download_cut_then_resume(env: ChangeEnv) -> None:
    """The download's link is cut (twice: the LPA retries once by itself): the new
    device's journal stays at order_received; its resume downloads again (SGP.22
    retry of the same order) and the change goes through."""
    old, new = env["phone"], env["newphone"]
    op, clock = env.operator, env.clock
    order = run(ch.old_request_change(op, old.store, new_eid=new.eid, now=clock))
    ticket = ch.ticket_from_order(order, OPERATOR_URL, "primary")
    link = _CutDownload(env.es9, cuts=2)
    with pytest.raises(Exception) as info:  # noqa: PT011 - whichever RspfedError the LPA gives
        run(
            ch.new_apply_order(
                op, new.store, new.lpa, new.card, ticket, now=clock, wait=0, es9=link
            )
        )
    assert isinstance(info.value, RspfedError)
    journal = new.store.change()
    assert journal is not None
    assert journal.phase == "order_received"
    assert new.profiles() == {}
    resumed = run(ch.resume(op, new.store, new.lpa, new.card, now=clock, es9=link))
    assert resumed is not None
    assert resumed.phase == "done"
    old_j = run(ch.resume(op, old.store, old.lpa, now=clock, es9=env.es9))
    assert old_j is not None
    assert old_j.phase == "done"
    change = order.change
    assert served(env.reader(), (change.old_imsi, change.new_imsi)) == [change.new_imsi]
