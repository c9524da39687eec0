"""SGP.22 plain ECDSA: published vectors (RFC 6979, Wycheproof, SGP.26) and properties."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given
from hypothesis import strategies as st

from rspfed.crypto import Curve, der_to_raw, raw_to_der, sign, verify
from rspfed.crypto.curves import OID_BRAINPOOL_P256R1, OID_PRIME256V1
from rspfed.errors import DecodeError, SignatureError, UsageError
from tests.paths import SGP26

h = bytes.fromhex

# RFC 6979 Appendix A.2.5: ECDSA, 256 bits (prime field), NIST P-256, private key x,
# public key U = xG; "With SHA-256, message = 'sample'" and "... 'test'".
RFC6979_X = 0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721
RFC6979_UX = 0x60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6
RFC6979_UY = 0x7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299
RFC6979_SIGS = {
    b"sample": h(
        "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
        "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"
    ),
    b"test": h(
        "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367"
        "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083"
    ),
}

# Wycheproof (C2SP/wycheproof testvectors_v1/ecdsa_brainpoolP256r1_sha256_p1363_test.json),
# first test group: public key and tcIds 1 (valid), 2 (r + n), 4 (n - r), 5 (r + 2**256,
# 65 octets), 11 (r = s = 0), 25 (r = n, s = 0).
WP_KEY = h(
    "04019a2d9637743a63ddaefdbca0ee229a163b809b9b145e5313bbeb8defeab9d6"
    "548caf89bf5ba49499404145651234336401b9b2843a579ed152e090f11b9e59"
)
WP_MSG = h("313233343030")
WP_VALID = h(
    "0a5f8c70ba2d0842d5d0f841f160ad15195769a8159bfe692634d73d469d111f"
    "426e857aad3ff7aa96e4d200c03b45f1846a36d089ee3917768ca1a0d6d4da6e"
)
WP_INVALID = {
    2: "b45ae44c5c1bb1ff143702d28ee43a86a590e44bcafda560b652e5bfdde567c6"
    "678cd260f4aeb211a781388fdd48478007cf43d32b736de019916ce1c0737c39",
    4: "9f9bcb6ae7c1a1796895124eac22e05c72e210fb9fc5a88e69e9374550ab4588"
    "678cd260f4aeb211a781388fdd48478007cf43d32b736de019916ce1c0737c39",
    5: "010a5f8c70ba2d0842d5d0f841f160ad15195769a8159bfe692634d73d469d111f"
    "00678cd260f4aeb211a781388fdd48478007cf43d32b736de019916ce1c0737c39",
    11: "00" * 64,
    25: "a9fb57dba1eea9bc3e660a909d838d718c397aa3b561a6f7901e0e82974856a7" + "00" * 32,
}


def rfc6979_public() -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicNumbers(RFC6979_UX, RFC6979_UY, ec.SECP256R1()).public_key()


def wp_public() -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.BrainpoolP256R1(), WP_KEY)


@pytest.mark.parametrize("message", sorted(RFC6979_SIGS))
def test_rfc6979_p256_vectors_verify(message: bytes) -> None:
    verify(rfc6979_public(), message, RFC6979_SIGS[message])


@pytest.mark.parametrize("message", sorted(RFC6979_SIGS))
def test_rfc6979_p256_deterministic_signing(message: bytes) -> None:
    key = ec.derive_private_key(RFC6979_X, ec.SECP256R1())
    assert sign(key, message, deterministic=True) == RFC6979_SIGS[message]


def test_rfc6979_signature_on_other_message_is_rejected() -> None:
    with pytest.raises(SignatureError):
        verify(rfc6979_public(), b"test", RFC6979_SIGS[b"sample"])


def test_wycheproof_brainpool_valid() -> None:
    verify(wp_public(), WP_MSG, WP_VALID)


@pytest.mark.parametrize("tc_id", sorted(WP_INVALID))
def test_wycheproof_brainpool_invalid(tc_id: int) -> None:
    with pytest.raises(SignatureError):
        verify(wp_public(), WP_MSG, h(WP_INVALID[tc_id]))


def _sgp26_chains() -> list[tuple[str, str]]:
    return [
        ("CertificateIssuer/CERT_CI_ECDSA_NIST.der", "CertificateIssuer/CERT_CI_ECDSA_NIST.der"),
        ("CertificateIssuer/CERT_CI_ECDSA_BRP.der", "CertificateIssuer/CERT_CI_ECDSA_BRP.der"),
        ("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der", "CertificateIssuer/CERT_CI_ECDSA_NIST.der"),
        ("DPauth/CERT_S_SM_DPauth_ECDSA_BRP.der", "CertificateIssuer/CERT_CI_ECDSA_BRP.der"),
        ("DPpb/CERT_S_SM_DPpb_ECDSA_BRP.der", "CertificateIssuer/CERT_CI_ECDSA_BRP.der"),
    ]


@pytest.mark.parametrize(("subject", "issuer"), _sgp26_chains())
def test_sgp26_certificate_signatures_verify_after_der_to_raw(subject: str, issuer: str) -> None:
    cert = x509.load_der_x509_certificate((SGP26 / subject).read_bytes())
    ca = x509.load_der_x509_certificate((SGP26 / issuer).read_bytes())
    key = ca.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    raw = der_to_raw(cert.signature)
    assert len(raw) == 64
    verify(key, cert.tbs_certificate_bytes, raw)
    assert raw_to_der(raw) == cert.signature
    tampered = bytearray(cert.tbs_certificate_bytes)
    tampered[-1] ^= 1
    with pytest.raises(SignatureError):
        verify(key, bytes(tampered), raw)


@pytest.mark.parametrize("curve", list(Curve))
def test_sign_verify_round_trip_and_wrong_key(curve: Curve) -> None:
    key = ec.generate_private_key(curve.ec_curve)
    other = ec.generate_private_key(curve.ec_curve)
    sig = sign(key, b"euiccSigned1")
    assert len(sig) == 64
    verify(key.public_key(), b"euiccSigned1", sig)
    # cryptography verifies the same signature in DER form: the layout is r || s
    key.public_key().verify(raw_to_der(sig), b"euiccSigned1", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(SignatureError):
        verify(other.public_key(), b"euiccSigned1", sig)
    with pytest.raises(SignatureError):
        verify(key.public_key(), b"euiccSigned2", sig)


@pytest.mark.parametrize("length", [0, 63, 65, 70, 72])
def test_bad_signature_length(length: int) -> None:
    with pytest.raises(SignatureError):
        verify(rfc6979_public(), b"sample", bytes(length))


def test_s_equal_to_n_rejected() -> None:
    n = Curve.NIST.order
    sig = RFC6979_SIGS[b"sample"][:32] + n.to_bytes(32, "big")
    with pytest.raises(SignatureError):
        verify(rfc6979_public(), b"sample", sig)


@given(st.data())
def test_any_single_bit_flip_is_rejected(data: st.DataObject) -> None:
    sig = bytearray(RFC6979_SIGS[b"sample"])
    bit = data.draw(st.integers(0, 8 * len(sig) - 1))
    sig[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises(SignatureError):
        verify(rfc6979_public(), b"sample", bytes(sig))


def test_unsupported_curve_is_usage_error() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(UsageError):
        sign(key, b"x")
    with pytest.raises(UsageError):
        verify(key.public_key(), b"x", bytes(64))


@given(st.integers(1, (1 << 256) - 1), st.integers(1, (1 << 256) - 1))
def test_der_raw_round_trip(r: int, s: int) -> None:
    der = encode_dss_signature(r, s)
    raw = der_to_raw(der)
    assert raw == r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert raw_to_der(raw) == der
    assert decode_dss_signature(raw_to_der(raw)) == (r, s)


@given(st.binary(max_size=80))
def test_der_to_raw_never_raises_foreign_exceptions(blob: bytes) -> None:
    try:
        raw = der_to_raw(blob)
    except (DecodeError, SignatureError):
        return
    assert len(raw) == 64


@pytest.mark.parametrize(
    "der",
    [
        "",
        "30",
        "3000",
        "30060201010201",  # truncated
        "3007020101020101",  # length mismatch
        "30080201000201010000",  # trailing octets
        "3006020200010201 01",  # non-minimal INTEGER
        "3081060201010201 01",  # non-minimal length
        "310602010102 0101",  # SET instead of SEQUENCE
    ],
)
def test_malformed_der_is_decode_error(der: str) -> None:
    with pytest.raises(DecodeError):
        der_to_raw(h(der.replace(" ", "")))


def test_der_out_of_range_components() -> None:
    with pytest.raises(SignatureError):
        der_to_raw(encode_dss_signature(1 << 256, 1))
    with pytest.raises(SignatureError):
        der_to_raw(encode_dss_signature(0, 1))
    with pytest.raises(SignatureError):
        raw_to_der(bytes(63))
    with pytest.raises(SignatureError):
        raw_to_der(bytes(64))


def test_curve_oids() -> None:
    assert Curve.NIST.oid == OID_PRIME256V1 == "1.2.840.10045.3.1.7"
    assert Curve.BRAINPOOL.oid == OID_BRAINPOOL_P256R1 == "1.3.36.3.3.2.8.1.1.7"
    assert Curve.from_oid("1.3.36.3.3.2.8.1.1.7") is Curve.BRAINPOOL
    with pytest.raises(DecodeError):
        Curve.from_oid("1.3.132.0.34")
    # the certificates of SGP.26 name their curve by these OIDs
    ci = x509.load_der_x509_certificate(
        (SGP26 / "CertificateIssuer/CERT_CI_ECDSA_BRP.der").read_bytes()
    )
    key = ci.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert Curve.of_key(key) is Curve.BRAINPOOL
