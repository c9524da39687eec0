"""The operator's radio in its store (rspfed.federation.cells), without a server."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rspfed.errors import UsageError
from rspfed.federation import cells as radio
from rspfed.federation.store import MIGRATIONS, SCHEMA_VERSION, SqliteOperatorStore
from rspfed.network import NetworkRefusedError, RefusalReason
from rspfed.network.plmn import decode_hpplmn, decode_plmn_wact_list
from rspfed.network.radio import Rat

T0 = datetime(2026, 6, 1, tzinfo=UTC)
S = timedelta(seconds=1)
IMSI = "001010000000042"


def refusal(store: SqliteOperatorStore, plmn: str | None, now: datetime) -> RefusalReason:
    with pytest.raises(NetworkRefusedError) as refused:
        radio.check_attach(store, IMSI, plmn, now)
    return refused.value.reason


def test_attach_rules_and_schedules() -> None:
    store = SqliteOperatorStore()
    # no cells at all: no radio model, the home attach goes through unchecked
    assert radio.check_attach(store, IMSI, None, T0) == ""
    assert radio.check_attach(store, IMSI, "00101", T0) == ""
    # a PLMN simulated nowhere here: only the roaming rule applies
    assert refusal(store, "26201", T0) is RefusalReason.ROAMING_NOT_ALLOWED
    radio.set_cell(store, "00101", Rat.EUTRAN, -95, now=T0, name="Home")
    radio.set_cell(store, "20801", Rat.EUTRAN, -70, now=T0, country="FR")
    radio.set_cell(store, "00101", Rat.EUTRAN, None, now=T0, at=T0 + 10 * S)  # down at +10 s
    radio.set_cell(store, "00101", Rat.EUTRAN, -90, now=T0, at=T0 + 20 * S)  # back at +20 s
    assert radio.check_attach(store, IMSI, None, T0) == ""
    assert radio.check_attach(store, IMSI, "00101", T0 + 9 * S) == ""
    assert refusal(store, None, T0 + 10 * S) is RefusalReason.NO_COVERAGE
    assert refusal(store, "00101", T0 + 15 * S) is RefusalReason.NO_COVERAGE
    assert radio.check_attach(store, IMSI, "00101", T0 + 20 * S) == ""
    assert refusal(store, "20801", T0) is RefusalReason.ROAMING_NOT_ALLOWED
    assert radio.add_partner(store, "20801", now=T0)
    assert not radio.add_partner(store, "20801", now=T0)
    assert radio.check_attach(store, IMSI, "20801", T0) == "20801"  # metered against it
    [home] = [c for c in store.cells() if c.plmn == "00101"]
    assert (home.country, home.name) == ("", "Home")  # the test MCC has no country
    assert [dbm for _, dbm in home.signal] == [-95, None, -90]
    # an old step is pruned once a later one is in force
    radio.set_cell(store, "00101", Rat.EUTRAN, -99, now=T0 + 30 * S)
    [home] = [c for c in store.cells() if c.plmn == "00101"]
    assert [dbm for _, dbm in home.signal] == [-99]
    assert [c.plmn for c in radio.set_off(store, "20801", None, now=T0 + 30 * S)] == ["20801"]
    assert refusal(store, "20801", T0 + 31 * S) is RefusalReason.NO_COVERAGE
    assert radio.remove_partner(store, "20801")
    # a partner simulated by another operator: taken from the device's scan
    radio.add_partner(store, "26201", now=T0)
    assert radio.check_attach(store, IMSI, "26201", T0) == "26201"
    with pytest.raises(UsageError):
        radio.set_off(store, "26201", None, now=T0)
    with pytest.raises(UsageError):
        radio.set_cell(store, "26201", Rat.GSM, None, now=T0)
    with pytest.raises(UsageError):
        radio.set_cell(store, "2620", Rat.GSM, -80, now=T0)
    with pytest.raises(UsageError):
        radio.check_attach(store, IMSI, "2620x", T0)


def test_profile_files() -> None:
    store = SqliteOperatorStore()
    sizes = {"ef-oplmnwact": 250, "ef-hpplmn": 1, "ef-plmnwact": 170}
    assert radio.profile_files(store, sizes) == {}
    for plmn in ("20801", "26201", "310410"):
        radio.add_partner(store, plmn, now=T0)
    radio.set_hpplmn_period(store, timedelta(minutes=6), off=False)
    files = radio.profile_files(store, sizes)
    assert set(files) == {"ef-oplmnwact", "ef-hpplmn"}
    assert len(files["ef-oplmnwact"]) == 250
    assert decode_plmn_wact_list(files["ef-oplmnwact"]) == tuple(
        (p, frozenset(Rat)) for p in ("20801", "26201", "310410")
    )
    assert decode_hpplmn(files["ef-hpplmn"]) == timedelta(minutes=6)
    assert radio.hpplmn_period(store) == timedelta(minutes=6)
    # a template without room: the first partners that fit; without the EF: nothing
    small = radio.profile_files(store, {"ef-oplmnwact": 12})
    assert decode_plmn_wact_list(small["ef-oplmnwact"][:10]) == (
        ("20801", frozenset(Rat)),
        ("26201", frozenset(Rat)),
    )
    assert radio.profile_files(store, {}) == {}
    radio.set_hpplmn_period(store, None, off=True)
    assert radio.profile_files(store, sizes)["ef-hpplmn"] == b"\x00"
    radio.set_hpplmn_period(store, None, off=False)
    assert "ef-hpplmn" not in radio.profile_files(store, sizes)
    with pytest.raises(UsageError):
        radio.set_hpplmn_period(store, timedelta(minutes=7), off=False)


def test_v2_store_migrates_to_v3(tmp_path: Path) -> None:
    path = tmp_path / "operator.db"
    db = sqlite3.connect(path)
    for version in (1, 2):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
    db.execute(
        "INSERT INTO eap_session VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("e1", "attach", IMSI, None, None, b"snap", T0.isoformat(), 0, 0),
    )
    db.execute("INSERT INTO bearer VALUES (?, ?, ?)", ("b1", IMSI, T0.isoformat()))
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    store = SqliteOperatorStore(path)
    try:
        assert store.schema_version == SCHEMA_VERSION >= 3  # v4 (device changes) and later too
        session = store.eap_session("e1")
        assert session is not None
        assert session.plmn == ""
        assert store.pool_rows("SELECT plmn FROM bearer WHERE id = 'b1'") == [("",)]
        assert store.cells() == []
        assert store.partners() == ()
    finally:
        store.close()
