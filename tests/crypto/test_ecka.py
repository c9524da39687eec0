"""ECKA-DH and one-time key pairs: NIST CAVP and RFC 7027 vectors, point coding, properties."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from rspfed.crypto import Curve, decode_public_key, ecka_dh, encode_public_key, generate_key_pair
from rspfed.errors import DecodeError, UsageError

h = bytes.fromhex

# NIST CAVS 14.1 "ECC CDH Primitive" (SP 800-56A) P-256, COUNT = 0.
CAVP = {
    "d": h("7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534"),
    "Q": h(
        "04ead218590119e8876b29146ff89ca61770c4edbbf97d38ce385ed281d8a6b230"
        "28af61281fd35e2fa7002523acc85a429cb06ee6648325389f59edfce1405141"
    ),
    "peer": h(
        "04700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287"
        "db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac"
    ),
    "Z": h("46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b"),
}

# RFC 7027 Appendix A.1 (brainpoolP256r1): dA, QA, dB, QB and x_Z.
RFC7027 = {
    "d": h("81DB1EE100150FF2EA338D708271BE38300CB54241D79950F77B063039804F1D"),
    "Q": h(
        "0444106E913F92BC02A1705D9953A8414DB95E1AAA49E81D9E85F929A8E3100BE5"
        "8AB4846F11CACCB73CE49CBDD120F5A900A69FD32C272223F789EF10EB089BDC"
    ),
    "d_peer": h("55E40BC41E37E3E2AD25C3C6654511FFA8474A91A0032087593852D3E7D76BD3"),
    "peer": h(
        "048D2D688C6CF93E1160AD04CC4429117DC2C41825E1E9FCA0ADDD34E6F1B39F7B"
        "990C57520812BE512641E47034832106BC7D3E8DD0E4C7F1136D7006547CEC6A"
    ),
    "Z": h("89AFC39D41D3B327814B80940B042590F96556EC91E6AE7939BCE31F3A18BF2B"),
}

VECTORS = [(Curve.NIST, CAVP), (Curve.BRAINPOOL, RFC7027)]


def feed(*chunks: bytes) -> Callable[[int], bytes]:
    """A ``rand`` that returns the given chunks in order."""
    it: Iterator[bytes] = iter(chunks)

    def rand(n: int) -> bytes:
        return next(it)

    return rand


@pytest.mark.parametrize(("curve", "v"), VECTORS)
def test_published_vectors(curve: Curve, v: dict[str, bytes]) -> None:
    # The scalar comes in through rand: the key pair matches the published public key.
    key = generate_key_pair(curve, feed(v["d"]))
    assert encode_public_key(key.public_key()) == v["Q"]
    peer = decode_public_key(curve, v["peer"])
    assert ecka_dh(key, peer) == v["Z"]


def test_rfc7027_both_directions() -> None:
    b = generate_key_pair(Curve.BRAINPOOL, feed(RFC7027["d_peer"]))
    assert encode_public_key(b.public_key()) == RFC7027["peer"]
    a_pub = decode_public_key(Curve.BRAINPOOL, RFC7027["Q"])
    assert ecka_dh(b, a_pub) == RFC7027["Z"]


@pytest.mark.parametrize("curve", list(Curve))
def test_rejection_sampling_skips_out_of_range_scalars(curve: Curve) -> None:
    n = curve.order
    good = (12345).to_bytes(32, "big")
    key = generate_key_pair(
        curve, feed(bytes(32), n.to_bytes(32, "big"), b"\xff" * 32, good)
    )
    assert key.private_numbers().private_value == 12345
    last = generate_key_pair(curve, feed((n - 1).to_bytes(32, "big")))
    assert last.private_numbers().private_value == n - 1


def test_rand_misuse_is_usage_error() -> None:
    with pytest.raises(UsageError):
        generate_key_pair(Curve.NIST, lambda n: bytes(n - 1))
    with pytest.raises(UsageError):
        generate_key_pair(Curve.NIST, lambda n: bytes(n))  # always zero: never in range


@pytest.mark.parametrize("curve", list(Curve))
@given(seed=st.binary(min_size=64, max_size=64))
def test_ecka_agreement_and_point_round_trip(curve: Curve, seed: bytes) -> None:
    a = generate_key_pair(curve, feed(seed[:32], *[b"\x01" * 32] * 4))
    b = generate_key_pair(curve, feed(seed[32:], *[b"\x02" * 32] * 4))
    pa = encode_public_key(a.public_key())
    assert len(pa) == 65
    assert pa[0] == 4
    back = decode_public_key(curve, pa)
    assert encode_public_key(back) == pa
    assert ecka_dh(a, decode_public_key(curve, encode_public_key(b.public_key()))) == ecka_dh(
        b, back
    )


@pytest.mark.parametrize(("curve", "v"), VECTORS)
def test_invalid_points_are_decode_errors(curve: Curve, v: dict[str, bytes]) -> None:
    q = bytearray(v["peer"])
    q[-1] ^= 1  # off the curve
    with pytest.raises(DecodeError):
        decode_public_key(curve, bytes(q))
    with pytest.raises(DecodeError):
        decode_public_key(curve, v["peer"][:-1])
    with pytest.raises(DecodeError):
        decode_public_key(curve, b"\x02" + v["peer"][1:33])  # compressed form refused
    with pytest.raises(DecodeError):
        decode_public_key(curve, b"\x03" + v["peer"][1:])
    with pytest.raises(DecodeError):
        decode_public_key(curve, b"\x04" + bytes(64))


def test_point_of_the_other_curve_is_refused() -> None:
    with pytest.raises(DecodeError):
        decode_public_key(Curve.BRAINPOOL, CAVP["peer"])
    with pytest.raises(DecodeError):
        decode_public_key(Curve.NIST, RFC7027["peer"])


@given(st.binary(min_size=0, max_size=70))
def test_decode_never_raises_foreign_exceptions(blob: bytes) -> None:
    for curve in Curve:
        with contextlib.suppress(DecodeError):
            decode_public_key(curve, blob)


def test_ecka_across_curves_is_usage_error() -> None:
    a = generate_key_pair(Curve.NIST, feed(CAVP["d"]))
    b = decode_public_key(Curve.BRAINPOOL, RFC7027["peer"])
    with pytest.raises(UsageError):
        ecka_dh(a, b)
    with pytest.raises(UsageError):
        encode_public_key(ec.generate_private_key(ec.SECP384R1()).public_key())
