"""The peer driven by B's software USIM (rspfed.euicc.usim) through AUTHENTICATE."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.crypto.aka import build_autn, check_auts
from rspfed.crypto.milenage import Milenage
from rspfed.eap.machines import (
    AuC,
    AuthenticationVector,
    EapAkaPrimePeer,
    EapAkaPrimeServer,
    PeerState,
    ServerState,
)
from rspfed.eap.usim import parse_authenticate_response, usim_from_authenticate
from rspfed.errors import DecodeError, IntegrityError
from rspfed.euicc.usim import AkaAlgorithmId, AkaSpec, Usim
from tests.paths import VECTORS

S19 = next(
    s
    for s in json.loads((VECTORS / "milenage-ts35208.json").read_text())["test_sets"]
    if s["set"] == 19
)
K, OPC = bytes.fromhex(S19["K"]), bytes.fromhex(S19["OPc"])
USIM_AID = bytes.fromhex("a0000000871002ff49ff0589")


class Auc:
    def __init__(self, sqn: int) -> None:
        self.alg = Milenage(K, OPC)
        self.sqn = sqn
        self.resyncs = 0

    def vector(self, identity: bytes) -> AuthenticationVector:
        rand = os.urandom(16)
        autn, out = build_autn(self.alg, rand, self.sqn.to_bytes(6, "big"), b"\x80\x00")
        self.sqn += 32
        return AuthenticationVector(rand, autn.to_bytes(), out.res, out.ck, out.ik)

    def resynchronise(self, identity: bytes, rand: bytes, auts: bytes) -> None:
        self.sqn = int.from_bytes(check_auts(self.alg, rand, auts), "big") + 32
        self.resyncs += 1


def _exchange(usim: Usim, auc: AuC) -> tuple[EapAkaPrimeServer, EapAkaPrimePeer]:
    server = EapAkaPrimeServer(identity=b"id", network_name=b"WLAN", auc=auc, random=os.urandom)
    peer = EapAkaPrimePeer(identity=b"id", usim=usim_from_authenticate(usim.authenticate))
    msg = server.start()
    while (answer := peer.receive(msg)) is not None:
        msg = server.receive(answer)
    return server, peer


def test_software_usim_with_sqn_array_and_resync() -> None:
    usim = Usim(AkaSpec(USIM_AID, AkaAlgorithmId.MILENAGE, K, OPC))
    auc = Auc(sqn=0x40)
    server, peer = _exchange(usim, auc)
    assert server.state is ServerState.SUCCESS
    assert peer.state is PeerState.SUCCESS
    assert server.msk == peer.msk
    # the same SQN again is stale for the USIM: one resync, then success
    auc.sqn = 0x40
    server, peer = _exchange(usim, auc)
    assert auc.resyncs == 1
    assert server.state is ServerState.SUCCESS
    assert server.msk == peer.msk


def test_software_usim_wrong_key_rejects() -> None:
    usim = Usim(AkaSpec(USIM_AID, AkaAlgorithmId.MILENAGE, bytes(16), OPC))
    authenticate = usim_from_authenticate(usim.authenticate)
    vector = Auc(0x40).vector(b"id")
    with pytest.raises(IntegrityError):
        authenticate(vector.rand, vector.autn)


@given(st.binary(max_size=60))
def test_parse_response_fuzz(data: bytes) -> None:
    try:
        out = parse_authenticate_response(data)
    except DecodeError:
        return
    assert isinstance(out, (bytes, tuple))


def test_parse_response_shapes() -> None:
    res, ck, ik = b"\x01" * 8, b"\x02" * 16, b"\x03" * 16
    body = b"\xdb\x08" + res + b"\x10" + ck + b"\x10" + ik
    assert parse_authenticate_response(body) == (res, ck, ik)
    assert parse_authenticate_response(body + b"\x08" + bytes(8)) == (res, ck, ik)
    assert parse_authenticate_response(b"\xdc\x0e" + bytes(14)) == bytes(14)
    with pytest.raises(DecodeError):
        parse_authenticate_response(body[:-1])


def test_network_auc_vectors_fit_the_server() -> None:
    """rspfed.network's AuthenticationVector satisfies AkaVector (structural typing)."""
    from rspfed.network.auc import AuthenticationVector as NetworkVector

    class NetworkShapedAuc:
        def __init__(self, sqn: int) -> None:
            self.inner = Auc(sqn)

        def vector(self, identity: bytes) -> NetworkVector:
            v = self.inner.vector(identity)
            return NetworkVector(v.rand, v.autn, v.xres, v.ck, v.ik, v.autn[:6])

        def resynchronise(self, identity: bytes, rand: bytes, auts: bytes) -> None:
            self.inner.resynchronise(identity, rand, auts)

    usim = Usim(AkaSpec(USIM_AID, AkaAlgorithmId.MILENAGE, K, OPC))
    server, peer = _exchange(usim, NetworkShapedAuc(0x40))
    assert server.state is ServerState.SUCCESS
    assert server.msk == peer.msk
