"""The companion relay test vector (docs/companion.md "Test vector",
``tests/data/vectors/companion-relay.json``).

Checked three ways:

* rspfed regenerates the whole transcript from the fixed inputs
  (``tools/companion_vector.py``) and every octet equals the stored one; the
  page's block equals the stored file;
* independently of rspfed's transfer code: HKDF (``cryptography``) recomputes
  the discovery id, the pairing psk, the prologue, the companion psk and the
  reconnection id; ``noiseprotocol`` runs both sides of the handshake with the
  fixed ephemeral keys, opens every record to ``00 || message`` and seals it
  back to the same octets; ``asn1tools`` decodes the offer, every
  ``TransferMessage`` (``transfer.asn``) and every relayed ES10 request and
  response (SGP.22 ``rsp.asn``) to the documented values: the watch's EID,
  its DeviceInfo, the CI key identifier recomputed from the seed, the fixed
  eUICC challenge, an empty profile list and the relay's ``notAllowed``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import asn1tools
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from noise.connection import Keypair, NoiseConnection

from tests.paths import ASN1_MODULES, REPO, VECTORS

pytestmark = pytest.mark.filterwarnings("ignore:One of ephemeral keypairs:UserWarning")

STORED = VECTORS / "companion-relay.json"
DOC = REPO / "docs" / "companion.md"
V: dict[str, Any] = json.loads(STORED.read_text(encoding="utf-8"))
INPUTS: dict[str, str] = V["inputs"]
DERIVED: dict[str, str] = V["derived"]
RECORDS: list[dict[str, str]] = V["records"]
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "companion_vector", REPO / "tools" / "companion_vector.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def _transfer() -> Any:
    return asn1tools.compile_files(str(ASN1_MODULES / "transfer.asn"), "der")


@functools.cache
def _rsp() -> Any:
    names = ("rsp.asn", "PKIX1Explicit88.asn", "PKIX1Implicit88.asn")
    return asn1tools.compile_files([str(ASN1_MODULES / n) for n in names], "der")


def _hkdf(ikm: bytes, info: bytes, n: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=None, info=info).derive(ikm)


def test_rspfed_regenerates_the_vector(tmp_path: Path) -> None:
    regenerated = _generator().generate(tmp_path)
    assert regenerated["inputs"] == INPUTS
    assert regenerated["derived"] == DERIVED
    assert [(r["direction"], r["frame"]) for r in regenerated["records"]] == [
        (r["direction"], r["frame"]) for r in RECORDS
    ]
    assert regenerated == V


def test_the_page_has_the_stored_vector() -> None:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"```text companion-relay-vector\n(.*?)```", text, flags=re.S)
    assert block is not None, "docs/companion.md has no companion-relay-vector block"
    fields: dict[str, str] = {}
    frames: list[tuple[str, str]] = []
    messages: list[str] = []
    for line in block.group(1).splitlines():
        key, _, value = line.strip().partition(": ")
        if key.startswith("frame-"):
            direction, _, octets = value.partition(" ")
            frames.append((direction, octets))
        elif key == "message":
            messages.append(value)
        elif key != "what":
            fields[key] = value
    assert fields == {**INPUTS, **DERIVED}
    assert frames == [(r["direction"], r["frame"]) for r in RECORDS]
    assert messages == [r["message"] for r in RECORDS if "message" in r]


def test_independent_derivations() -> None:
    secret = bytes.fromhex(INPUTS["secret"])
    did = _hkdf(secret, b"rspfed pairing discovery v1", 16)
    assert did.hex() == DERIVED["discovery-id"]
    offer = _transfer().decode("PairingOffer", bytes.fromhex(DERIVED["offer-der"]))
    assert offer["secret"] == secret
    assert offer["offererRole"] == "companion"
    assert offer["offererName"] == INPUTS["offerer-name"]
    assert offer["deviceClass"] == "watch"
    assert offer["transports"] == {"ble": {}}
    payload = DERIVED["uri"].split(":")[3]
    assert DERIVED["uri"].startswith("rspfed:1:pair:")
    assert (
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).hex()
        == (DERIVED["offer-der"])
    )
    # the long-term companion key follows from the handshake hash
    psk = _hkdf(bytes.fromhex(DERIVED["handshake-hash"]), b"rspfed companion psk v1")
    assert psk.hex() == DERIVED["companion-psk"]
    reconnection = _hkdf(psk, b"rspfed companion discovery v1", 16)
    assert reconnection.hex() == DERIVED["reconnection-id"]


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


def _seed_stream(label: str) -> bytes:
    """The first octets of the documented DRBG: SHA-256(label || counter)."""
    return b"".join(hashlib.sha256(label.encode() + i.to_bytes(4, "big")).digest() for i in (0, 1))


def _ci_pkid() -> bytes:
    """The test CI's key identifier: its P-256 key is the first in-range 32 octets of the
    seed's stream; the identifier is SHA-1 of the public key (RFC 5280 §4.2.1.2 (1))."""
    stream = _seed_stream(INPUTS["euicc-seed"])
    scalar = next(
        d
        for d in (int.from_bytes(stream[i : i + 32], "big") for i in (0, 32))
        if 1 <= d < P256_ORDER
    )
    public = ec.derive_private_key(scalar, ec.SECP256R1()).public_key()
    return x509.SubjectKeyIdentifier.from_public_key(public).digest


ES10_TYPES = {
    "bf3e": ("GetEuiccDataRequest", "GetEuiccDataResponse"),
    "bf20": ("GetEuiccInfo1Request", "EUICCInfo1"),
    "bf2e": ("GetEuiccChallengeRequest", "GetEuiccChallengeResponse"),
    "bf2d": ("ProfileInfoListRequest", "ProfileInfoListResponse"),
    "bf34": ("EuiccMemoryResetRequest", "EuiccMemoryResetResponse"),
}


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

    transfer, rsp = _transfer(), _rsp()
    watch_eid = DERIVED["watch-eid"]
    bodies: list[tuple[str, Any]] = []
    requests: list[bytes] = []
    answers: list[tuple[str, Any]] = []
    for record, (direction, frame) in zip(RECORDS[2:], frames[2:], strict=True):
        receiver = joiner if direction == "offerer>joiner" else offerer
        sender = offerer if direction == "offerer>joiner" else joiner
        assert int.from_bytes(frame[:2], "big") == len(frame) - 2
        plain = receiver.decrypt(frame[2:])
        assert sender.encrypt(plain) == frame[2:]  # the same nonce, the same record
        assert plain == b"\x00" + bytes.fromhex(record["message"])
        decoded = transfer.decode("TransferMessage", plain[1:])
        assert decoded["version"] == 1
        name, body = decoded["body"]
        bodies.append((name, body))
        if name == "es10Request":
            requests.append(body)
        elif name in ("es10Response", "es10Refused"):
            answers.append((name, body))
    names = [n for n, _ in bodies]
    assert names == [
        "hello",
        "hello",
        "companionRequest",
        "companionInfo",
        *["es10Request", "es10Response"] * 4,
        "es10Request",
        "es10Refused",
        "bye",
    ]
    watch_hello, phone_hello = bodies[0][1], bodies[1][1]
    assert (watch_hello["role"], watch_hello["deviceClass"]) == ("companion", "watch")
    assert watch_hello["eid"].hex() == watch_eid
    assert (phone_hello["role"], phone_hello["deviceClass"]) == ("primary", "phone")
    assert phone_hello["eid"].hex() == INPUTS["joiner-eid"]
    info = bodies[3][1]
    assert info["name"] == INPUTS["offerer-name"]
    assert info["eid"].hex() == watch_eid
    device_info = rsp.decode("DeviceInfo", info["deviceInfo"])
    assert device_info["tac"].hex() == INPUTS["device-info-tac"]
    assert bodies[-1][1] == {"reason": "done"}

    # the relayed ES10: requests as documented, answers decoded with SGP.22's ASN.1
    assert [r.hex() for r in requests] == [q["der"] for q in V["requests"]]
    decoded_answers = {}
    for request, (name, answer) in zip(requests, answers, strict=True):
        tag = request[:2].hex()
        request_type, response_type = ES10_TYPES[tag]
        rsp.decode(request_type, request)
        if name == "es10Refused":
            assert tag == "bf34"
            assert answer == {"reason": "notAllowed"}
            continue
        decoded_answers[tag] = rsp.decode(response_type, answer)
    assert decoded_answers["bf3e"]["eidValue"].hex() == watch_eid
    info1 = decoded_answers["bf20"]
    assert info1["euiccCiPKIdListForVerification"] == [_ci_pkid()]
    assert info1["euiccCiPKIdListForSigning"] == [_ci_pkid()]
    challenge = decoded_answers["bf2e"]["euiccChallenge"]
    assert challenge.hex() == INPUTS["euicc-challenge"]
    assert decoded_answers["bf2d"] == ("profileInfoListOk", [])
