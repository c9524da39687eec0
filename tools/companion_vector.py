"""Generate the companion relay test vector (docs/companion.md, "Test vector").

A whole companion session under fixed keys and randomness, every octet on the
wire in both directions: the watch (offerer, role ``companion``) shows a QR
offer, the phone joins (Noise ``NNpsk0``, QR path), both send their hellos,
the phone asks ``companionRequest`` and the watch answers ``companionInfo``;
then the phone relays five ES10 requests to the watch's software eUICC
(GetEuiccData, GetEUICCInfo1, GetEUICCChallenge, GetProfilesInfo, and an
eUICCMemoryReset the watch's relay refuses) and says ``bye``.

Fixed inputs: the offer's secret and both X25519 ephemeral private keys (the
only randomness of the QR path); the watch's eUICC (its test PKI, keys and
EID) is made from a deterministic octet stream (:func:`drbg`: SHA-256 of a
label and a 4-octet big-endian counter, blocks concatenated) at a fixed time,
and its challenge is the fixed ``euicc-challenge``.  The ES10 answers depend
only on the EID, the CI's key identifier, the eUICC's version data and that
challenge (no signature is in the transcript: AuthenticateServer would need
the SM-DP+'s and the eUICC's ECDSA signatures, which are randomised).

Run ``python tools/companion_vector.py`` to print the vector as JSON (what
``tests/data/vectors/companion-relay.json`` holds) or ``--markdown`` for the
``text`` block of docs/companion.md.  ``tests/companion/test_relay_vector.py``
regenerates it with :func:`generate` and compares every octet, and checks it
independently (HKDF, ``noiseprotocol``, ``asn1tools``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.crypto.curves import Curve
from rspfed.euicc.euicc import Euicc
from rspfed.federation.token import DeviceClass
from rspfed.lpa import InProcessEs10
from rspfed.lpa.download import DeviceInfo
from rspfed.pki.testpki import TestPki
from rspfed.transfer import (
    NEED_DATA,
    Bye,
    ByeReceived,
    Capability,
    CompanionInfo,
    CompanionInfoReceived,
    CompanionRequest,
    CompanionRequested,
    ConnectionClosed,
    DeviceRole,
    Es10Answered,
    Es10Refusal,
    Es10Refused,
    Es10Request,
    Es10Requested,
    Hello,
    HelloReceived,
    Paired,
    PairedKey,
    PairingConnection,
    PairingOffer,
    Role,
    encode_message,
)
from rspfed.transfer.relay import CompanionResponder

__all__ = ["INPUTS", "REQUESTS", "drbg", "generate", "markdown"]

INPUTS: dict[str, str] = {
    "secret": bytes(range(0x20, 0x40)).hex(),
    "offerer-ephemeral-private": bytes(range(0x40, 0x60)).hex(),
    "joiner-ephemeral-private": bytes(range(0x60, 0x80)).hex(),
    "offerer-name": "Ana's watch",
    "joiner-name": "Ana's phone",
    "joiner-eid": "89049032123451234512345678901235",
    "euicc-seed": "rspfed companion relay vector v1",
    "euicc-time": "2026-01-01T00:00:00+00:00",
    "euicc-challenge": bytes(range(0xA0, 0xB0)).hex(),
    "device-info-tac": "35290611",
}
"""The fixed inputs (hex octets, text)."""

REQUESTS: list[tuple[str, str]] = [
    ("GetEuiccData (EID)", "bf3e035c015a"),
    ("GetEUICCInfo1", "bf2000"),
    ("GetEUICCChallenge", "bf2e00"),
    ("GetProfilesInfo", "bf2d00"),
    ("eUICCMemoryReset (refused by the watch's relay)", "bf340482020780"),
]
"""The ES10 requests the phone relays, in order, with their names."""


def drbg(label: str) -> Callable[[int], bytes]:
    """``rand`` from SHA-256(label || counter) blocks (counter: 4 octets, big-endian, from 0)."""
    buffer = bytearray()
    counter = itertools.count()

    def rand(n: int) -> bytes:
        while len(buffer) < n:
            block = label.encode() + next(counter).to_bytes(4, "big")
            buffer.extend(hashlib.sha256(block).digest())
        out = bytes(buffer[:n])
        del buffer[:n]
        return out

    return rand


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


def _watch_euicc(directory: Path) -> Path:
    rand = drbg(INPUTS["euicc-seed"])
    now = datetime.fromisoformat(INPUTS["euicc-time"])
    pki = TestPki.create(directory / "pki", now=now, curves=[Curve.NIST], rand=rand)
    path = directory / "watch.db"
    Euicc.create(path, pki, curves=(Curve.NIST,), rand=rand, now=now).close()
    return path


def generate(directory: Path | None = None) -> dict[str, Any]:
    """The whole vector (inputs, derived values, records) as a JSON-ready dict."""
    if directory is None:
        with tempfile.TemporaryDirectory() as tmp:
            return generate(Path(tmp))
    path = _watch_euicc(directory)
    card = Euicc.open(path, rand=_fixed(bytes.fromhex(INPUTS["euicc-challenge"])))
    try:
        return _session(card)
    finally:
        card.close()


def _session(card: Euicc) -> dict[str, Any]:
    watch_eid = card.eid
    device_info = asn1.encode(
        rsp.DeviceInfo(DeviceInfo(tac=bytes.fromhex(INPUTS["device-info-tac"])).to_asn1())
    )
    offer = PairingOffer(
        secret=bytes.fromhex(INPUTS["secret"]),
        offerer_role=DeviceRole.COMPANION,
        offerer_name=INPUTS["offerer-name"],
        device_class=DeviceClass.WATCH,
        lan=None,
        ble=True,
    )
    watch_hello = Hello(
        INPUTS["offerer-name"], DeviceClass.WATCH, DeviceRole.COMPANION, watch_eid,
        {Capability.COMPANION},
    )  # fmt: skip
    phone_hello = Hello(
        INPUTS["joiner-name"], DeviceClass.PHONE, DeviceRole.PRIMARY, INPUTS["joiner-eid"],
        {Capability.COMPANION},
    )  # fmt: skip
    watch = PairingConnection(
        Role.OFFERER,
        local=watch_hello,
        offer=offer,
        rand=_fixed(bytes.fromhex(INPUTS["offerer-ephemeral-private"])),
    )
    phone = PairingConnection(
        Role.JOINER,
        local=phone_hello,
        offer=offer,
        rand=_fixed(bytes.fromhex(INPUTS["joiner-ephemeral-private"])),
    )
    responder = CompanionResponder(InProcessEs10(card.isdr))
    info = CompanionInfo(INPUTS["offerer-name"], watch_eid, device_info)
    pending = [bytes.fromhex(der) for _, der in REQUESTS]
    records: list[dict[str, str]] = []
    messages: list[tuple[str, str, bytes]] = []  # (direction, what, plaintext der)
    handshake_hash = b""

    def note(direction: str, what: str, message: object) -> None:
        messages.append((direction, what, encode_message(message)))  # type: ignore[arg-type]

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

    # the joiner opens (method QR, Noise message 1); the offerer answers and says hello
    move(phone, watch, "joiner>offerer")
    for event in events(watch):
        if isinstance(event, Paired):
            handshake_hash = event.handshake_hash
    note("offerer>joiner", "offerer hello", watch_hello)
    move(watch, phone, "offerer>joiner")
    done = False
    for _round in range(64):  # a bound: the session takes 8 rounds
        if done:
            break
        for event in events(phone):
            if isinstance(event, HelloReceived):
                note("joiner>offerer", "joiner hello", phone_hello)
                note("joiner>offerer", "companionRequest", CompanionRequest())
                phone.send(CompanionRequest())
            elif isinstance(event, CompanionInfoReceived | Es10Answered | Es10Refused):
                if pending:
                    request = Es10Request(pending.pop(0))
                    note("joiner>offerer", "es10Request", request)
                    phone.send(request)
                else:
                    note("joiner>offerer", "bye", Bye())
                    phone.send(Bye())
                    done = True
        move(phone, watch, "joiner>offerer")
        for event in events(watch):
            if isinstance(event, CompanionRequested):
                note("offerer>joiner", "companionInfo", info)
                watch.send(info)
            elif isinstance(event, Es10Requested):
                answer = responder.answer(event.message)
                what = "es10Refused" if isinstance(answer, Es10Refusal) else "es10Response"
                note("offerer>joiner", what, answer)
                watch.send(answer)
            elif isinstance(event, ByeReceived):
                done = True
        if not done:
            move(watch, phone, "offerer>joiner")
    if not done or watch.data_to_send() or phone.data_to_send():
        raise RuntimeError("the session did not end with the bye")
    # frames 1 and 2 are the handshake; every later frame is one record of one message
    handshake, sealed = records[:2], records[2:]
    if len(sealed) != len(messages):
        raise RuntimeError("records and messages do not pair up")
    handshake[0]["what"] = "method 0x01 (QR) || Noise message 1 (e, psk)"
    handshake[1]["what"] = "Noise message 2 (e, ee)"
    for record, (direction, what, der) in zip(sealed, messages, strict=True):
        if record["direction"] != direction:
            raise RuntimeError("a record went the wrong way")
        record["what"] = what
        record["message"] = der.hex()
    key = PairedKey.from_handshake_hash(handshake_hash)
    with_names = [name for name, _ in REQUESTS]
    return {
        "description": (
            "rspfed companion relay: QR pairing of a watch (offerer, role companion) and its "
            "phone, companionRequest/companionInfo, five relayed ES10 requests, bye"
        ),
        "source": (
            "computed by rspfed (tools/companion_vector.py); checked independently by "
            "tests/companion/test_relay_vector.py (HKDF with cryptography, the records with "
            "noiseprotocol, the messages and the ES10 DER with asn1tools)"
        ),
        "inputs": dict(INPUTS),
        "requests": [{"name": n, "der": d} for n, d in REQUESTS],
        "derived": {
            "offer-der": offer.to_der().hex(),
            "uri": offer.to_uri(),
            "discovery-id": offer.discovery_id.hex(),
            "watch-eid": watch_eid,
            "device-info-der": device_info.hex(),
            "handshake-hash": handshake_hash.hex(),
            "companion-psk": key.psk.hex(),
            "reconnection-id": key.discovery_id.hex(),
        },
        "request-names": with_names,
        "records": records,
    }


def markdown(vector: dict[str, Any]) -> str:
    """The ``text companion-relay-vector`` block of docs/companion.md."""
    lines = [f"{k}: {v}" for k, v in vector["inputs"].items()]
    lines += [f"{k}: {v}" for k, v in vector["derived"].items()]
    for n, record in enumerate(vector["records"], start=1):
        lines.append(f"frame-{n}: {record['direction']} {record['frame']}")
        lines.append(f"  what: {record['what']}")
        if "message" in record:
            lines.append(f"  message: {record['message']}")
    return "```text companion-relay-vector\n" + "\n".join(lines) + "\n```\n"


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
