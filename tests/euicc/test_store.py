"""The eUICC store: round trips, migrations, modes, encrypted keys, fault injection."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import StorageError, UsageError
from rspfed.euicc import _state as st
from rspfed.euicc.store import MIGRATIONS, SCHEMA_VERSION, Store, migrate

EID = bytes.fromhex("89049032123451234512345678901235")
EVENTS = frozenset(
    {"notificationInstall", "notificationEnable", "notificationDisable", "notificationDelete"}
)


def signer(seq: int, event: str, address: str, iccid: bytes | None) -> bytes:
    return b"sig|%d|%s" % (seq, event.encode())


def make_profile(
    n: int, state: st.EuiccState, *, ppr: frozenset[str] = frozenset(), profile_class: int = 2
) -> st.Profile:
    return st.Profile(
        iccid=bytes([0x98, 0x10, n]) + bytes(7),
        isdp_aid=st.next_isdp_aid(state),
        service_provider_name="SP",
        profile_name=f"P{n}",
        icon_type=1,
        icon=b"\x89PNG",
        notification_config=(st.NotificationConfig(EVENTS, "smdp.example"),),
        profile_owner=st.OperatorId(bytes.fromhex("00F110"), gid1=b"\x01"),
        dp_oid="1.2.3",
        ppr=ppr,
        profile_class=profile_class,
    )


def install(store: Store, n: int, *, ppr: frozenset[str] = frozenset()) -> None:
    p = make_profile(n, store.state, ppr=ppr)
    out = st.install(store.state, p, address="smdp.example", pending=b"PIR%d" % n)
    assert out.ok
    store.commit(out.state, contents={p.iccid: b"content%d" % n})


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    with Store.create(path, eid=EID) as store:
        rat = (st.RatRule(frozenset({"ppr1"}), (st.OperatorId(bytes.fromhex("EEEEEE")),), True),)
        store.commit(attrs.evolve(store.state, rat=rat, default_dp_address="dp.example"))
        install(store, 1, ppr=frozenset({"ppr1"}))
        install(store, 2)
        s = st.enable(store.state, st.ProfileRef(iccid=store.state.profiles[1].iccid), signer)
        store.commit(s.state)
        store.commit(st.set_nickname(store.state, store.state.profiles[0].iccid, "mine").state)
        state = store.state
    with Store.open(path) as again:
        assert again.state == state
        assert again.eid == EID
        assert again.content(state.profiles[1].iccid) == b"content2"
        with pytest.raises(StorageError):
            again.content(bytes(10))


def test_delete_removes_content(tmp_path: Path) -> None:
    with Store.create(tmp_path / "e.db", eid=EID) as store:
        install(store, 1)
        iccid = store.state.profiles[0].iccid
        store.commit(st.delete(store.state, st.ProfileRef(iccid=iccid), signer).state)
        with pytest.raises(StorageError):
            store.content(iccid)


def test_new_profile_needs_content(tmp_path: Path) -> None:
    with Store.create(tmp_path / "e.db", eid=EID) as store:
        p = make_profile(1, store.state)
        out = st.install(store.state, p, address="a", pending=b"")
        with pytest.raises(UsageError):
            store.commit(out.state)
        assert store.state == st.EuiccState()


def test_modes_are_0600(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    old = os.umask(0o022)
    try:
        with Store.create(path, eid=EID) as store:
            install(store, 1)
            for suffix in ("", "-wal", "-shm"):
                f = path.with_name(path.name + suffix)
                if f.exists():
                    assert stat.S_IMODE(f.stat().st_mode) == 0o600, suffix
            assert path.with_name(path.name + "-wal").exists()
    finally:
        os.umask(old)


def test_keys_encrypted_with_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    key = ec.generate_private_key(ec.SECP256R1())
    with Store.create(path, eid=EID, passphrase=b"secret") as store:
        store.put_private_key("euicc-nist", key)
        store.put_certificate("euicc-nist", b"\x30\x00")
    raw = sqlite3.connect(path).execute("SELECT pkcs8, encrypted FROM keys").fetchone()
    assert raw[1] == 1
    plain = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert raw[0] != plain
    with pytest.raises(TypeError):
        serialization.load_der_private_key(raw[0], None)
    with Store.open(path, passphrase=b"secret") as store:
        assert store.private_key("euicc-nist").private_numbers() == key.private_numbers()
        assert store.certificate("euicc-nist") == b"\x30\x00"
        assert store.key_names() == ["euicc-nist"]
    with Store.open(path) as store, pytest.raises(StorageError):
        store.private_key("euicc-nist")
    with Store.open(path, passphrase=b"wrong") as store, pytest.raises(StorageError):
        store.private_key("euicc-nist")


def test_keys_plain_without_passphrase(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.BrainpoolP256R1())
    with Store.create(tmp_path / "e.db", eid=EID) as store:
        store.put_private_key("k", key)
        assert store.private_key("k").private_numbers() == key.private_numbers()
        with pytest.raises(StorageError):
            store.private_key("missing")


def test_migrates_a_v1_file(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, 1)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    # a v1 writer: rows written with the v1 tables only
    db.execute("INSERT INTO meta VALUES ('eid', ?)", (EID,))
    db.execute("INSERT INTO meta VALUES ('next_seq', ?)", (b"7",))
    db.execute(
        "INSERT INTO notifications VALUES (6, 'notificationInstall', 'dp.example', ?, ?)",
        (bytes(10), b"PIR"),
    )
    db.close()
    with Store.open(path) as store:
        assert store.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.eid == EID
        assert store.state.next_seq == 7
        assert [n.seq_number for n in store.state.notifications] == [6]
        install(store, 1)
        assert store.state.notifications[-1].seq_number == 7
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 2


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    Store.create(path, eid=EID).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StorageError):
        Store.open(path)


def test_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "junk"
    path.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StorageError):
        Store.open(path)
    with pytest.raises(StorageError):
        Store.open(tmp_path / "missing")
    with pytest.raises(UsageError):
        Store.create(path, eid=EID)


# --------------------------------------------------------------------------
# Fault injection


def _scenario(store: Store) -> list[tuple[st.EuiccState, dict[bytes, bytes]]]:
    """A few successive state changes (install with content, enable, switch, delete, ...)."""
    s0 = store.state
    p1 = make_profile(1, s0)
    s1 = st.install(s0, p1, address="a", pending=b"PIR1").state
    p2 = make_profile(2, s1)
    s2 = st.install(s1, p2, address="a", pending=b"PIR2").state
    s3 = st.enable(s2, st.ProfileRef(iccid=p1.iccid), signer).state
    s4 = st.enable(s3, st.ProfileRef(iccid=p2.iccid), signer).state
    s5 = st.delete(s4, st.ProfileRef(iccid=p1.iccid), signer).state
    s6 = st.remove_notification(s5, 1).state
    s7 = st.memory_reset(s6, operational=True, test=True, default_dp_address=True).state
    return [
        (s1, {p1.iccid: b"c1" * 500}),
        (s2, {p2.iccid: b"c2" * 500}),
        (s3, {}),
        (s4, {}),
        (s5, {}),
        (s6, {}),
        (s7, {}),
    ]


def test_exception_at_every_step_leaves_before_state(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    Store.create(path, eid=EID).close()
    store = Store.open(path)
    for new, contents in _scenario(store):
        before = store.state
        n = 0
        while True:
            n += 1
            budget = n

            def abort() -> int:
                nonlocal budget
                budget -= 1
                return 1 if budget <= 0 else 0

            store.connection.set_progress_handler(abort, 1)
            try:
                store.commit(new, contents=contents)
            except StorageError:
                store.connection.set_progress_handler(None, 1)
                assert store.state == before
                with Store.open(path) as other:
                    assert other.state == before
                continue
            store.connection.set_progress_handler(None, 1)
            break
        assert n > 5
        assert store.state == new
        with Store.open(path) as other:
            assert other.state == new
    store.close()


CHILD = textwrap.dedent(
    """
    import os, sys, pickle
    from rspfed.euicc.store import Store
    path, kill_at = sys.argv[1], int(sys.argv[2])
    new, contents = pickle.loads(sys.stdin.buffer.read())
    store = Store.open(path)
    left = kill_at
    def tick():
        global left
        left -= 1
        if left <= 0:
            os._exit(9)
        return 0
    store.connection.set_progress_handler(tick, 1)
    store.commit(new, contents=contents)
    os._exit(0)
    """
)


def test_kill_mid_commit_reopens_before_or_after(tmp_path: Path) -> None:
    import pickle

    killed = 0
    # an install (the biggest commit) and a profile switch, killed at spread-out steps
    for index in (0, 3):
        path = tmp_path / f"e{index}.db"
        with Store.create(path, eid=EID) as s:
            scenario = _scenario(s)
            for new, contents in scenario[:index]:
                s.commit(new, contents=contents)
            before = s.state
        new, contents = scenario[index]
        payload = pickle.dumps((new, contents))
        for kill_at in (1, 3, 10, 30, 60, 100, 150, 250, 400, 10_000):
            result = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), str(kill_at)],
                input=payload,
                capture_output=True,
                check=False,
                timeout=30,
            )
            assert result.returncode in (0, 9), result.stderr.decode()
            with Store.open(path) as s:
                if result.returncode == 9:
                    killed += 1
                    assert s.state == before
                else:
                    assert s.state == new
                    break
        else:
            pytest.fail("the commit never completed")
    assert killed >= 6


# --------------------------------------------------------------------------
# Card state: whole state (JSON) and changed items (schema v4)


def _with_card_state(path: Path) -> bytes:
    """A store with one installed profile and a whole card state; the profile's ICCID."""
    with Store.create(path, eid=EID) as store:
        install(store, 1)
        iccid = store.state.profiles[0].iccid
        store.put_card_state(iccid, '{"whole": 1}')
    return iccid


def test_migrates_a_v3_file(tmp_path: Path) -> None:
    from rspfed.euicc.store import profile_to_json

    path = tmp_path / "v3.db"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, 3)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    # a v3 writer: a profile with its content and its whole card state
    p = make_profile(1, st.EuiccState())
    db.execute("INSERT INTO meta VALUES ('eid', ?)", (EID,))
    db.execute("INSERT INTO meta VALUES ('next_seq', ?)", (b"1",))
    db.execute(
        "INSERT INTO profiles VALUES (?, 0, ?, ?)",
        (p.iccid, p.status.value, profile_to_json(p)),
    )
    db.execute("INSERT INTO profile_content VALUES (?, ?)", (p.iccid, b"package"))
    db.execute("INSERT INTO card_state VALUES (?, ?)", (p.iccid, '{"v3": true}'))
    db.close()
    with Store.open(path) as store:
        assert store.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert SCHEMA_VERSION == 4
        assert store.state.profiles == (p,)
        assert store.card_state(p.iccid) == '{"v3": true}'
        assert store.card_delta(p.iccid) == {}
        store.put_card_delta(p.iccid, {"file:3F00/2FE2": b"\x05abc"})
    with Store.open(path) as store:
        assert store.card_state(p.iccid) == '{"v3": true}'
        assert store.card_delta(p.iccid) == {"file:3F00/2FE2": b"\x05abc"}


def test_card_delta_items_replace_and_whole_state_clears(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    iccid = _with_card_state(path)
    with Store.open(path) as store:
        with pytest.raises(UsageError):
            store.put_card_delta(bytes(10), {"pin:01": b"{}"})  # no whole state for it
        store.put_card_delta(iccid, {"a": b"1", "b": b"2"})
        store.put_card_delta(iccid, {"b": b"3"})
        assert store.card_delta(iccid) == {"a": b"1", "b": b"3"}
        store.put_card_state(iccid, '{"whole": 2}')  # includes the items: they go
        assert store.card_delta(iccid) == {}
        store.put_card_delta(iccid, {"c": b"4"})
        # deleting the profile deletes its card state and items
        out = st.delete(store.state, st.ProfileRef(iccid=iccid), signer)
        assert out.ok
        store.commit(out.state)
        assert store.card_state(iccid) is None
        assert store.card_delta(iccid) == {}


def test_card_delta_exception_at_every_step_leaves_old_items(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    iccid = _with_card_state(path)
    store = Store.open(path)
    writes = [
        {"file:3F00/2FE2": b"\x05" + bytes(10), "pin:01": b'{"n":1}'},
        {"pin:01": b'{"n":2}', "aka:A000": b"{}", "file:3F00/2F00": b"\x05" * 33},
        {"file:3F00/2FE2": b"\x04" + bytes(10)},
    ]
    for items in writes:
        before = store.card_delta(iccid)
        n = 0
        while True:
            n += 1
            budget = n

            def abort() -> int:
                nonlocal budget
                budget -= 1
                return 1 if budget <= 0 else 0

            store.connection.set_progress_handler(abort, 1)
            try:
                store.put_card_delta(iccid, items)
            except StorageError:
                store.connection.set_progress_handler(None, 1)
                assert store.card_delta(iccid) == before
                with Store.open(path) as other:
                    assert other.card_delta(iccid) == before
                continue
            store.connection.set_progress_handler(None, 1)
            break
        assert n > 3
        assert store.card_delta(iccid) == {**before, **items}
        with Store.open(path) as other:
            assert other.card_delta(iccid) == {**before, **items}
    store.close()


CHILD_DELTA = textwrap.dedent(
    """
    import os, sys, pickle
    from rspfed.euicc.store import Store
    path, kill_at = sys.argv[1], int(sys.argv[2])
    iccid, items = pickle.loads(sys.stdin.buffer.read())
    store = Store.open(path)
    left = kill_at
    def tick():
        global left
        left -= 1
        if left <= 0:
            os._exit(9)
        return 0
    store.connection.set_progress_handler(tick, 1)
    store.put_card_delta(iccid, items)
    os._exit(0)
    """
)


def test_kill_mid_card_delta_reopens_old_or_new(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "e.db"
    iccid = _with_card_state(path)
    with Store.open(path) as s:
        s.put_card_delta(iccid, {"pin:01": b"old", "file:3F00/2FE2": b"old"})
        before = s.card_delta(iccid)
    items = {"pin:01": b"new", "file:3F00/2FE2": b"new", "aka:A0": b"new" * 100}
    payload = pickle.dumps((iccid, items))
    killed = 0
    for kill_at in (1, 3, 10, 20, 40, 80, 10_000):
        result = subprocess.run(
            [sys.executable, "-c", CHILD_DELTA, str(path), str(kill_at)],
            input=payload,
            capture_output=True,
            check=False,
            timeout=30,
        )
        assert result.returncode in (0, 9), result.stderr.decode()
        with Store.open(path) as s:
            if result.returncode == 9:
                killed += 1
                assert s.card_delta(iccid) == before
            else:
                assert s.card_delta(iccid) == {**before, **items}
                break
    else:
        pytest.fail("the write never completed")
    assert killed >= 3


def test_an_error_reported_after_commit_landed_counts_as_written(tmp_path: Path) -> None:
    """SQLite can report an interrupt from COMMIT after the transaction became durable."""
    path = tmp_path / "e.db"
    Store.create(path, eid=EID).close()
    seen_landed = False
    for n in range(1, 400):
        with Store.open(path) as store:
            before = store.state
            new = st.install(before, make_profile(n % 250, before), address="a", pending=b"P").state
            budget = n

            def abort() -> int:
                nonlocal budget
                budget -= 1
                return 1 if budget <= 0 else 0

            store.connection.set_progress_handler(abort, 1)
            try:
                store.commit(new, contents={new.profiles[-1].iccid: b"c"})
                ok = True
            except StorageError:
                ok = False
            store.connection.set_progress_handler(None, 1)
            seen_landed |= ok and budget <= 0  # it failed inside, yet landed
            assert store.state == (new if ok else before)
            with Store.open(path) as other:
                assert other.state == store.state
            if ok and budget > 0:
                break
    assert seen_landed


def test_one_process_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes never drive one eUICC store at once; one process may reopen it."""
    path = tmp_path / "e.db"
    Store.create(path, eid=EID).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from rspfed.euicc.store import Store
                s = Store.open({str(path)!r})
                print("open", flush=True)
                sys.stdin.readline()
                s.close()
                print("closed", flush=True)
                time.sleep(30)
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "open"
        import rspfed.euicc.store as store_module

        monkeypatch.setattr(store_module, "LOCK_WAIT", 0.2)
        with pytest.raises(StorageError, match="in use by another process"):
            Store.open(path)
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "closed"
        first = Store.open(path)
        second = Store.open(path)  # the same process shares its lock
        second.close()
        first.close()
    finally:
        holder.kill()
        holder.wait()
