"""Device batches at ingest: verified once, kept apart from billing; forgeries refused."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import (
    AuthorizationError,
    DecodeError,
    NotFoundError,
    ReplayError,
    SignatureError,
)
from rspfed.federation.ledger import SourceKind, UsageRecord, sign_device_batch
from rspfed.federation.types import Caller
from tests.pool.conftest import MB, Family


def batch(
    fam: Family,
    name: str,
    octets: int,
    sequence: int,
    *,
    key: ec.EllipticCurvePrivateKey | None = None,
    iccid: str | None = None,
    device_id: str | None = None,
) -> bytes:
    device = fam.devices[name]
    phone = getattr(fam, name)
    device_id = device_id or device.id
    record = UsageRecord(
        SourceKind.DEVICE,
        device_id,
        iccid or device.iccid,
        fam.pool.period(fam.sub_id).id,
        0,
        octets,
    )
    return sign_device_batch(
        device_key=key or phone.key,
        subscription_id=fam.sub_id,
        device_id=device_id,
        sequence=sequence,
        records=[record],
    )


def test_device_figures_are_kept_apart_from_billing(family: Family) -> None:
    fam = family
    delta = fam.pool.ingest_device_batch(batch(fam, "laptop", 5 * MB, 1))
    assert sum(delta.counters.values()) == 5 * MB
    fam.pool.ingest_device_batch(batch(fam, "laptop", 7 * MB, 2))
    view = fam.pool.view(fam.sub_id)
    laptop = next(d for d in view.devices if d.name == "laptop")
    assert laptop.reported == 7 * MB
    assert laptop.used == 0
    assert view.pool_used == 0
    assert fam.fired == []


def test_forged_replayed_and_foreign_batches_are_refused(family: Family) -> None:
    fam = family
    fam.pool.ingest_device_batch(batch(fam, "laptop", MB, 5))
    with pytest.raises(ReplayError):
        fam.pool.ingest_device_batch(batch(fam, "laptop", 2 * MB, 5))
    with pytest.raises(ReplayError):
        fam.pool.ingest_device_batch(batch(fam, "laptop", 2 * MB, 4))
    forged = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(SignatureError):
        fam.pool.ingest_device_batch(batch(fam, "laptop", 9 * MB, 6, key=forged))
    der = bytearray(batch(fam, "laptop", 9 * MB, 7))
    der[-3] ^= 1  # the signature
    with pytest.raises((SignatureError, DecodeError)):
        fam.pool.ingest_device_batch(bytes(der))
    with pytest.raises(DecodeError):
        fam.pool.ingest_device_batch(b"\x30\x03\x02\x01\x01")
    # the laptop reporting the tablet's profile
    with pytest.raises(AuthorizationError):
        fam.pool.ingest_device_batch(batch(fam, "laptop", MB, 8, iccid=fam.devices["tablet"].iccid))
    # the laptop's signed request carrying the tablet's batch
    with pytest.raises(AuthorizationError):
        fam.pool.ingest_device_batch(
            batch(fam, "tablet", MB, 1), device_id=fam.devices["laptop"].id
        )
    # a batch claiming to be the tablet's, signed by the laptop
    with pytest.raises(SignatureError):
        fam.pool.ingest_device_batch(
            batch(fam, "tablet", MB, 2, key=fam.laptop.key, iccid=fam.devices["tablet"].iccid)
        )
    reported = {d.name: d.reported for d in fam.pool.view(fam.sub_id).devices}
    assert reported["laptop"] == MB
    assert reported["tablet"] == 0
    # a removed device's batches are refused
    phone = fam.devices["phone"]
    fam.ow.operator.remove(Caller(b"", fam.sub_id, phone.id, phone.role), fam.devices["laptop"].id)
    with pytest.raises(NotFoundError):
        fam.pool.ingest_device_batch(batch(fam, "laptop", 3 * MB, 9))
