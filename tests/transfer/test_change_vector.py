"""The device-change test vector (docs/device-change.md "Test vector",
``tests/data/vectors/device-change.json``).

Checked three ways:

* rspfed regenerates the whole transcript from the fixed inputs
  (``tools/change_vector.py``) and every octet equals the stored one; the
  page's block equals the stored file;
* rspfed's own connection, fed the stored frames, delivers the documented
  events and messages on both sides and ends CLOSED on both;
* independently of rspfed's transfer code: HKDF (``cryptography``)
  recomputes the discovery id and the pairing psk; ``noiseprotocol`` runs
  both sides of the handshake with the fixed ephemeral keys, opens every
  record to ``00 || message`` and seals it back to the same octets;
  ``asn1tools`` (compiled from ``rspfed/asn1/modules/transfer.asn``) decodes
  the offer and every ``TransferMessage`` to the documented field values.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from types import ModuleType
from typing import Any

import asn1tools
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from noise.connection import Keypair, NoiseConnection

from rspfed.transfer import (
    NEED_DATA,
    ByeReceived,
    ChangeDoneReceived,
    ChangeOrdered,
    ChangeRequested,
    ChangeResultReceived,
    ConnectionClosed,
    ConnectionState,
    DeviceRole,
    HelloReceived,
    Paired,
    PairingConnection,
    PairingOffer,
    Role,
    decode_message,
)
from tests.paths import ASN1_MODULES, REPO, VECTORS

pytestmark = pytest.mark.filterwarnings("ignore:One of ephemeral keypairs:UserWarning")

STORED = VECTORS / "device-change.json"
DOC = REPO / "docs" / "device-change.md"
V: dict[str, Any] = json.loads(STORED.read_text(encoding="utf-8"))
INPUTS: dict[str, str] = V["inputs"]
DERIVED: dict[str, str] = V["derived"]
RECORDS: list[dict[str, str]] = V["records"]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "change_vector", REPO / "tools" / "change_vector.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def _transfer() -> Any:
    return asn1tools.compile_files(str(ASN1_MODULES / "transfer.asn"), "der")


def _hkdf(ikm: bytes, info: bytes, n: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=None, info=info).derive(ikm)


def _iccid_octets(iccid: str) -> bytes:
    """SGP.22 Iccid: BCD, nibbles of each octet swapped, F padded (independent of rspfed)."""
    digits = iccid + "F" * (20 - len(iccid))
    return bytes.fromhex("".join(digits[i + 1] + digits[i] for i in range(0, 20, 2)))


def test_rspfed_regenerates_the_vector() -> None:
    regenerated = _generator().generate()
    assert regenerated["inputs"] == INPUTS
    assert regenerated["derived"] == DERIVED
    assert [(r["direction"], r["frame"]) for r in regenerated["records"]] == [
        (r["direction"], r["frame"]) for r in RECORDS
    ]
    assert regenerated == V


def test_the_page_has_the_stored_vector() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"```text device-change-vector\n(.*?)```", text, flags=re.S)
    assert block is not None, "docs/device-change.md has no device-change-vector block"
    assert block.group(0) + "\n" == _generator().markdown(V)


def test_rspfed_replays_the_stored_frames() -> None:
    """Both sides fed the stored octets deliver the documented messages and close cleanly."""
    offer = PairingOffer.from_der(bytes.fromhex(DERIVED["offer-der"]))
    gen = _generator()
    msgs = gen.messages()
    old_rand = gen._fixed(bytes.fromhex(INPUTS["offerer-ephemeral-private"]))
    new_rand = gen._fixed(bytes.fromhex(INPUTS["joiner-ephemeral-private"]))
    old = PairingConnection(Role.OFFERER, local=msgs["old-hello"], offer=offer, rand=old_rand)
    new = PairingConnection(Role.JOINER, local=msgs["new-hello"], offer=offer, rand=new_rand)
    seen: dict[str, list[object]] = {"offerer": [], "joiner": []}
    pending = {"offerer": bytearray(), "joiner": bytearray()}
    for record in RECORDS:
        frame = bytes.fromhex(record["frame"])
        sender, receiver = record["direction"].split(">")
        conns = {"offerer": old, "joiner": new}
        out = pending[sender]
        out += conns[sender].data_to_send()
        if not out:  # an application message the sender's application sends now
            conns[sender].send(decode_message(bytes.fromhex(record["message"])))
            out += conns[sender].data_to_send()
        assert bytes(out[: len(frame)]) == frame
        del out[: len(frame)]
        conns[receiver].receive_data(frame)
        while True:
            event = conns[receiver].next_event()
            if event is NEED_DATA or isinstance(event, ConnectionClosed):
                break
            seen[receiver].append(event)
    assert not pending["offerer"]
    assert not pending["joiner"]
    for conn in (old, new):
        conn.receive_data(b"")
        assert isinstance(conn.next_event(), ConnectionClosed)
        assert conn.state is ConnectionState.CLOSED
    kinds = {who: [type(e) for e in events] for who, events in seen.items()}
    assert kinds["offerer"] == [Paired, HelloReceived, ChangeRequested, ChangeResultReceived]
    assert kinds["joiner"] == [
        Paired,
        HelloReceived,
        ChangeOrdered,
        ChangeDoneReceived,
        ByeReceived,
    ]
    offerer_events, joiner_events = seen["offerer"], seen["joiner"]
    assert offerer_events[2] == ChangeRequested(msgs["change-request"])
    assert offerer_events[3] == ChangeResultReceived(msgs["change-result"])
    assert joiner_events[2] == ChangeOrdered(msgs["change-order"])
    assert joiner_events[3] == ChangeDoneReceived(msgs["change-done"])


def _noise(*, initiator: bool, ephemeral: str) -> NoiseConnection:
    secret = bytes.fromhex(INPUTS["secret"])
    did = _hkdf(secret, b"rspfed pairing discovery v1", 16)
    conn = NoiseConnection.from_name(b"Noise_NNpsk0_25519_ChaChaPoly_SHA256")
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.set_psks(psk=_hkdf(secret, b"rspfed pairing psk v1"))
    conn.set_prologue(b"rspfed-pair-v1" + b"\x01" + did)
    conn.set_keypair_from_private_bytes(Keypair.EPHEMERAL, bytes.fromhex(ephemeral))
    conn.start_handshake()
    return conn


def test_independent_derivations() -> None:
    secret = bytes.fromhex(INPUTS["secret"])
    assert _hkdf(secret, b"rspfed pairing discovery v1", 16).hex() == DERIVED["discovery-id"]
    assert _hkdf(secret, b"rspfed pairing psk v1").hex() == DERIVED["psk"]
    offer = _transfer().decode("PairingOffer", bytes.fromhex(DERIVED["offer-der"]))
    assert offer["secret"] == secret
    assert offer["offererRole"] == "primary"
    assert offer["offererName"] == INPUTS["old-name"]
    assert offer["deviceClass"] == "phone"
    assert offer["transports"] == {"ble": {}}


def test_independent_noise_and_asn1() -> None:
    joiner = _noise(initiator=True, ephemeral=INPUTS["joiner-ephemeral-private"])
    offerer = _noise(initiator=False, ephemeral=INPUTS["offerer-ephemeral-private"])
    frames = [(r["direction"], bytes.fromhex(r["frame"])) for r in RECORDS]
    (d1, f1), (d2, f2) = frames[0], frames[1]
    assert (d1, d2) == ("joiner>offerer", "offerer>joiner")
    assert f1[:3] == (len(f1) - 2).to_bytes(2, "big") + b"\x01"  # method QR
    assert joiner.write_message() == f1[3:]
    assert offerer.read_message(f1[3:]) == b""
    assert offerer.write_message() == f2[2:]
    assert joiner.read_message(f2[2:]) == b""
    assert joiner.get_handshake_hash().hex() == DERIVED["handshake-hash"]

    transfer = _transfer()
    bodies: list[tuple[str, str, Any]] = []
    for record, (direction, frame) in zip(RECORDS[2:], frames[2:], strict=True):
        receiver = joiner if direction == "offerer>joiner" else offerer
        sender = offerer if direction == "offerer>joiner" else joiner
        assert int.from_bytes(frame[:2], "big") == len(frame) - 2
        plain = receiver.decrypt(frame[2:])
        assert sender.encrypt(plain) == frame[2:]  # the same nonce, the same record
        assert plain == b"\x00" + bytes.fromhex(record["message"])
        decoded = transfer.decode("TransferMessage", plain[1:])
        assert decoded["version"] == 1
        # DER: asn1tools re-encodes the decoded value to the same octets
        assert transfer.encode("TransferMessage", decoded) == plain[1:]
        name, body = decoded["body"]
        bodies.append((direction, name, body))
    assert [(d, n) for d, n, _ in bodies] == [
        ("offerer>joiner", "hello"),
        ("joiner>offerer", "hello"),
        ("joiner>offerer", "changeRequest"),
        ("offerer>joiner", "changeOrder"),
        ("joiner>offerer", "changeResult"),
        ("offerer>joiner", "changeDone"),
        ("offerer>joiner", "bye"),
    ]
    old_hello, new_hello = bodies[0][2], bodies[1][2]
    assert old_hello["eid"].hex() == INPUTS["old-eid"]
    assert old_hello["role"] == "primary"
    assert new_hello["eid"].hex() == INPUTS["new-eid"]
    # Capabilities { join(0), companion(1), deviceChange(2), ledger(3) }: bit 2 set in both
    for hello in (old_hello, new_hello):
        bits, _length = hello["capabilities"]
        assert bits[0] & 0x20
    assert bodies[2][2] == {"name": INPUTS["new-name"], "deviceClass": "phone"}
    assert bodies[3][2] == {
        "changeId": INPUTS["change-id"],
        "secret": INPUTS["change-secret"],
        "activationCode": INPUTS["activation-code"],
        "operatorUrl": INPUTS["operator-url"],
        "subscriptionId": INPUTS["subscription-id"],
        "deviceId": INPUTS["device-id"],
        "role": "primary",
    }
    assert bodies[4][2] == {"outcome": ("switched", _iccid_octets(INPUTS["new-iccid"]))}
    assert bodies[5][2] == {
        "deleted": _iccid_octets(INPUTS["old-iccid"]),
        "companions": [
            {
                "eid": bytes.fromhex(INPUTS["watch-eid"]),
                "name": INPUTS["watch-name"],
                "psk": bytes.fromhex(INPUTS["watch-psk"]),
                "reconnectionId": bytes.fromhex(INPUTS["watch-reconnection-id"]),
                "transport": "ble",
            }
        ],
    }
    assert bodies[6][2] == {"reason": "done"}


def test_offer_role_matches() -> None:
    offer = PairingOffer.from_der(bytes.fromhex(DERIVED["offer-der"]))
    assert offer.offerer_role is DeviceRole.PRIMARY
    assert offer.to_uri() == DERIVED["uri"]
