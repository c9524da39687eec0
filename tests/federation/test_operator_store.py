"""The operator's SQLite store: schema, file mode, write faults and crashes.

* An empty file is migrated to :data:`SCHEMA_VERSION`; a file from a newer
  rspfed is refused; the file (and its WAL companions) are mode 0600.
* Fault injection (the store's ``fault`` hook): during ``redeem``,
  ``remove``, ``approve``, ``collect`` and ``eap_continue`` every write
  statement and every commit fails in turn.  After each failure the file,
  reopened by a fresh connection, holds the old state (and after the last
  attempt, which is left alone, the new one), and the SM-DP+ holds no order
  the operator does not know.
* A crash: a child process redeems a token and is SIGKILLed at a chosen
  write or at a random moment; the parent reopens everything and
  ``sync(full=True)`` cancels any orphan order.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.eap import EapAkaPrimePeer
from rspfed.errors import StorageError, TokenRevokedError
from rspfed.federation import DeviceClass, Service, parse_token
from rspfed.federation.operator import Operator
from rspfed.federation.signing import sign_request
from rspfed.federation.store import SCHEMA_VERSION, SqliteOperatorStore
from rspfed.federation.types import (
    Caller,
    DeviceState,
    EapPurpose,
    JoinState,
    TokenState,
)
from rspfed.network import Auc, NetworkRefusedError, SqliteSubscriberStore
from rspfed.network.usim import eap_usim
from rspfed.smdp import ItemState, Smdp, SqliteSmdpStore
from tests.federation.world import PLAN, OperatorWorld, Phone, make_operator_world
from tests.paths import REPO
from tests.smdp.helpers import Clock, World, make_world, state_of

_T = TypeVar("_T")

_TABLES = ("subscription", "key", "device", "token", "join_request")
"""The tables that hold the operator's state (nonces and EAP sessions are scratch)."""

_ORDER_STATES = frozenset(
    {
        ItemState.ALLOCATED,
        ItemState.LINKED,
        ItemState.CONFIRMED,
        ItemState.RELEASED,
        ItemState.DOWNLOADED,
    }
)


# --------------------------------------------------------------------------
# schema and file


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_an_empty_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "op.sqlite"
    path.touch(mode=0o644)
    store = SqliteOperatorStore(path)
    assert store.schema_version == SCHEMA_VERSION
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert set(_TABLES) | {"eap_session", "nonce"} <= tables
    assert _mode(path) == 0o600
    # opening again changes nothing
    again = SqliteOperatorStore(path)
    assert again.schema_version == SCHEMA_VERSION
    again.close()


def test_a_new_file_is_private_with_its_companions(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = SqliteOperatorStore(tmp_path / "op.sqlite")
    finally:
        os.umask(old)
    store.subscription_ids()
    for name in ("op.sqlite", "op.sqlite-wal", "op.sqlite-shm"):
        if (tmp_path / name).exists():
            assert _mode(tmp_path / name) == 0o600, name
    store.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "op.sqlite"
    SqliteOperatorStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StorageError, match="newer"):
        SqliteOperatorStore(path)


def test_a_failed_migration_leaves_the_file_empty(tmp_path: Path) -> None:
    path = tmp_path / "op.sqlite"
    calls: list[str] = []

    def fail_late(label: str) -> None:
        calls.append(label)
        if label == "commit":
            raise StorageError("injected")

    with pytest.raises(StorageError, match="injected"):
        SqliteOperatorStore(path, fault=fail_late)
    assert "create" in calls
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
    db.close()
    store = SqliteOperatorStore(path)
    assert store.schema_version == SCHEMA_VERSION
    store.close()


# --------------------------------------------------------------------------
# fault injection


@attrs.define
class Faults:
    """The store's ``fault`` hook: fail the ``at``-th write or commit (counting from 1)."""

    at: int | None = None
    seen: list[str] = attrs.field(factory=list)

    def __call__(self, label: str) -> None:
        if self.at is None:
            return
        self.seen.append(label)
        if len(self.seen) == self.at:
            raise StorageError(f"injected fault at {label}")

    def arm(self, at: int) -> None:
        self.at, self.seen = at, []

    def disarm(self) -> None:
        self.at = None


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What is really on disk: the state tables through a fresh connection."""
    db = sqlite3.connect(path)
    try:
        return {
            table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            for table in _TABLES
        }
    finally:
        db.close()


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("pki"))


@attrs.define
class FaultyWorld:
    ow: OperatorWorld
    faults: Faults
    path: Path
    sub_id: str
    phone: Phone

    @property
    def operator(self) -> Operator:
        return self.ow.operator

    def caller(self, device: Phone | None = None) -> Caller:
        key = (device or self.phone).key
        assert key is not None
        header = sign_request(
            key, method="POST", path="/f", body=b"", now=self.ow.clock(), nonce=os.urandom(16)
        )
        return self.operator.authenticate_request(header, "POST", "/f", b"")

    def token(self, eid: str, device_class: DeviceClass = DeviceClass.TABLET) -> bytes:
        return self.ow.token(self.phone, self.sub_id, eid, device_class)

    def check_nothing_allocated(self) -> None:
        """Every SM-DP+ order with the operator's requester is an ordered device on disk."""
        on_disk = sqlite3.connect(self.path)
        try:
            ordered = {
                r[0]
                for r in on_disk.execute(
                    "SELECT iccid FROM device WHERE state = ?", (DeviceState.ORDERED.value,)
                )
            }
        finally:
            on_disk.close()
        requester = self.operator.config.requester
        for item in self.ow.smdp.inventory():
            if item.requester == requester and item.state in _ORDER_STATES:
                assert item.iccid in ordered, item


@pytest.fixture
def fw(tmp_path: Path, shared_world: World) -> Iterator[FaultyWorld]:
    ow = make_operator_world(tmp_path, shared_world)
    ow.store.close()
    faults = Faults()
    path = tmp_path / "operator.sqlite"
    ow.store = SqliteOperatorStore(path, fault=faults)
    ow.operator = Operator(ow.store, ow.smdp, ow.auc, now=ow.clock, rand=os.urandom)
    sub, enrolment = ow.operator.subscribe("ts48", PLAN)
    phone = ow.euicc()
    ow.download(phone, enrolment.activation_code)
    ow.register(phone)
    yield FaultyWorld(ow, faults, path, sub.id, phone)
    ow.close()


def every_fault(
    fw: FaultyWorld, call: Callable[[], _T], *, retry: Callable[[], None] | None = None
) -> tuple[dict[str, list[tuple[Any, ...]]], _T, int]:
    """Run ``call`` with the 1st, 2nd, ... write or commit failing until it succeeds.

    After each failure the file holds the state from before and nothing is
    allocated at the SM-DP+.  Returns that state, the result and how many
    writes and commits the successful run made.
    """
    before = _dump(fw.path)
    for at in range(1, 100):
        if retry is not None:
            retry()
        fw.faults.arm(at)
        try:
            result = call()
        except StorageError:
            assert len(fw.faults.seen) == at  # our fault, not another failure
            fw.faults.disarm()
            assert _dump(fw.path) == before, f"a fault at write {at} left a partial state"
            fw.check_nothing_allocated()
            continue
        finally:
            fw.faults.disarm()
        assert at > 1
        fw.check_nothing_allocated()
        return before, result, at - 1
    raise AssertionError("the operation never succeeded")


def test_redeem_is_all_or_nothing(fw: FaultyWorld) -> None:
    tablet = fw.ow.euicc()
    token = fw.token(tablet.eid)
    before, enrolment, writes = every_fault(fw, lambda: fw.operator.redeem(token, tablet.eid))
    assert writes >= 3  # token, device, commit
    after = _dump(fw.path)
    assert len(after["device"]) == len(before["device"]) + 1
    assert len(after["token"]) == len(before["token"]) + 1
    record = fw.ow.store.token(parse_token(token).token_id)
    assert record is not None
    assert record.state is TokenState.RESERVED
    item = fw.ow.smdp.item(enrolment.iccid)
    assert item is not None
    assert item.state is ItemState.RELEASED
    assert item.eid == tablet.eid
    # the failed attempts' orders went back to the inventory: one order is live
    requester = fw.operator.config.requester
    live = [
        i for i in fw.ow.smdp.inventory() if i.requester == requester and i.state in _ORDER_STATES
    ]
    assert [i.iccid for i in live] == [enrolment.iccid]
    fw.ow.download(tablet, enrolment.activation_code)
    assert fw.ow.attach(tablet, Service.DATA) == frozenset({Service.DATA})


def test_remove_of_an_active_device_is_all_or_nothing(fw: FaultyWorld) -> None:
    laptop = fw.ow.euicc()
    enrolment = fw.operator.redeem(fw.token(laptop.eid, DeviceClass.LAPTOP), laptop.eid)
    fw.ow.download(laptop, enrolment.activation_code)
    fw.operator.sync()  # the laptop is active
    primary = fw.caller()
    _, removed, _ = every_fault(fw, lambda: fw.operator.remove(primary, enrolment.device_id))
    assert removed.state is DeviceState.REMOVED
    stored = fw.ow.store.device(enrolment.device_id)
    assert stored is not None
    assert stored.state is DeviceState.REMOVED
    with pytest.raises(NetworkRefusedError):
        fw.ow.auc.check_service(removed.imsi, Service.DATA)
    assert fw.ow.store.slots_used(fw.sub_id) == 1


def test_remove_of_an_ordered_device_is_all_or_nothing(fw: FaultyWorld) -> None:
    """A reserved order removed: its token revoked for good, even after failed attempts."""
    tablet = fw.ow.euicc()
    token = fw.token(tablet.eid)
    enrolment = fw.operator.redeem(token, tablet.eid)
    primary = fw.caller()
    _, removed, _ = every_fault(fw, lambda: fw.operator.remove(primary, enrolment.device_id))
    assert removed.state is DeviceState.REMOVED
    record = fw.ow.store.token(parse_token(token).token_id)
    assert record is not None
    assert record.state is TokenState.REVOKED
    fw.operator.sync(full=True)
    item = fw.ow.smdp.item(enrolment.iccid)
    assert item is not None
    assert item.state is ItemState.UNAVAILABLE  # retired: the removed record keeps the ICCID


def test_a_removed_devices_live_order_is_cancelled_by_a_full_sync(fw: FaultyWorld) -> None:
    """The state a crash between recording a removal and cancelling its order leaves."""
    tablet = fw.ow.euicc()
    enrolment = fw.operator.redeem(fw.token(tablet.eid), tablet.eid)
    device = fw.ow.store.device(enrolment.device_id)
    assert device is not None
    fw.ow.store.put_device(attrs.evolve(device, state=DeviceState.REMOVED, order_expires=None))
    fw.operator.sync(full=True)  # within order_ttl: it might be a removal in flight
    assert state_of(fw.ow.smdp, enrolment.iccid) is ItemState.RELEASED
    fw.ow.clock.advance(fw.operator.config.order_ttl)
    fw.operator.sync(full=True)
    assert state_of(fw.ow.smdp, enrolment.iccid) is ItemState.UNAVAILABLE
    stored = fw.ow.store.device(enrolment.device_id)
    assert stored is not None
    assert stored.state is DeviceState.REMOVED


def test_approve_and_collect_are_all_or_nothing(fw: FaultyWorld) -> None:
    watch = fw.ow.euicc()
    ticket = fw.operator.join(fw.sub_id, watch.eid, DeviceClass.WATCH, "watch")
    token = fw.token(watch.eid, DeviceClass.WATCH)
    primary = fw.caller()
    _, approved, writes = every_fault(
        fw, lambda: fw.operator.approve(primary, ticket.request.id, token)
    )
    assert approved.state is JoinState.APPROVED
    assert writes >= 2
    _, enrolment, writes = every_fault(
        fw, lambda: fw.operator.collect(ticket.request.id, ticket.secret)
    )
    assert enrolment is not None
    assert writes >= 4
    found = fw.ow.store.join(ticket.request.id)
    assert found is not None
    assert found[0].state is JoinState.COLLECTED
    assert found[0].device_id == enrolment.device_id
    assert fw.operator.collect(ticket.request.id, ticket.secret) == enrolment
    fw.ow.download(watch, enrolment.activation_code)
    assert fw.ow.attach(watch, Service.DATA) == frozenset({Service.DATA})


def test_registration_is_all_or_nothing(fw: FaultyWorld) -> None:
    """The primary rotates its key over EAP-AKA' while the final writes fail in turn."""
    old_key = fw.phone.key
    assert old_key is not None
    identity = fw.ow.identity(fw.phone)
    state: dict[str, Any] = {}

    def start() -> None:
        fw.phone.key = ec.generate_private_key(ec.SECP256R1())
        first = fw.operator.eap_start(identity, purpose=EapPurpose.REGISTER, eid=fw.phone.eid)
        peer = EapAkaPrimePeer(
            identity=identity,
            usim=eap_usim(fw.phone.euicc.card),
            network_name=fw.operator.config.network_name,
            federation_key=fw.phone.point,
        )
        answer = peer.receive(first.packet)
        assert answer is not None
        state.update(session=first.session_id, answer=answer)

    before, step, writes = every_fault(
        fw, lambda: fw.operator.eap_continue(state["session"], state["answer"]), retry=start
    )
    assert step.done
    assert step.device is not None
    assert writes >= 5  # session, retire, key, device, subscription, commits
    sub = fw.operator.subscription(fw.sub_id)
    assert sub.primary_key == fw.phone.point
    # every key of the failed attempts stayed unregistered
    after = _dump(fw.path)
    assert len(after["key"]) == len(before["key"]) + 1
    # tokens of the old key are refused, of the new one accepted
    tablet = fw.ow.euicc()
    new_key = fw.phone.key
    fw.phone.key = old_key
    old_token = fw.token(tablet.eid)
    fw.phone.key = new_key
    with pytest.raises(TokenRevokedError):
        fw.operator.redeem(old_token, tablet.eid)
    assert fw.operator.redeem(fw.token(tablet.eid), tablet.eid).iccid


# --------------------------------------------------------------------------
# a crash between the SM-DP+'s order and the operator's record

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime
    from pathlib import Path
    from rspfed.federation.operator import Operator
    from rspfed.federation.store import SqliteOperatorStore
    from rspfed.network import Auc, SqliteSubscriberStore
    from rspfed.smdp import Smdp, SqliteSmdpStore
    from tests.smdp.helpers import make_world

    tmp, now, eid, kill_at = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    world = make_world(tmp / "child-pki")
    seen = []
    def fault(label):
        seen.append(label)
        if len(seen) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    clock = lambda: datetime.fromisoformat(now)
    smdp = Smdp(world.config, SqliteSmdpStore.open(tmp / "smdp.sqlite"), now=clock)
    smdp.prepare_profile_types()
    auc = Auc(SqliteSubscriberStore(tmp / "network.sqlite"), rand=os.urandom)
    store = SqliteOperatorStore(tmp / "operator.sqlite", fault=fault)
    operator = Operator(store, smdp, auc, now=clock, rand=os.urandom)
    token = (tmp / "token.der").read_bytes()
    print("go", flush=True)
    operator.redeem(token, eid)
    os._exit(0)
    """
)


def _reopen(tmp: Path, world: World, clock: Clock) -> Operator:
    smdp = Smdp(world.config, SqliteSmdpStore.open(tmp / "smdp.sqlite"), now=clock)
    auc = Auc(SqliteSubscriberStore(tmp / "network.sqlite"), rand=os.urandom)
    return Operator(
        SqliteOperatorStore(tmp / "operator.sqlite"), smdp, auc, now=clock, rand=os.urandom
    )


def test_a_redeem_killed_at_any_moment_leaves_no_orphan(
    tmp_path: Path, shared_world: World
) -> None:
    # kill points: at the n-th write or commit of the operator's store (1: right
    # after the SM-DP+ ordered, before the operator recorded anything), and
    # SIGKILL from the parent at a random moment after the child is ready
    plans: list[tuple[int, float | None]] = [(1, None), (2, None), (3, None), (99, None)]
    rng = random.Random(1234)
    plans += [(99, rng.uniform(0.0, 0.008)) for _ in range(6)]
    children: list[tuple[Path, str, int, float | None, subprocess.Popen[bytes]]] = []
    for n, (kill_at, delay) in enumerate(plans):
        tmp = tmp_path / f"run{n}"
        tmp.mkdir()
        ow = make_operator_world(tmp, shared_world)
        sub, enrolment = ow.operator.subscribe("ts48", PLAN)
        phone = ow.euicc()
        ow.download(phone, enrolment.activation_code)
        ow.register(phone)
        tablet = ow.euicc()
        (tmp / "token.der").write_bytes(ow.token(phone, sub.id, tablet.eid, DeviceClass.TABLET))
        now = ow.clock().isoformat()
        ow.close()
        ow.smdp.store.close()
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp), now, tablet.eid, str(kill_at)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        children.append((tmp, now, kill_at, delay, child))
    outcomes: set[tuple[int, bool]] = set()
    for tmp, now, kill_at, delay, child in children:
        assert child.stdout is not None
        if delay is not None:
            assert child.stdout.readline() == b"go\n"
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=60)
        assert child.returncode in (0, -signal.SIGKILL), err.decode()
        clock = Clock(datetime.fromisoformat(now) + timedelta(minutes=1))
        operator = _reopen(tmp, shared_world, clock)
        try:
            recorded = _check_after_crash(operator, clock)
        finally:
            operator.store.close()
        outcomes.add((child.returncode, recorded))
        if kill_at == 1:
            assert (child.returncode, recorded) == (-signal.SIGKILL, False)
        if kill_at == 99 and delay is None:
            assert (child.returncode, recorded) == (0, True)
    assert (-signal.SIGKILL, False) in outcomes


def _check_after_crash(operator: Operator, clock: Clock) -> bool:
    """Old state or new on disk; an orphan order is cancelled once it is older than order_ttl."""
    store = operator.store
    requester = operator.config.requester
    tokens = [
        store.token(d.token_id)
        for d in store.devices_in_state(DeviceState.ORDERED)
        if d.token_id is not None
    ]
    ordered = {d.iccid for d in store.devices_in_state(DeviceState.ORDERED)}
    recorded = bool(ordered)
    assert len(ordered) <= 1
    assert all(t is not None and t.state is TokenState.RESERVED for t in tokens)
    assert len(tokens) == len(ordered)

    def live() -> set[str]:
        return {
            i.iccid
            for i in operator.smdp.inventory()
            if i.requester == requester and i.state in _ORDER_STATES
        }

    orphans = live() - ordered
    assert len(orphans) <= 1
    operator.sync(full=True)  # too early: the redeem might still be running elsewhere
    assert live() == ordered | orphans
    clock.advance(operator.config.order_ttl)
    operator.sync(full=True)
    assert live() == set()  # the orphan cancelled, the recorded order lapsed
    for iccid in orphans | ordered:
        item = operator.smdp.item(iccid)
        assert item is not None
        assert item.state is ItemState.AVAILABLE
    return recorded
