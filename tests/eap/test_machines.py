"""Peer and authenticator EAP-AKA' exchanges with MILENAGE (TS 35.208) as USIM and AuC."""

from __future__ import annotations

import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from rspfed.crypto.aka import build_autn, build_auts, check_autn, check_auts
from rspfed.crypto.milenage import Milenage
from rspfed.eap import akaprime as ap
from rspfed.eap.machines import (
    AuthenticationVector,
    EapAkaPrimePeer,
    EapAkaPrimeServer,
    PeerState,
    ServerState,
    UsimResult,
)
from rspfed.errors import (
    DecodeError,
    IntegrityError,
    ProtocolError,
    RspfedError,
    StateError,
    UsageError,
)
from tests.paths import VECTORS

SETS = {
    s["set"]: s for s in json.loads((VECTORS / "milenage-ts35208.json").read_text())["test_sets"]
}
RFC = json.loads((VECTORS / "eap-aka-prime-rfc9048.json").read_text())["cases"]
S19 = SETS[19]
h = bytes.fromhex
IDENTITY = b"0555444333222111"
NETWORK = b"WLAN"


class Auc:
    """A test AuC on MILENAGE: owns SQN, draws RANDs from a given source."""

    def __init__(self, k: bytes, opc: bytes, sqn: int, amf: bytes, rands: list[bytes]) -> None:
        self.alg = Milenage(k, opc)
        self.sqn = sqn
        self.amf = amf
        self.rands = rands
        self.resyncs = 0

    def vector(self, identity: bytes) -> AuthenticationVector:
        rand = self.rands.pop(0) if self.rands else os.urandom(16)
        autn, out = build_autn(self.alg, rand, self.sqn.to_bytes(6, "big"), self.amf)
        self.sqn += 32
        return AuthenticationVector(rand, autn.to_bytes(), out.res, out.ck, out.ik)

    def resynchronise(self, identity: bytes, rand: bytes, auts: bytes) -> None:
        self.sqn = int.from_bytes(check_auts(self.alg, rand, auts), "big") + 32
        self.resyncs += 1


class Usim:
    """A test USIM on MILENAGE with the simplest freshness rule: SQN must grow."""

    def __init__(self, k: bytes, opc: bytes, sqn_ms: int) -> None:
        self.alg = Milenage(k, opc)
        self.sqn_ms = sqn_ms

    def __call__(self, rand: bytes, autn: bytes) -> UsimResult:
        sqn, out = check_autn(self.alg, rand, autn)
        if int.from_bytes(sqn, "big") <= self.sqn_ms:
            return build_auts(self.alg, rand, self.sqn_ms.to_bytes(6, "big"))
        self.sqn_ms = int.from_bytes(sqn, "big")
        return out.res, out.ck, out.ik


def _pair(
    sqn_ms: int = 0,
    *,
    network_name: bytes | None = None,
    federation_key: bytes | None = None,
    auc_class: type[Auc] | None = None,
) -> tuple[EapAkaPrimeServer, EapAkaPrimePeer, Auc]:
    auc = (auc_class or Auc)(h(S19["K"]), h(S19["OPc"]), 0x100, b"\x80\x00", [])
    server = EapAkaPrimeServer(identity=IDENTITY, network_name=NETWORK, auc=auc, random=os.urandom)
    usim = Usim(h(S19["K"]), h(S19["OPc"]), sqn_ms)
    client = EapAkaPrimePeer(
        identity=IDENTITY, usim=usim, network_name=network_name, federation_key=federation_key
    )
    return server, client, auc


def _fed_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _run(server: EapAkaPrimeServer, client: EapAkaPrimePeer) -> list[bytes]:
    sent = [server.start()]
    while True:
        answer = client.receive(sent[-1])
        if answer is None:
            return sent
        sent.append(answer)
        sent.append(server.receive(answer))


def test_rfc9048_case1_through_the_machines() -> None:
    """MILENAGE set 19 at its SQN/AMF gives RFC 9048 case 1's AUTN; both sides reach its MSK."""
    case = RFC[0]
    auc = Auc(h(S19["K"]), h(S19["OPc"]), int(S19["SQN"], 16), h(S19["AMF"]), [h(S19["RAND"])])
    server = EapAkaPrimeServer(identity=IDENTITY, network_name=NETWORK, auc=auc, random=os.urandom)
    client = EapAkaPrimePeer(
        identity=IDENTITY, usim=Usim(h(S19["K"]), h(S19["OPc"]), 0), network_name=NETWORK
    )
    challenge = server.start()
    assert ap.decode(challenge).require(ap.AT_AUTN) == h(case["AUTN"])
    response = client.receive(challenge)
    assert response is not None
    assert ap.decode(response).require(ap.AT_RES) == h(case["RES"])
    assert client.receive(server.receive(response)) is None
    assert server.state is ServerState.SUCCESS
    assert client.state is PeerState.SUCCESS
    assert server.msk == h(case["MSK"])
    assert client.msk == h(case["MSK"])
    assert server.emsk == client.emsk == h(case["EMSK"])


def test_federation_key_delivered_after_mac() -> None:
    key = _fed_key()
    server, client, _ = _pair(federation_key=key)
    with pytest.raises(StateError):
        _ = server.federation_key
    sent = _run(server, client)
    assert len(sent) == 3
    assert server.federation_key == key
    assert ap.decode(sent[1]).require(ap.AT_RSPFED_FEDERATION_KEY) == key


def test_no_federation_key() -> None:
    server, client, _ = _pair()
    _run(server, client)
    assert server.federation_key is None
    assert server.msk == client.msk


def test_resynchronisation() -> None:
    server, client, auc = _pair(sqn_ms=0x10000)
    sent = _run(server, client)
    assert ap.decode(sent[1]).subtype is ap.Subtype.SYNCHRONIZATION_FAILURE
    assert auc.resyncs == 1
    assert server.state is ServerState.SUCCESS
    assert client.state is PeerState.SUCCESS
    assert server.msk == client.msk


def test_second_sync_failure_fails() -> None:
    class StuckAuc(Auc):
        def resynchronise(self, identity: bytes, rand: bytes, auts: bytes) -> None:
            check_auts(self.alg, rand, auts)  # accepts AUTS but never moves SQN on

    server, client, _ = _pair(sqn_ms=0x10000, auc_class=StuckAuc)
    challenge = server.start()
    again = server.receive(client.receive(challenge) or b"")
    with pytest.raises(ProtocolError):
        server.receive(client.receive(again) or b"")
    assert server.state is ServerState.FAILURE
    assert ap.decode(server.failure_packet()).code is ap.Code.FAILURE


def test_bad_auts_fails() -> None:
    server, client, _ = _pair(sqn_ms=0x10000)
    response = bytearray(client.receive(server.start()) or b"")
    response[12] ^= 1  # inside AT_AUTS (the sync failure is not MAC-protected)
    with pytest.raises(IntegrityError):
        server.receive(bytes(response))
    assert server.state is ServerState.FAILURE


def test_wrong_res() -> None:
    auc = Auc(h(S19["K"]), h(S19["OPc"]), 0x100, b"\x80\x00", [])
    usim = Usim(h(S19["K"]), h(S19["OPc"]), 0)

    def lying(rand: bytes, autn: bytes) -> UsimResult:
        out = usim(rand, autn)
        assert isinstance(out, tuple)
        return bytes(b ^ 0xFF for b in out[0]), out[1], out[2]

    server = EapAkaPrimeServer(identity=IDENTITY, network_name=NETWORK, auc=auc, random=os.urandom)
    client = EapAkaPrimePeer(identity=IDENTITY, usim=lying)
    with pytest.raises(IntegrityError):
        server.receive(client.receive(server.start()) or b"")
    assert server.state is ServerState.FAILURE
    with pytest.raises(StateError):
        _ = server.msk


def test_wrong_subscriber_key_rejects_autn() -> None:
    auc = Auc(h(S19["K"]), h(S19["OPc"]), 0x100, b"\x80\x00", [])
    server = EapAkaPrimeServer(identity=IDENTITY, network_name=NETWORK, auc=auc, random=os.urandom)
    other = SETS[1]
    client = EapAkaPrimePeer(identity=IDENTITY, usim=Usim(h(other["K"]), h(other["OPc"]), 0))
    response = client.receive(server.start())
    assert response is not None
    assert ap.decode(response).subtype is ap.Subtype.AUTHENTICATION_REJECT
    assert ap.decode(server.receive(response)).code is ap.Code.FAILURE
    assert server.state is ServerState.FAILURE


@pytest.mark.parametrize("where", ["mac", "federation_key", "res"])
def test_tampered_response(where: str) -> None:
    server, client, _ = _pair(federation_key=_fed_key())
    response = bytearray(client.receive(server.start()) or b"")
    pkt = ap.decode(bytes(response))
    offset = 8
    target = {"mac": ap.AT_MAC, "federation_key": ap.AT_RSPFED_FEDERATION_KEY, "res": ap.AT_RES}
    for a in pkt.attributes:
        if a.type == target[where]:
            break
        offset += len(a.encode())
    response[offset + 6] ^= 0x40
    with pytest.raises(IntegrityError):
        server.receive(bytes(response))
    assert server.state is ServerState.FAILURE


def test_tampered_challenge_gets_client_error() -> None:
    server, client, _ = _pair()
    challenge = bytearray(server.start())
    challenge[-1] ^= 1  # last octet of AT_MAC
    response = client.receive(bytes(challenge))
    assert response is not None
    assert ap.decode(response).subtype is ap.Subtype.CLIENT_ERROR
    assert client.state is PeerState.WAIT_CHALLENGE


def test_network_name_mismatch_rejected() -> None:
    server, client, _ = _pair(network_name=b"HRPD")
    response = client.receive(server.start())
    assert response is not None
    assert ap.decode(response).subtype is ap.Subtype.AUTHENTICATION_REJECT


def test_replayed_response_refused() -> None:
    """An old response (old RAND, old RES) replayed to a new challenge does not verify."""

    def fixed(n: int) -> bytes:  # the same EAP Identifier in both sessions
        return b"\x07" * n

    auc = Auc(h(S19["K"]), h(S19["OPc"]), 0x100, b"\x80\x00", [])
    usim = Usim(h(S19["K"]), h(S19["OPc"]), 0)
    first = EapAkaPrimeServer(identity=IDENTITY, network_name=NETWORK, auc=auc, random=fixed)
    old = EapAkaPrimePeer(identity=IDENTITY, usim=usim).receive(first.start())
    assert old is not None
    first.receive(old)
    with pytest.raises(StateError):  # the same session takes no second answer
        first.receive(old)
    second = EapAkaPrimeServer(identity=IDENTITY, network_name=NETWORK, auc=auc, random=fixed)
    second.start()
    with pytest.raises(IntegrityError):
        second.receive(old)
    assert second.state is ServerState.FAILURE


def test_identifier_mismatch_discarded() -> None:
    server, client, _ = _pair()
    response = bytearray(client.receive(server.start()) or b"")
    response[1] ^= 0xFF
    with pytest.raises(ProtocolError):
        server.receive(bytes(response))
    assert server.state is ServerState.CHALLENGE_SENT
    with pytest.raises(DecodeError):
        server.receive(b"\x02\x00")
    assert server.state is ServerState.CHALLENGE_SENT


@settings(max_examples=40)
@given(st.integers(0, 2), st.data())
def test_any_corruption_is_an_rspfed_error(step: int, data: st.DataObject) -> None:
    """Flip one octet of one message: every failure is an RspfedError, never a key mismatch."""
    server, client, _ = _pair(federation_key=_fed_key())
    msg: bytes | None = server.start()
    for i in range(3):
        assert msg is not None
        if i == step:
            buf = bytearray(msg)
            pos = data.draw(st.integers(0, len(buf) - 1))
            buf[pos] ^= data.draw(st.integers(1, 255))
            msg = bytes(buf)
        try:
            msg = client.receive(msg) if i % 2 == 0 else server.receive(msg)
        except RspfedError:
            return
        if msg is None:
            break
    if server.state is ServerState.SUCCESS and client.state is PeerState.SUCCESS:
        assert server.msk == client.msk


def test_peer_takes_failure_after_reject() -> None:
    auc = Auc(h(S19["K"]), h(S19["OPc"]), 0x100, b"\x80\x00", [])
    server = EapAkaPrimeServer(identity=IDENTITY, network_name=NETWORK, auc=auc, random=os.urandom)
    other = SETS[2]
    client = EapAkaPrimePeer(identity=IDENTITY, usim=Usim(h(other["K"]), h(other["OPc"]), 0))
    failure = server.receive(client.receive(server.start()) or b"")
    assert client.receive(failure) is None
    assert client.state is PeerState.FAILURE
    with pytest.raises(StateError):
        _ = client.msk


def test_peer_refuses_unsolicited_success() -> None:
    _, client, _ = _pair()
    with pytest.raises(ProtocolError):
        client.receive(ap.EapPacket(ap.Code.SUCCESS, 0).encode())
    assert client.state is PeerState.WAIT_CHALLENGE


def test_federation_key_must_be_p256() -> None:
    with pytest.raises(UsageError):
        _pair(federation_key=b"\x04" + bytes(64))


@settings(max_examples=30)
@given(st.integers(0, 2**40), st.booleans())
def test_any_usim_sqn_ends_in_success(sqn_ms: int, with_key: bool) -> None:
    """Whatever the USIM's SQN, one resynchronisation at most brings agreement on MSK/EMSK."""
    server, client, auc = _pair(sqn_ms=sqn_ms, federation_key=_fed_key() if with_key else None)
    _run(server, client)
    assert server.state is ServerState.SUCCESS
    assert client.state is PeerState.SUCCESS
    assert auc.resyncs == (1 if sqn_ms >= 0x100 else 0)
    assert server.msk == client.msk
    assert server.emsk == client.emsk
    assert (server.federation_key is not None) is with_key


def test_mac_valid_but_bad_federation_key_fails() -> None:
    """A MAC-covered attribute 241 that is not a P-256 point fails the server (DecodeError)."""
    auc = Auc(h(S19["K"]), h(S19["OPc"]), 0x100, b"\x80\x00", [])
    usim = Usim(h(S19["K"]), h(S19["OPc"]), 0)
    server = EapAkaPrimeServer(identity=IDENTITY, network_name=NETWORK, auc=auc, random=os.urandom)
    challenge = ap.decode(server.start())
    result = usim(challenge.require(ap.AT_RAND), challenge.require(ap.AT_AUTN))
    assert isinstance(result, tuple)
    res, ck, ik = result
    keys = ap.derive_keys(IDENTITY, ck, ik, NETWORK, challenge.require(ap.AT_AUTN)[:6])
    forged = ap.add_mac(
        keys.k_aut,
        ap.EapPacket(
            ap.Code.RESPONSE,
            challenge.identifier,
            ap.EAP_TYPE_AKA_PRIME,
            ap.Subtype.AKA_CHALLENGE,
            (
                ap.Attribute(ap.AT_RES, res),
                ap.Attribute(ap.AT_RSPFED_FEDERATION_KEY, b"\x04" + bytes(64)),
                ap.Attribute(ap.AT_MAC, bytes(16)),
            ),
        ),
    )
    with pytest.raises(DecodeError):
        server.receive(forged)
    assert server.state is ServerState.FAILURE
    with pytest.raises(StateError):
        _ = server.federation_key
