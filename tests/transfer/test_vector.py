"""The pairing test vector of docs/pairing.md, parsed from the page.

Checked three ways: rspfed replays the whole QR-path pairing and token grant
byte for byte under the page's fixed randomness; HKDF (``cryptography``)
recomputes the discovery identifier and psk; the ``noiseprotocol`` package
(an independent Noise implementation) runs both handshake sides with the
page's ephemeral keys and opens every record to ``00 || der``, and
``asn1tools`` decodes the offer and every message to the documented values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Any

import asn1tools
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from noise.connection import Keypair, NoiseConnection
from spake2 import SPAKE2_Symmetric

from rspfed.federation.ledger import LedgerState as LedgerReplica
from rspfed.federation.ledger import encode_state
from rspfed.federation.token import DeviceClass, Service
from rspfed.transfer import (
    NEED_DATA,
    Bye,
    ByeReceived,
    Capability,
    ConnectionState,
    DeviceRole,
    Hello,
    HelloReceived,
    JoinRequest,
    JoinRequested,
    JoinResult,
    JoinResultReceived,
    LanHint,
    LedgerState,
    LedgerStateReceived,
    Paired,
    PairingConnection,
    PairingMethod,
    PairingOffer,
    Role,
    TokenGrant,
    TokenGranted,
    encode_message,
)
from rspfed.transfer.code import ShortCode
from tests.paths import ASN1_MODULES, REPO

pytestmark = pytest.mark.filterwarnings("ignore:One of ephemeral keypairs:UserWarning")

DOC = REPO / "docs" / "pairing.md"
TOKEN_DOC = REPO / "docs" / "federation-token.md"


def _vector(name: str = "pairing-vector-1") -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    body = re.search(rf"```text {name}\n(.*?)```", text, flags=re.S)
    assert body is not None
    fields = {}
    for line in body.group(1).strip().splitlines():
        key, _, value = line.partition(": ")
        fields[key] = value
    return fields


def _frames(v: dict[str, str]) -> list[tuple[str, bytes]]:
    keys = sorted((k for k in v if k.startswith("frame-")), key=lambda k: int(k[6:]))
    return [(v[k].split()[0], bytes.fromhex(v[k].split()[1])) for k in keys]


V = _vector()
FRAMES = _frames(V)
V2 = _vector("pairing-vector-2")
FRAMES2 = _frames(V2)


def _token_der() -> bytes:
    m = re.search(r"```text vector-1\n.*?token-der: ([0-9a-f]+)", TOKEN_DOC.read_text(), re.S)
    assert m is not None
    return bytes.fromhex(m.group(1))


def _offer() -> PairingOffer:
    return PairingOffer(
        secret=bytes.fromhex(V["secret"]),
        offerer_role=DeviceRole(V["offerer-role"]),
        offerer_name=V["offerer-name"],
        device_class=DeviceClass(V["offerer-class"]),
        lan=LanHint(V["lan-host"], int(V["lan-port"])),
        ble=V["ble"] == "yes",
    )


OFFERER_HELLO = Hello(
    V["offerer-name"],
    DeviceClass.PHONE,
    DeviceRole.PRIMARY,
    V["offerer-eid"],
    {Capability.JOIN, Capability.LEDGER},
)
JOINER_HELLO = Hello(
    "Ana's laptop",
    DeviceClass.LAPTOP,
    DeviceRole.SECONDARY,
    V["joiner-eid"],
    {Capability.JOIN, Capability.LEDGER},
)
JOIN_REQUEST = JoinRequest(DeviceClass.LAPTOP, {Service.DATA, Service.SMS}, "Ana's laptop")


def _split(data: bytes) -> list[bytes]:
    out = []
    while data:
        n = int.from_bytes(data[:2], "big")
        out.append(data[: 2 + n])
        data = data[2 + n :]
    return out


def test_the_page_has_the_vector() -> None:
    assert len(FRAMES) == 9
    assert _token_der().hex() in V["token-grant-der"]


def test_offer_and_derivations() -> None:
    offer = _offer()
    assert offer.to_der().hex() == V["offer-der"]
    assert offer.to_uri() == V["uri"]
    assert PairingOffer.from_uri(V["uri"]) == offer
    # independently: HKDF-SHA256 with cryptography, the prologue by hand
    secret = bytes.fromhex(V["secret"])

    def hkdf(info: bytes, n: int) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=n, salt=None, info=info).derive(secret)

    did = hkdf(b"rspfed pairing discovery v1", 16)
    assert did.hex() == V["discovery-id"]
    assert offer.discovery_id == did
    assert V["lan-instance"] == "rspfed-" + did[:8].hex()
    assert hkdf(b"rspfed pairing psk v1", 32).hex() == V["psk"]
    assert V["prologue"] == (b"rspfed-pair-v1" + b"\x01" + did).hex()
    # the URI carries the DER in unpadded base64url
    payload = V["uri"].split(":")[3]
    assert base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).hex() == V["offer-der"]


def test_messages_der() -> None:
    assert encode_message(OFFERER_HELLO).hex() == V["offerer-hello-der"]
    assert encode_message(JOINER_HELLO).hex() == V["joiner-hello-der"]
    assert encode_message(JOIN_REQUEST).hex() == V["join-request-der"]
    grant = TokenGrant(_token_der(), V["operator-url"])
    assert encode_message(grant).hex() == V["token-grant-der"]
    assert encode_message(JoinResult.installed(V["iccid"])).hex() == V["join-result-der"]
    ledger = LedgerState(encode_state(LedgerReplica("sub-0001")))
    assert encode_message(ledger).hex() == V["ledger-state-der"]
    assert encode_message(Bye()).hex() == V["bye-der"]


def _stream(data: bytes) -> Callable[[int], bytes]:
    """``rand`` that returns the next octets of ``data``."""
    pos = 0

    def rand(n: int) -> bytes:
        nonlocal pos
        out = data[pos : pos + n]
        pos += n
        assert len(out) == n
        return out

    return rand


def test_rspfed_replays_the_pairing() -> None:
    offer = _offer()
    e_o = bytes.fromhex(V["offerer-ephemeral-private"])
    e_j = bytes.fromhex(V["joiner-ephemeral-private"])
    o = PairingConnection(Role.OFFERER, local=OFFERER_HELLO, offer=offer, rand=lambda n: e_o)
    j = PairingConnection(Role.JOINER, local=JOINER_HELLO, offer=offer, rand=lambda n: e_j)
    _replay(o, j, V, FRAMES)


def test_rspfed_replays_the_code_pairing() -> None:
    code = ShortCode.parse(V2["code"])
    o = PairingConnection(
        Role.OFFERER,
        local=OFFERER_HELLO,
        offer=_offer(),
        code=code,
        rand=_stream(bytes.fromhex(V2["offerer-rand"])),
    )
    j = PairingConnection(
        Role.JOINER,
        local=JOINER_HELLO,
        code=code,
        rand=_stream(bytes.fromhex(V2["joiner-rand"])),
    )
    _replay(o, j, V2, FRAMES2)


def _replay(
    o: PairingConnection, j: PairingConnection, v: dict[str, str], frames: list[tuple[str, bytes]]
) -> None:
    wire: list[tuple[str, bytes]] = []

    def move(src: PairingConnection, dst: PairingConnection, name: str) -> None:
        data = src.data_to_send()
        wire.extend((name, f) for f in _split(data))
        dst.receive_data(data)

    move(j, o, "joiner>offerer")
    if j.method is PairingMethod.CODE:  # SPAKE2 and confirmations first
        assert o.next_event() is NEED_DATA
        move(o, j, "offerer>joiner")
        assert j.next_event() is NEED_DATA
        move(j, o, "joiner>offerer")
    paired = o.next_event()
    assert isinstance(paired, Paired)
    assert paired.handshake_hash.hex() == v["handshake-hash"]
    assert o.next_event() is NEED_DATA
    move(o, j, "offerer>joiner")
    assert isinstance(j.next_event(), Paired)
    assert j.next_event() == HelloReceived(OFFERER_HELLO)
    j.send(JOIN_REQUEST)
    move(j, o, "joiner>offerer")
    assert o.next_event() == HelloReceived(JOINER_HELLO)
    assert o.next_event() == JoinRequested(JOIN_REQUEST)
    grant = TokenGrant(_token_der(), V["operator-url"])
    o.send(grant)
    move(o, j, "offerer>joiner")
    assert j.next_event() == TokenGranted(grant)
    j.send(JoinResult.installed(V["iccid"]))
    move(j, o, "joiner>offerer")
    assert o.next_event() == JoinResultReceived(JoinResult.installed(V["iccid"]))
    ledger = LedgerState(encode_state(LedgerReplica("sub-0001")))
    o.send(ledger)
    o.send(Bye())
    move(o, j, "offerer>joiner")
    assert j.next_event() == LedgerStateReceived(ledger)
    assert j.next_event() == ByeReceived(Bye())
    assert o.state is ConnectionState.CLOSED
    assert j.state is ConnectionState.CLOSED
    assert [(d, f.hex()) for d, f in wire] == [(d, f.hex()) for d, f in frames]


def _noise(*, initiator: bool, ephemeral: str, v: dict[str, str] = V) -> NoiseConnection:
    conn = NoiseConnection.from_name(b"Noise_NNpsk0_25519_ChaChaPoly_SHA256")
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.set_psks(psk=bytes.fromhex(v["psk"]))
    conn.set_prologue(bytes.fromhex(v["prologue"]))
    conn.set_keypair_from_private_bytes(Keypair.EPHEMERAL, bytes.fromhex(ephemeral))
    conn.start_handshake()
    return conn


def test_independent_noise_and_asn1() -> None:
    joiner = _noise(initiator=True, ephemeral=V["joiner-ephemeral-private"])
    offerer = _noise(initiator=False, ephemeral=V["offerer-ephemeral-private"])
    (d1, f1), (d2, f2) = FRAMES[0], FRAMES[1]
    assert d1 == "joiner>offerer"
    assert d2 == "offerer>joiner"
    assert f1[:3] == (len(f1) - 2).to_bytes(2, "big") + b"\x01"
    assert joiner.write_message() == f1[3:]
    assert f1[3:35].hex() == V["joiner-ephemeral-public"]
    assert offerer.read_message(f1[3:]) == b""
    assert offerer.write_message() == f2[2:]
    assert f2[2:34].hex() == V["offerer-ephemeral-public"]
    assert joiner.read_message(f2[2:]) == b""
    assert joiner.get_handshake_hash().hex() == V["handshake-hash"]
    expected = [
        "offerer-hello-der",
        "joiner-hello-der",
        "join-request-der",
        "token-grant-der",
        "join-result-der",
        "ledger-state-der",
        "bye-der",
    ]
    spec = asn1tools.compile_files(str(ASN1_MODULES / "transfer.asn"), "der")
    for (direction, frame), key in zip(FRAMES[2:], expected, strict=True):
        receiver = joiner if direction == "offerer>joiner" else offerer
        sender = offerer if direction == "offerer>joiner" else joiner
        assert int.from_bytes(frame[:2], "big") == len(frame) - 2
        plain = receiver.decrypt(frame[2:])
        assert plain == b"\x00" + bytes.fromhex(V[key])
        assert sender.encrypt(plain) == frame[2:]
        decoded: dict[str, Any] = spec.decode("TransferMessage", plain[1:])
        assert decoded["version"] == 1
        name, body = decoded["body"]
        if key == "token-grant-der":
            assert name == "tokenGrant"
            assert body["token"] == _token_der()
            assert body["operatorUrl"] == V["operator-url"]
        elif key.endswith("hello-der"):
            assert name == "hello"
            eid = V["offerer-eid"] if key.startswith("offerer") else V["joiner-eid"]
            assert body["eid"].hex() == eid
        elif key == "join-result-der":
            assert name == "joinResult"
            octets = body["outcome"][1]
            digits = "".join(f"{b & 0xF:x}{b >> 4:x}" for b in octets).rstrip("f")
            assert digits == V["iccid"]
        elif key == "bye-der":
            assert decoded["body"] == ("bye", {"reason": "done"})
    offer = spec.decode("PairingOffer", bytes.fromhex(V["offer-der"]))
    assert offer["secret"].hex() == V["secret"]
    assert offer["offererRole"] == V["offerer-role"]
    assert offer["transports"] == {"lan": {"host": V["lan-host"], "port": 47000}, "ble": {}}


def _hkdf(ikm: bytes, info: bytes, n: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=None, info=info).derive(ikm)


def test_independent_code_path() -> None:
    f = [frame for _, frame in FRAMES2]
    o_rand = bytes.fromhex(V2["offerer-rand"])
    j_rand = bytes.fromhex(V2["joiner-rand"])
    password = V2["code"].encode("ascii")
    # SPAKE2 with the spake2 package itself, fed the documented randomness
    ours = SPAKE2_Symmetric(password, idSymmetric=b"rspfed-pair-v1", entropy_f=_stream(o_rand))
    theirs = SPAKE2_Symmetric(password, idSymmetric=b"rspfed-pair-v1", entropy_f=_stream(j_rand))
    m_o, m_j = ours.start(), theirs.start()
    assert f[0] == (1 + 33).to_bytes(2, "big") + b"\x02" + m_j
    assert f[1] == (33).to_bytes(2, "big") + m_o
    k = ours.finish(m_j)
    assert theirs.finish(m_o) == k
    assert k.hex() == V2["spake2-key"]
    # confirmations and keys with cryptography's HKDF and the standard library's HMAC
    k_c = _hkdf(k, b"rspfed pake confirm v1")
    transcript = b"".join(sorted((m_o, m_j)))

    def confirmation(message: bytes) -> bytes:
        side = b"\x01" if transcript.startswith(message) else b"\x02"
        data = b"rspfed-pake-confirm-v1" + side + transcript
        return hmac.new(k_c, data, hashlib.sha256).digest()

    assert f[2] == (32).to_bytes(2, "big") + confirmation(m_o)
    assert f[3] == (32).to_bytes(2, "big") + confirmation(m_j)
    key = _hkdf(k, b"rspfed pake key v1")
    assert key.hex() == V2["pairing-key"]
    assert _hkdf(key, b"rspfed pairing psk code v1").hex() == V2["psk"]
    nameplate = int(V2["nameplate"]).to_bytes(2, "big")
    did = _hkdf(nameplate, b"rspfed pairing nameplate discovery v1", 16)
    assert did.hex() == V2["discovery-id"]
    assert V2["prologue"] == (b"rspfed-pair-v1" + b"\x02" + did).hex()
    # Noise with noiseprotocol, the ephemeral keys being the last 32 octets of each rand
    joiner = _noise(initiator=True, ephemeral=j_rand[64:96].hex(), v=V2)
    offerer = _noise(initiator=False, ephemeral=o_rand[64:96].hex(), v=V2)
    assert joiner.write_message() == f[4][2:]
    assert offerer.read_message(f[4][2:]) == b""
    assert offerer.write_message() == f[5][2:]
    assert joiner.read_message(f[5][2:]) == b""
    assert joiner.get_handshake_hash().hex() == V2["handshake-hash"]
    keys = [
        "offerer-hello-der",
        "joiner-hello-der",
        "join-request-der",
        "token-grant-der",
        "join-result-der",
        "ledger-state-der",
        "bye-der",
    ]
    for (direction, frame), key_name in zip(FRAMES2[6:], keys, strict=True):
        receiver = joiner if direction == "offerer>joiner" else offerer
        assert receiver.decrypt(frame[2:]) == b"\x00" + bytes.fromhex(V[key_name])
