"""The test vectors of docs/federation-token.md, parsed from the page.

Checked three ways: rspfed reproduces them byte for byte (deterministic
signatures), asn1tools (compiled from the module, an independent DER codec)
decodes them to the documented field values, and ``cryptography`` verifies the
signature directly over the documented signature input.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import asn1tools
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from rspfed.errors import TokenEidMismatchError, TokenExpiredError, TokenNotYetValidError
from rspfed.federation import (
    DeviceClass,
    Service,
    issue_token,
    primary_key_id,
    token_from_uri,
    token_uri,
    verify_token,
)
from tests.paths import ASN1_MODULES, REPO

DOC = REPO / "docs" / "federation-token.md"


def _vectors() -> dict[str, dict[str, str]]:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```text (vector-\d+)\n(.*?)```", text, flags=re.S)
    out = {}
    for name, body in blocks:
        fields = {}
        for line in body.strip().splitlines():
            key, _, value = line.partition(": ")
            fields[key] = value
        out[name] = fields
    return out


VECTORS = _vectors()


def test_the_page_has_vectors() -> None:
    assert len(VECTORS) >= 2


def _key(v: dict[str, str]) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(v["private-key-scalar"], 16), ec.SECP256R1())


def _now(v: dict[str, str]) -> datetime:
    return datetime.strptime(v["now"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_rspfed_reproduces_the_vector(name: str) -> None:
    v = VECTORS[name]
    key = _key(v)
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    assert point.hex() == v["public-key"]
    assert primary_key_id(key.public_key()).hex() == v["primary-key-id"]
    der = issue_token(
        primary_key=key,
        subscription_id=v["subscription-id"],
        eid=v["eid"],
        device_class=DeviceClass(v["device-class"]),
        services=[Service(s) for s in v["services"].split()],
        quota=int(v["quota"]),
        now=_now(v),
        ttl=timedelta(seconds=int(v["ttl-seconds"])),
        rand=lambda n: bytes.fromhex(v["token-id"]),
        deterministic=True,
    )
    assert der.hex() == v["token-der"]
    assert token_uri(der) == v["uri"]
    assert token_from_uri(v["uri"]) == der
    token = verify_token(
        der, primary_public_key=key.public_key(), now=_now(v), expected_eid=v["eid"]
    )
    assert token.token_id.hex() == v["token-id"]
    assert token.subscription_id == v["subscription-id"]
    assert token.eid == v["eid"]
    assert token.device_class.value == v["device-class"]
    assert {s.value for s in token.services} == set(v["services"].split())
    assert token.quota == int(v["quota"])
    assert token.not_before.strftime("%Y%m%d%H%M%SZ") == v["not-before"]
    assert token.not_after.strftime("%Y%m%d%H%M%SZ") == v["not-after"]


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_independent_decoder_and_verifier(name: str) -> None:
    v = VECTORS[name]
    der = bytes.fromhex(v["token-der"])
    spec = asn1tools.compile_files(str(ASN1_MODULES / "federation.asn"), "der")
    decoded = spec.decode("FederationToken", der)
    tbs = decoded["tbsToken"]
    assert tbs["version"] == 1
    assert tbs["tokenId"].hex() == v["token-id"]
    assert tbs["subscriptionId"] == v["subscription-id"]
    assert tbs["eid"].hex() == v["eid"]
    assert tbs["deviceClass"] == v["device-class"]
    assert tbs["quota"] == int(v["quota"])
    assert tbs["notBefore"].strftime("%Y%m%d%H%M%SZ") == v["not-before"]
    assert tbs["notAfter"].strftime("%Y%m%d%H%M%SZ") == v["not-after"]
    bits, length = tbs["services"]
    value = int.from_bytes(bits, "big") >> (8 * len(bits) - length) if length else 0
    named = ["data", "voice", "sms", "tethering"]
    granted = {named[i] for i in range(length) if value >> (length - 1 - i) & 1}
    assert granted == set(v["services"].split())
    # asn1tools re-encodes the decoded value to the same DER
    assert spec.encode("FederationToken", decoded) == der
    # primaryKeyId: SHA-1 of the uncompressed point (hashlib, not rspfed)
    point = bytes.fromhex(v["public-key"])
    assert hashlib.sha1(point).hexdigest() == v["primary-key-id"] == tbs["primaryKeyId"].hex()
    # the signature input is tbsToken as it appears in the token (tag A0)
    signature_input = bytes.fromhex(v["signature-input"])
    assert signature_input[0] == 0xA0
    assert der[3 : 3 + len(signature_input)] == signature_input
    tbs_standalone = spec.encode("TBSFederationToken", tbs)
    assert tbs_standalone == b"\x30" + signature_input[1:]
    sig = bytes.fromhex(v["signature"])
    assert decoded["signature"] == sig
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    public.verify(
        encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
        signature_input,
        ec.ECDSA(hashes.SHA256()),
    )


def test_documented_negative_cases() -> None:
    v = VECTORS["vector-1"]
    der = bytes.fromhex(v["token-der"])
    public = _key(v).public_key()
    with pytest.raises(TokenExpiredError):
        verify_token(der, primary_public_key=public, now=datetime(2026, 11, 28, 15, 10, tzinfo=UTC))
    with pytest.raises(TokenNotYetValidError):
        verify_token(
            der, primary_public_key=public, now=datetime(2026, 11, 28, 14, 59, 59, tzinfo=UTC)
        )
    with pytest.raises(TokenEidMismatchError):
        verify_token(
            der,
            primary_public_key=public,
            now=_now(v),
            expected_eid="89001012012341234012345678901224",
        )
