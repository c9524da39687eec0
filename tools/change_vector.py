"""Generate the device-change test vector (docs/device-change.md, "Test vector").

A whole device-to-device exchange of a device change under fixed keys and
randomness, every octet on the wire in both directions: the OLD phone
(offerer, the subscription's primary) shows a QR offer, the NEW phone joins
(Noise ``NNpsk0``, QR path), both send their hellos (both with the
``deviceChange`` capability), the new phone sends ``changeRequest``, the old
one ``changeOrder`` (what the operator ordered for the new EID), the new one
``changeResult`` (``switched``, its new ICCID), the old one ``changeDone``
(its profile deleted, one companion watch handed over) and ``bye``.

Fixed inputs: the offer's secret and both X25519 ephemeral private keys (the
only randomness of the QR path), and every field of the messages (the
order's change id, secret and activation code are made-up values of the
operator's formats).

Run ``python tools/change_vector.py`` to print the vector as JSON (what
``tests/data/vectors/device-change.json`` holds) or ``--markdown`` for the
``text`` block of docs/device-change.md.  ``tests/transfer/test_change_vector.py``
regenerates it with :func:`generate` and compares every octet, and checks it
independently (HKDF, ``noiseprotocol``, ``asn1tools``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from rspfed.federation.token import DeviceClass
from rspfed.transfer import (
    NEED_DATA,
    Bye,
    ByeReceived,
    Capability,
    ChangeDone,
    ChangeDoneReceived,
    ChangeOrder,
    ChangeOrdered,
    ChangeRequest,
    ChangeRequested,
    ChangeResult,
    ChangeResultReceived,
    CompanionHandover,
    CompanionTransport,
    ConnectionClosed,
    DeviceRole,
    Hello,
    HelloReceived,
    Message,
    Paired,
    PairingConnection,
    PairingOffer,
    Role,
    encode_message,
)
from rspfed.transfer.code import psk_from_secret
from rspfed.transfer.messages import message_kind

__all__ = ["INPUTS", "generate", "markdown"]

INPUTS: dict[str, str] = {
    "secret": bytes(range(0x80, 0xA0)).hex(),
    "offerer-ephemeral-private": bytes(range(0xA0, 0xC0)).hex(),
    "joiner-ephemeral-private": bytes(range(0xC0, 0xE0)).hex(),
    "old-name": "Ana's phone",
    "old-eid": "89001012012341234012345678901224",
    "new-name": "Ana's new phone",
    "new-eid": "89049032123451234512345678901235",
    "change-id": "chg-7f3a9c",
    "change-secret": "Q2hhbmdlU2VjcmV0LXZlY3Rvci0x",
    "activation-code": "LPA:1$smdp.example$CHG-7F3A9C-0001",
    "operator-url": "https://operator.example:8443",
    "subscription-id": "sub-0001",
    "device-id": "dev-0001",
    "old-iccid": "8949000000000000001",
    "new-iccid": "8949000000000000027",
    "watch-name": "Ana's watch",
    "watch-eid": "89049032123451234512345678901332",
    "watch-psk": bytes(range(0x10, 0x30)).hex(),
    "watch-reconnection-id": bytes(range(0x30, 0x40)).hex(),
}
"""The fixed inputs (hex octets, text)."""


def _fixed(data: bytes) -> Callable[[int], bytes]:
    """``rand`` that returns the next octets of ``data`` (and fails past its end)."""
    pos = 0

    def rand(n: int) -> bytes:
        nonlocal pos
        out = data[pos : pos + n]
        pos += n
        if len(out) != n:
            raise RuntimeError("the vector's fixed randomness is used up")
        return out

    return rand


def _split(data: bytes) -> list[bytes]:
    out = []
    while data:
        n = int.from_bytes(data[:2], "big")
        out.append(data[: 2 + n])
        data = data[2 + n :]
    return out


def messages() -> dict[str, Message]:
    """The application messages of the vector, by name (built from :data:`INPUTS`)."""
    i = INPUTS
    return {
        "old-hello": Hello(
            i["old-name"], DeviceClass.PHONE, DeviceRole.PRIMARY, i["old-eid"],
            {Capability.JOIN, Capability.COMPANION, Capability.DEVICE_CHANGE},
        ),
        "new-hello": Hello(
            i["new-name"], DeviceClass.PHONE, DeviceRole.PRIMARY, i["new-eid"],
            {Capability.JOIN, Capability.DEVICE_CHANGE},
        ),
        "change-request": ChangeRequest(i["new-name"], DeviceClass.PHONE),
        "change-order": ChangeOrder(
            change_id=i["change-id"],
            secret=i["change-secret"],
            activation_code=i["activation-code"],
            operator_url=i["operator-url"],
            subscription_id=i["subscription-id"],
            device_id=i["device-id"],
            role=DeviceRole.PRIMARY,
        ),
        "change-result": ChangeResult.switched(i["new-iccid"]),
        "change-done": ChangeDone(
            deleted=i["old-iccid"],
            companions=(
                CompanionHandover(
                    eid=i["watch-eid"],
                    name=i["watch-name"],
                    psk=bytes.fromhex(i["watch-psk"]),
                    reconnection_id=bytes.fromhex(i["watch-reconnection-id"]),
                    transport=CompanionTransport.BLE,
                ),
            ),
        ),
        "bye": Bye(),
    }  # fmt: skip


def generate() -> dict[str, Any]:
    """The whole vector (inputs, derived values, records) as a JSON-ready dict."""
    m = messages()
    offer = PairingOffer(
        secret=bytes.fromhex(INPUTS["secret"]),
        offerer_role=DeviceRole.PRIMARY,
        offerer_name=INPUTS["old-name"],
        device_class=DeviceClass.PHONE,
        lan=None,
        ble=True,
    )
    old_hello, new_hello = m["old-hello"], m["new-hello"]
    assert isinstance(old_hello, Hello)
    assert isinstance(new_hello, Hello)
    old = PairingConnection(
        Role.OFFERER,
        local=old_hello,
        offer=offer,
        rand=_fixed(bytes.fromhex(INPUTS["offerer-ephemeral-private"])),
    )
    new = PairingConnection(
        Role.JOINER,
        local=new_hello,
        offer=offer,
        rand=_fixed(bytes.fromhex(INPUTS["joiner-ephemeral-private"])),
    )
    records: list[dict[str, str]] = []
    sent: list[tuple[str, str, bytes]] = []  # (direction, what, plaintext der)
    handshake_hash = b""
    received: list[str] = []

    def note(direction: str, name: str) -> None:
        kind = message_kind(m[name])
        what = f"{kind} ({name.split('-')[0]} phone)" if kind == "hello" else kind
        sent.append((direction, what, encode_message(m[name])))

    def move(src: PairingConnection, dst: PairingConnection, direction: str) -> None:
        data = src.data_to_send()
        for frame in _split(data):
            records.append({"direction": direction, "frame": frame.hex()})
        dst.receive_data(data)

    def events(conn: PairingConnection) -> list[object]:
        out: list[object] = []
        while True:
            event = conn.next_event()
            if event is NEED_DATA or isinstance(event, ConnectionClosed):
                return out
            out.append(event)
            received.append(type(event).__name__)

    move(new, old, "joiner>offerer")  # method QR || Noise message 1
    for event in events(old):
        if isinstance(event, Paired):
            handshake_hash = event.handshake_hash
    note("offerer>joiner", "old-hello")
    move(old, new, "offerer>joiner")  # Noise message 2, the old phone's hello
    done = False
    for _round in range(16):  # a bound: the exchange takes 4 rounds
        for event in events(new):
            if isinstance(event, HelloReceived):
                note("joiner>offerer", "new-hello")
                note("joiner>offerer", "change-request")
                new.send(m["change-request"])
            elif isinstance(event, ChangeOrdered):
                note("joiner>offerer", "change-result")
                new.send(m["change-result"])
            elif isinstance(event, ChangeDoneReceived):
                pass
            elif isinstance(event, ByeReceived):
                done = True
        if done:
            break
        move(new, old, "joiner>offerer")
        for event in events(old):
            if isinstance(event, ChangeRequested):
                note("offerer>joiner", "change-order")
                old.send(m["change-order"])
            elif isinstance(event, ChangeResultReceived):
                assert event.message.ok
                note("offerer>joiner", "change-done")
                old.send(m["change-done"])
                note("offerer>joiner", "bye")
                old.send(m["bye"])
        move(old, new, "offerer>joiner")
    if not done or old.data_to_send() or new.data_to_send():
        raise RuntimeError("the exchange did not end with the bye")
    # frames 1 and 2 are the handshake; every later frame is one record of one message
    handshake, sealed = records[:2], records[2:]
    if len(sealed) != len(sent):
        raise RuntimeError("records and messages do not pair up")
    handshake[0]["what"] = "method 0x01 (QR) || Noise message 1 (e, psk)"
    handshake[1]["what"] = "Noise message 2 (e, ee)"
    for record, (direction, what, der) in zip(sealed, sent, strict=True):
        if record["direction"] != direction:
            raise RuntimeError("a record went the wrong way")
        record["what"] = what
        record["message"] = der.hex()
    return {
        "description": (
            "rspfed device change: QR pairing of the old phone (offerer, primary) and the new "
            "phone (joiner), hellos with deviceChange, changeRequest, changeOrder, "
            "changeResult (switched), changeDone (old profile deleted, one watch handed "
            "over), bye"
        ),
        "source": (
            "computed by rspfed (tools/change_vector.py); checked independently by "
            "tests/transfer/test_change_vector.py (HKDF with cryptography, the records with "
            "noiseprotocol, the messages with asn1tools from rspfed/asn1/modules/transfer.asn)"
        ),
        "inputs": dict(INPUTS),
        "derived": {
            "offer-der": offer.to_der().hex(),
            "uri": offer.to_uri(),
            "discovery-id": offer.discovery_id.hex(),
            "psk": psk_from_secret(offer.secret).hex(),
            "handshake-hash": handshake_hash.hex(),
        },
        "records": records,
    }


def markdown(vector: dict[str, Any]) -> str:
    """The ``text device-change-vector`` block of docs/device-change.md."""
    lines = [f"{k}: {v}" for k, v in vector["inputs"].items()]
    lines += [f"{k}: {v}" for k, v in vector["derived"].items()]
    for n, record in enumerate(vector["records"], start=1):
        lines.append(f"frame-{n}: {record['direction']} {record['frame']}")
        lines.append(f"  what: {record['what']}")
        if "message" in record:
            lines.append(f"  message: {record['message']}")
    return "```text device-change-vector\n" + "\n".join(lines) + "\n```\n"


def main(argv: list[str]) -> int:
    """Print the vector (JSON, or ``--markdown``)."""
    vector = generate()
    if "--markdown" in argv:
        sys.stdout.write(markdown(vector))
    else:
        sys.stdout.write(json.dumps(vector, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
