"""EapAkaPrimeServer.snapshot()/restore(): a server kept in a store between messages."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.eap import akaprime as ap
from rspfed.eap.machines import EapAkaPrimePeer, EapAkaPrimeServer, PeerState, ServerState
from rspfed.errors import DecodeError, IntegrityError, ProtocolError, StateError
from tests.eap.test_machines import IDENTITY, NETWORK, S19, Auc, Usim, _fed_key, h


def _auc() -> Auc:
    return Auc(h(S19["K"]), h(S19["OPc"]), 0x100, b"\x80\x00", [])


def _server(auc: Auc, first_identifier: int | None = None) -> EapAkaPrimeServer:
    rnd = os.urandom if first_identifier is None else (lambda n: bytes([first_identifier]))
    return EapAkaPrimeServer(identity=IDENTITY, network_name=NETWORK, auc=auc, random=rnd)


def _again(server: EapAkaPrimeServer, auc: Auc) -> EapAkaPrimeServer:
    return EapAkaPrimeServer.restore(server.snapshot(), auc=auc, random=os.urandom)


@pytest.mark.parametrize("sqn_ms", [0, 0x10000], ids=["plain", "resync"])
def test_restored_between_every_message(sqn_ms: int) -> None:
    auc = _auc()
    key = _fed_key()
    peer = EapAkaPrimePeer(
        identity=IDENTITY,
        usim=Usim(h(S19["K"]), h(S19["OPc"]), sqn_ms),
        network_name=NETWORK,
        federation_key=key,
    )
    server = _server(auc)
    packet = server.start()
    subtypes = []
    while True:
        server = _again(server, auc)
        answer = peer.receive(packet)
        if answer is None:
            break
        subtypes.append(ap.decode(answer).subtype)
        packet = server.receive(answer)
        server = _again(server, auc)
    expected = [ap.Subtype.AKA_CHALLENGE]
    if sqn_ms:
        expected.insert(0, ap.Subtype.SYNCHRONIZATION_FAILURE)
    assert subtypes == expected
    assert auc.resyncs == (1 if sqn_ms else 0)
    assert peer.state is PeerState.SUCCESS
    assert server.state is ServerState.SUCCESS
    assert server.msk == peer.msk
    assert server.emsk == peer.emsk
    assert server.federation_key == key


def test_layout() -> None:
    auc = _auc()
    server = _server(auc, 41)
    doc = json.loads(server.snapshot())
    assert doc == {
        "v": 1,
        "identity": IDENTITY.hex(),
        "network_name": NETWORK.hex(),
        "identifier": 41,
        "state": "idle",
        "vector": None,
        "resynced": False,
        "federation_key": None,
    }
    challenge = ap.decode(server.start())
    doc = json.loads(server.snapshot())
    assert doc["state"] == "challenge-sent"
    assert doc["identifier"] == challenge.identifier == 42
    assert bytes.fromhex(doc["vector"]["rand"]) == challenge.require(ap.AT_RAND)
    assert bytes.fromhex(doc["vector"]["autn"]) == challenge.require(ap.AT_AUTN)
    assert set(doc["vector"]) == {"rand", "autn", "xres", "ck", "ik"}
    assert b" " not in server.snapshot()


def test_replays_refused_after_restore() -> None:
    auc = _auc()
    usim = Usim(h(S19["K"]), h(S19["OPc"]), 0x10000)  # ahead: first a sync failure
    peer = EapAkaPrimePeer(identity=IDENTITY, usim=usim)
    server = _server(auc, 7)
    sync_failure = peer.receive(server.start()) or b""
    assert ap.decode(sync_failure).subtype is ap.Subtype.SYNCHRONIZATION_FAILURE
    second = server.receive(sync_failure)
    stored = server.snapshot()
    # the sync failure again, against the state after resynchronisation: old Identifier
    with pytest.raises(ProtocolError):
        EapAkaPrimeServer.restore(stored, auc=auc, random=os.urandom).receive(sync_failure)
    response = peer.receive(second) or b""
    server = EapAkaPrimeServer.restore(stored, auc=auc, random=os.urandom)
    assert ap.decode(server.receive(response)).code is ap.Code.SUCCESS
    done = server.snapshot()
    # the answer again, against the stored successful state
    with pytest.raises(StateError):
        EapAkaPrimeServer.restore(done, auc=auc, random=os.urandom).receive(response)
    # the answer again, against a new exchange forced onto the same Identifier
    assert ap.decode(response).identifier == 9
    fresh = _server(auc, 8)
    assert ap.decode(fresh.start()).identifier == 9
    fresh = _again(fresh, auc)
    with pytest.raises(IntegrityError):
        fresh.receive(response)
    assert fresh.state is ServerState.FAILURE
    failed = _again(fresh, auc)
    assert failed.state is ServerState.FAILURE
    with pytest.raises(StateError):
        _ = failed.msk


def _valid_doc() -> dict[str, object]:
    server = _server(_auc())
    server.start()
    doc = json.loads(server.snapshot())
    assert isinstance(doc, dict)
    return doc


def test_unknown_version_and_inconsistent_states() -> None:
    auc = _auc()
    for change in (
        {"v": 2},
        {"v": True},
        {"state": "idle"},  # with a vector
        {"state": "success", "vector": None},
        {"federation_key": _fed_key().hex()},  # before success
        {"identifier": 256},
        {"identifier": True},
        {"identity": "ABCD"},  # uppercase hex
        {"identity": " ab"},
        {"resynced": 0},
        {"extra": 1},
    ):
        doc = {**_valid_doc(), **change}
        with pytest.raises(DecodeError):
            EapAkaPrimeServer.restore(json.dumps(doc).encode(), auc=auc, random=os.urandom)


@given(st.binary(max_size=300))
def test_random_bytes_only_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError):
        EapAkaPrimeServer.restore(data, auc=_auc(), random=os.urandom)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40) | st.text("0123456789abcdef"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
FIELDS = ["v", "identity", "network_name", "identifier", "state", "vector", "resynced"]


@given(st.sampled_from([*FIELDS, "federation_key"]), JSON)
def test_mutated_snapshot_restores_or_decode_error(field: str, value: object) -> None:
    doc = {**_valid_doc(), field: value}
    try:
        server = EapAkaPrimeServer.restore(json.dumps(doc).encode(), auc=_auc(), random=os.urandom)
    except DecodeError:
        return
    assert json.loads(server.snapshot()) == doc
