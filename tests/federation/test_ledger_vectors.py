"""The test vectors of docs/ledger.md, parsed from the page.

Checked three ways: rspfed reproduces them byte for byte (deterministic
signature), asn1tools (compiled from the module, an independent DER codec)
decodes them to the listed field values and re-encodes the same octets, and
``cryptography`` / ``hashlib`` verify the signature, key id and alert id
directly.  The page's ASN.1 module is the module file.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from typing import Any

import asn1tools
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from rspfed.errors import (
    AuthorizationError,
    DecodeError,
    ReplayError,
    SignatureError,
)
from rspfed.federation.alerts import alert_id
from rspfed.federation.ledger import (
    AlertKey,
    EpochReason,
    LedgerState,
    PoolEpoch,
    SourceKind,
    UsageRecord,
    alert_key_der,
    decode_state,
    encode_state,
    sign_device_batch,
    verify_device_batch,
)
from tests.paths import ASN1_MODULES, REPO

DOC = REPO / "docs" / "ledger.md"
MODULE = ASN1_MODULES / "ledger.asn"

Vector = list[tuple[str, str]]


def _vectors() -> dict[str, Vector]:
    text = DOC.read_text(encoding="utf-8")
    out: dict[str, Vector] = {}
    for name, body in re.findall(r"```text ([a-z]+-\d+)\n(.*?)```", text, flags=re.S):
        lines = []
        for line in body.strip().splitlines():
            key, _, value = line.partition(": ")
            lines.append((key, value))
        out[name] = lines
    return out


VECTORS = _vectors()


def _one(v: Vector, key: str) -> str:
    values = _all(v, key)
    assert len(values) == 1, key
    return values[0]


def _all(v: Vector, key: str) -> list[str]:
    return [value for k, value in v if k == key]


@cache
def _spec() -> Any:
    return asn1tools.compile_files(str(MODULE), "der")


def _plmn(field: str) -> str:
    return "" if field == "-" else field


def _tbcd_iccid(octets: bytes) -> str:
    # SGP.22 Iccid: nibbles swapped, F padded (written here without rspfed)
    digits = "".join(f"{b & 0xF:x}{b >> 4:x}" for b in octets)
    return digits.rstrip("f")


def _plmn_digits(octets: bytes | None) -> str:
    # TS 24.008 10.5.1.13: MCC2 MCC1 | MNC3 MCC3 | MNC2 MNC1
    if octets is None:
        return ""
    a, b, c = octets
    mnc3 = "" if b >> 4 == 0xF else str(b >> 4)
    return f"{a & 0xF}{a >> 4}{b & 0xF}{c & 0xF}{c >> 4}{mnc3}"


def test_the_page_has_the_vectors() -> None:
    assert {"batch-1", "state-1", "alert-1"} <= set(VECTORS)


def test_the_page_shows_the_module() -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```asn1\n(.*?)```", text, flags=re.S)
    assert blocks == [MODULE.read_text(encoding="utf-8")]


# -- batch-1 ----------------------------------------------------------------------


def _batch_vector() -> tuple[Vector, ec.EllipticCurvePrivateKey, list[UsageRecord]]:
    v = VECTORS["batch-1"]
    key = ec.derive_private_key(int(_one(v, "private-key-scalar"), 16), ec.SECP256R1())
    device = _one(v, "device-id")
    records = []
    for line in _all(v, "record"):
        iccid, period, epoch, plmn, octets = line.split()
        records.append(
            UsageRecord(
                SourceKind.DEVICE, device, iccid, int(period), int(epoch), int(octets), _plmn(plmn)
            )
        )
    return v, key, records


def test_rspfed_reproduces_the_batch() -> None:
    v, key, records = _batch_vector()
    der = sign_device_batch(
        device_key=key,
        subscription_id=_one(v, "subscription-id"),
        device_id=_one(v, "device-id"),
        sequence=int(_one(v, "sequence")),
        records=reversed(records),  # the writer sorts
        deterministic=True,
    )
    assert der.hex() == _one(v, "batch-der")
    batch = verify_device_batch(
        der,
        device_public_key=key.public_key(),
        subscription_id=_one(v, "subscription-id"),
        device_id=_one(v, "device-id"),
        iccids={r.iccid for r in records},
        after_sequence=int(_one(v, "sequence")) - 1,
    )
    assert batch.records == tuple(records)
    assert batch.sequence == int(_one(v, "sequence"))
    assert batch.device_key_id.hex() == _one(v, "device-key-id")


def test_batch_decoded_and_verified_independently() -> None:
    v, _, records = _batch_vector()
    der = bytes.fromhex(_one(v, "batch-der"))
    spec = _spec()
    decoded = spec.decode("DeviceUsageBatch", der)
    assert spec.encode("DeviceUsageBatch", decoded) == der
    tbs = decoded["tbsBatch"]
    assert tbs["version"] == 1
    assert tbs["subscriptionId"] == _one(v, "subscription-id")
    assert tbs["deviceId"] == _one(v, "device-id")
    assert tbs["sequence"] == int(_one(v, "sequence"))
    listed = [
        (
            _tbcd_iccid(item["iccid"]),
            item["period"],
            item["counterEpoch"],
            _plmn_digits(item.get("visitedPlmn")),
            item["octets"],
        )
        for item in tbs["records"]
    ]
    assert listed == [
        (r.iccid, r.period, r.counter_epoch, r.visited_plmn, r.octets) for r in records
    ]
    # the key id: SHA-1 of the uncompressed point
    point = bytes.fromhex(_one(v, "public-key"))
    key = ec.derive_private_key(int(_one(v, "private-key-scalar"), 16), ec.SECP256R1())
    assert key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    ).hex() == _one(v, "public-key")
    assert hashlib.sha1(point).hexdigest() == _one(v, "device-key-id") == tbs["deviceKeyId"].hex()
    # the signature input is tbsBatch as it appears in the batch (tag A0)
    tbs_der = bytes.fromhex(_one(v, "tbs-der"))
    signature_input = bytes.fromhex(_one(v, "signature-input"))
    assert spec.encode("TBSDeviceUsageBatch", tbs) == tbs_der
    assert signature_input == b"\xa0" + tbs_der[1:]
    assert der[3 : 3 + len(signature_input)] == signature_input
    sig = bytes.fromhex(_one(v, "signature"))
    assert decoded["signature"] == sig
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    public.verify(
        encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
        signature_input,
        ec.ECDSA(hashes.SHA256()),
    )


def test_documented_batch_refusals() -> None:
    v, key, records = _batch_vector()
    der = bytes.fromhex(_one(v, "batch-der"))
    sub, dev, seq = _one(v, "subscription-id"), _one(v, "device-id"), int(_one(v, "sequence"))
    own = {records[0].iccid}
    public = key.public_key()
    with pytest.raises(AuthorizationError):
        verify_device_batch(
            der, device_public_key=public, subscription_id=sub, device_id="dev-b", iccids=own
        )
    with pytest.raises(AuthorizationError):
        verify_device_batch(
            der, device_public_key=public, subscription_id="sub-0002", device_id=dev, iccids=own
        )
    with pytest.raises(AuthorizationError):
        verify_device_batch(
            der,
            device_public_key=public,
            subscription_id=sub,
            device_id=dev,
            iccids={"89490000000000000027"},
        )
    for last in (seq, seq + 1):
        with pytest.raises(ReplayError):
            verify_device_batch(
                der,
                device_public_key=public,
                subscription_id=sub,
                device_id=dev,
                iccids=own,
                after_sequence=last,
            )
    other = ec.derive_private_key(12345, ec.SECP256R1()).public_key()
    with pytest.raises(SignatureError):
        verify_device_batch(
            der, device_public_key=other, subscription_id=sub, device_id=dev, iccids=own
        )


def test_every_bit_flip_of_the_batch_is_refused() -> None:
    v, key, records = _batch_vector()
    der = bytes.fromhex(_one(v, "batch-der"))
    sub, dev = _one(v, "subscription-id"), _one(v, "device-id")
    for position in range(len(der) * 8):
        tampered = bytearray(der)
        tampered[position // 8] ^= 0x80 >> (position % 8)
        with pytest.raises((DecodeError, SignatureError)):
            verify_device_batch(
                bytes(tampered),
                device_public_key=key.public_key(),
                subscription_id=sub,
                device_id=dev,
                iccids={r.iccid for r in records},
            )


# -- state-1 ----------------------------------------------------------------------


def _state_vector() -> tuple[Vector, LedgerState]:
    v = VECTORS["state-1"]
    state = LedgerState(_one(v, "subscription-id"))
    for line in _all(v, "entry"):
        kind, source, iccid, period, epoch, plmn, octets = line.split()
        state.add_records(
            [
                UsageRecord(
                    SourceKind.NETWORK if kind == "network" else SourceKind.DEVICE,
                    source,
                    iccid,
                    int(period),
                    int(epoch),
                    int(octets),
                    _plmn(plmn),
                )
            ]
        )
    for line in _all(v, "epoch"):
        period, index, reason, limit, opening, devices = line.split()
        opening_devices = (
            {}
            if devices == "-"
            else {i: int(o) for i, _, o in (d.partition("=") for d in devices.split(","))}
        )
        state.add_epoch(
            PoolEpoch(
                int(period),
                int(index),
                EpochReason(reason),
                int(limit),
                int(opening),
                opening_devices,
            )
        )
    for line in _all(v, "fired"):
        device, threshold, period, epoch = line.split()
        state.add_fired(
            [AlertKey(None if device == "-" else device, int(threshold), int(period), int(epoch))]
        )
    return v, state


def test_rspfed_reproduces_the_state() -> None:
    v, state = _state_vector()
    der = bytes.fromhex(_one(v, "state-der"))
    assert encode_state(state) == der
    decoded = decode_state(der)
    assert decoded == state
    assert encode_state(decoded) == der


def test_state_decoded_independently() -> None:
    v, _ = _state_vector()
    der = bytes.fromhex(_one(v, "state-der"))
    spec = _spec()
    decoded = spec.decode("LedgerState", der)
    assert spec.encode("LedgerState", decoded) == der
    assert decoded["version"] == 1
    assert decoded["subscriptionId"] == _one(v, "subscription-id")
    entries = [
        " ".join(
            [
                e["sourceKind"],
                e["sourceId"],
                _tbcd_iccid(e["iccid"]),
                str(e["period"]),
                str(e["counterEpoch"]),
                _plmn_digits(e.get("visitedPlmn")) or "-",
                str(e["octets"]),
            ]
        )
        for e in decoded["entries"]
    ]
    # the page lists entries in canonical order, as encoded
    assert entries == _all(v, "entry")
    epochs = [
        " ".join(
            [
                str(e["period"]),
                str(e["index"]),
                e["reason"],
                str(e["limit"]),
                str(e["openingUsed"]),
                ",".join(f"{_tbcd_iccid(d['iccid'])}={d['octets']}" for d in e["openingDeviceUsed"])
                or "-",
            ]
        )
        for e in decoded["poolEpochs"]
    ]
    assert epochs == _all(v, "epoch")
    fired = [
        " ".join(
            [
                _tbcd_iccid(f["device"]) if "device" in f else "-",
                str(f["threshold"]),
                str(f["period"]),
                str(f["poolEpoch"]),
            ]
        )
        for f in decoded["firedAlerts"]
    ]
    assert fired == _all(v, "fired")


def test_state_mutations_are_refused_or_decode_canonically() -> None:
    v, _ = _state_vector()
    der = bytes.fromhex(_one(v, "state-der"))
    for position in range(len(der)):  # one bit of every octet, in turn each bit position
        tampered = bytearray(der)
        tampered[position] ^= 0x80 >> (position % 8)
        try:
            state = decode_state(bytes(tampered))
        except DecodeError:
            continue
        # an unsigned state may change value, but only to another canonical state
        assert encode_state(state) == bytes(tampered)


# -- alert-1 ----------------------------------------------------------------------


def test_alert_id_vector() -> None:
    v = VECTORS["alert-1"]
    device, threshold, period, epoch = _one(v, "alert-key").split()
    key = AlertKey(None if device == "-" else device, int(threshold), int(period), int(epoch))
    sub = _one(v, "subscription-id")
    der = bytes.fromhex(_one(v, "alert-id-input"))
    assert alert_key_der(sub, key) == der
    assert alert_id(sub, key).hex() == _one(v, "alert-id")
    assert hashlib.sha256(der).digest()[:16].hex() == _one(v, "alert-id")
    spec = _spec()
    decoded = spec.decode("AlertIdInput", der)
    assert decoded["subscriptionId"] == sub
    assert _tbcd_iccid(decoded["key"]["device"]) == device
    assert (decoded["key"]["threshold"], decoded["key"]["period"], decoded["key"]["poolEpoch"]) == (
        int(threshold),
        int(period),
        int(epoch),
    )
    assert spec.encode("AlertIdInput", decoded) == der
