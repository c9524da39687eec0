"""The SM-DP+ store: migrations, file modes, session records, several connections and processes."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sqlite3
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from rspfed.errors import DecodeError, StateError, StorageError
from rspfed.smdp import (
    MIGRATIONS,
    SCHEMA_VERSION,
    InventoryItem,
    ItemState,
    ProfileType,
    RspSession,
    SessionStage,
    SqliteSmdpStore,
)
from rspfed.smdp.core import Smdp
from tests.smdp.helpers import (
    NOW,
    TEMPLATE,
    TYPE_METADATA,
    Clock,
    Lpa,
    World,
    make_euicc,
    make_world,
    pir_ok,
    state_of,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("pki") / "pki")


def test_migrates_a_version_1_file(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute(
        "INSERT INTO profile_type (name, package, metadata) VALUES (?, ?, ?)",
        ("old", TEMPLATE, '{"serviceProviderName": "a", "profileName": "b"}'),
    )
    db.execute(
        "INSERT INTO item (iccid, profile_type, state, imsi, k, opc, created, updated) "
        "VALUES ('89000000000000000016', 'old', 'available', '001010000000001', ?, ?, 0, 0)",
        (bytes(16), bytes(16)),
    )
    db.close()
    with SqliteSmdpStore.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        item = store.get_item("89000000000000000016")
        assert item is not None
        assert item.state is ItemState.AVAILABLE
        assert item.smds_address is None
        assert item.version == 0
        assert store.get_profile_type("old") is not None
        assert store.update_item(item)
        assert not store.update_item(item)  # stale version: refused
        assert store.get_binding(item.iccid) is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    SqliteSmdpStore.create(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StorageError):
        SqliteSmdpStore.open(path)
    with pytest.raises(StorageError):
        SqliteSmdpStore.create(path)
    with pytest.raises(StorageError):
        SqliteSmdpStore.open(tmp_path / "absent.db")


def test_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteSmdpStore.create(path)
    store.put_profile_type(ProfileType.from_metadata("t", TEMPLATE, TYPE_METADATA))
    for suffix in ("", "-wal", "-shm"):
        companion = Path(str(path) + suffix)
        if companion.exists():
            assert stat.S_IMODE(companion.stat().st_mode) == 0o600, suffix
    with pytest.raises(StateError):
        store.put_profile_type(ProfileType.from_metadata("t", TEMPLATE, TYPE_METADATA))
    assert store.get_profile_type("t") == ProfileType.from_metadata("t", TEMPLATE, TYPE_METADATA)
    store.close()


def test_transaction_rolls_back(tmp_path: Path) -> None:
    store = SqliteSmdpStore.create(":memory:")
    store.put_profile_type(ProfileType.from_metadata("t", TEMPLATE, TYPE_METADATA))
    item = InventoryItem(
        iccid="89000000000000000016",
        profile_type="t",
        state=ItemState.AVAILABLE,
        imsi="001010000000001",
        k=bytes(16),
        opc=bytes(16),
        created=NOW,
        updated=NOW,
    )

    def failing() -> None:
        with store.transaction():
            store.put_item(item)
            with store.transaction():  # nested: joins
                assert store.get_item(item.iccid) == item
            raise RuntimeError

    with pytest.raises(RuntimeError):
        failing()
    assert store.get_item(item.iccid) is None


sessions = hs.builds(
    RspSession,
    transaction_id=hs.binary(min_size=1, max_size=16),
    stage=hs.sampled_from(SessionStage),
    expires=hs.datetimes(
        min_value=NOW.replace(tzinfo=None) - timedelta(days=3650),
        max_value=NOW.replace(tzinfo=None) + timedelta(days=3650),
        timezones=hs.just(NOW.tzinfo),
    ),
    credential=hs.integers(0, 255),
    server_challenge=hs.binary(max_size=16),
    euicc_ci_pkid=hs.binary(max_size=20),
    euicc_info1=hs.binary(max_size=200),
    iccid=hs.text("0123456789", max_size=20),
    eid=hs.text("0123456789", max_size=32),
    euicc_public_key=hs.binary(max_size=66),
    euicc_signature1=hs.binary(max_size=64),
    smdp_signature2=hs.binary(max_size=64),
    cc_required=hs.booleans(),
    retry_otpk=hs.binary(max_size=65),
)


@given(sessions)
def test_session_record_round_trip(session: RspSession) -> None:
    assert RspSession.from_bytes(session.to_bytes()) == session


@given(sessions, hs.data())
def test_damaged_session_record(session: RspSession, data: hs.DataObject) -> None:
    raw = session.to_bytes()
    cut = data.draw(hs.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        RspSession.from_bytes(raw[:cut])
    with pytest.raises(DecodeError):
        RspSession.from_bytes(raw + b"\x00")
    noise = data.draw(hs.binary(max_size=80))
    with contextlib.suppress(DecodeError):
        RspSession.from_bytes(noise)


def two_workers(world: World, path: Path, clock: Clock) -> tuple[Smdp, Smdp]:
    first = SqliteSmdpStore.create(path)
    a = Smdp(world.config, first, now=clock)
    a.add_profile_type(ProfileType.from_metadata("ts48", TEMPLATE, TYPE_METADATA))
    b = Smdp(world.config, SqliteSmdpStore.open(path), now=clock)
    return a, b


def test_two_workers_serve_one_session(tmp_path: Path, world: World) -> None:
    """Each ES9+ step of one download goes to the other worker (its own connection)."""
    clock = Clock()
    a, b = two_workers(world, tmp_path / "s.db", clock)
    euicc = make_euicc(world, tmp_path / "e")
    iccid = a.download_order(profile_type="ts48")
    mid = b.confirm_order(iccid=iccid).matching_id
    lpa_a, lpa_b = Lpa(a, euicc.isdr), Lpa(b, euicc.isdr)
    init = lpa_a.initiate()
    auth = lpa_b.authenticate(init, mid)
    bpp = lpa_a.get_bpp(auth)
    pir = lpa_b.load(bpp)
    assert pir_ok(pir)
    lpa_a.notify(pir)
    assert state_of(b, iccid) is ItemState.INSTALLED


def test_a_transaction_blocks_the_other_connection(tmp_path: Path, world: World) -> None:
    clock = Clock()
    a, b = two_workers(world, tmp_path / "s.db", clock)
    order: list[str] = []
    entered = threading.Event()

    def other() -> None:
        entered.wait()
        b.download_order(profile_type="ts48")
        order.append("b")

    thread = threading.Thread(target=other)
    thread.start()
    with a.store.transaction():
        entered.set()
        iccid = a.download_order(profile_type="ts48")
        thread.join(timeout=0.3)
        assert thread.is_alive()  # B waits for A's BEGIN IMMEDIATE ... COMMIT
        order.append("a")
    thread.join()
    assert order == ["a", "b"]
    assert len({i.iccid for i in b.inventory()}) == 2
    assert iccid in {i.iccid for i in b.inventory()}


_FORK_WORLD: list[World] = []


def _worker(path: str, count: int, queue: multiprocessing.Queue[list[str]]) -> None:
    smdp = Smdp(_FORK_WORLD[0].config, SqliteSmdpStore.open(path), now=Clock())
    got = []
    for _ in range(count):
        iccid = smdp.download_order(profile_type="ts48")
        got.append(iccid)
        smdp.confirm_order(iccid=iccid)
    queue.put(got)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_processes_share_one_file(tmp_path: Path, world: World) -> None:
    path = tmp_path / "s.db"
    a, _ = two_workers(world, path, Clock())
    _FORK_WORLD[:] = [world]
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[str]] = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(os.fspath(path), 8, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    iccids = [i for r in results for i in r]
    assert len(iccids) == len(set(iccids)) == 32
    items = a.inventory("ts48")
    assert {i.iccid for i in items} == set(iccids)
    assert all(i.state is ItemState.RELEASED for i in items)
    mids = [i.matching_id for i in items]
    assert len(set(mids)) == 32


def _downloader(
    path: str, directory: str, count: int, queue: multiprocessing.Queue[list[str]]
) -> None:
    world = _FORK_WORLD[0]
    smdp = Smdp(world.config, SqliteSmdpStore.open(path), now=Clock())
    lpa = Lpa(smdp, make_euicc(world, Path(directory)).isdr)
    done = []
    for _ in range(count):
        iccid = smdp.download_order(profile_type="ts48")
        if pir_ok(lpa.download(smdp.confirm_order(iccid=iccid).matching_id)):
            done.append(iccid)
    queue.put(done)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_processes_download_concurrently(tmp_path: Path, world: World) -> None:
    """Four worker processes, each with its own eUICC, download through one store file."""
    path = tmp_path / "s.db"
    a, _ = two_workers(world, path, Clock())
    _FORK_WORLD[:] = [world]
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[str]] = ctx.Queue()
    procs = [
        ctx.Process(
            target=_downloader, args=(os.fspath(path), os.fspath(tmp_path / f"e{n}"), 3, queue)
        )
        for n in range(4)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    installed = [i for r in results for i in r]
    assert len(installed) == len(set(installed)) == 12
    items = {i.iccid: i for i in a.inventory("ts48")}
    assert set(items) == set(installed)
    assert all(i.state is ItemState.INSTALLED for i in items.values())
    assert len({i.eid for i in items.values()}) == 4
    assert len(a.notifications()) == 12
