"""Benchmark: rspfed's strict DER codec vs asn1tools on the messages of one profile download.

Messages (realistic sizes; random-but-valid fields, real GSMA SGP.26
certificates):

* ``Certificate`` on its own (CERT.DPauth.ECDSA, NIST P-256) -- part of the
  two ES10b requests below, shown alone because it dominates their cost,
* ``AuthenticateServerRequest`` (ES10b, with CERT.DPauth),
* ``PrepareDownloadRequest`` (ES10b, with CERT.DPpb),
* ``BoundProfilePackage`` carrying a TS.48 test profile: its ``sequenceOf86``
  holds the package bytes split into <= 1020-byte segments (the encryption and
  MACs of a real BPP are not this codec's business, so the segments are the
  plain package).

Measured, in the same run, per message:

* decode: rspfed ``decode`` (strict DER check of the whole input + lazy
  asn1crypto value), rspfed decode + ``.native`` (everything parsed into Python
  values), asn1tools ``decode`` (everything parsed);
* encode: rspfed ``encode`` of a fully parsed value (re-encodes everything and
  re-checks it), asn1tools ``encode`` of its value dict;
* lazy access (what the protocol reads first): after ``decode``, only the
  fields an eUICC or LPA looks at first -- e.g. for the BPP the
  InitialiseSecureChannelRequest fields and its received bytes (for the
  signature), and the number of ``86`` segments.

Run: ``python benchmarks/asn1_bench.py [--quick]``.  Prints microseconds per
operation (best of several repeats) and ratios; no assertions.
"""

from __future__ import annotations

import argparse
import random
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asn1tools
from asn1crypto import x509

from rspfed.asn1 import decode, encode, received_der, rsp

REPO = Path(__file__).resolve().parent.parent
MODULES = REPO / "rspfed" / "asn1" / "modules"
SGP26 = REPO / "tests" / "data" / "sgp26-certs"
TS48 = REPO / "rspfed" / "data" / "ts48"

SEGMENT = 1020


def _rand(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def build_messages(rng: random.Random) -> dict[str, tuple[type[Any], bytes]]:
    """The three messages as (rspfed class, DER)."""
    dp_auth = x509.Certificate.load(
        (SGP26 / "DPauth" / "CERT_S_SM_DPauth_ECDSA_NIST.der").read_bytes()
    )
    dp_pb = x509.Certificate.load((SGP26 / "DPpb" / "CERT_S_SM_DPpb_ECDSA_NIST.der").read_bytes())
    transaction_id = _rand(rng, 16)

    auth = rsp.AuthenticateServerRequest(
        {
            "serverSigned1": {
                "transactionId": transaction_id,
                "euiccChallenge": _rand(rng, 16),
                "serverAddress": "smdp.example.com",
                "serverChallenge": _rand(rng, 16),
            },
            "serverSignature1": _rand(rng, 64),
            "euiccCiPKIdToBeUsed": _rand(rng, 20),
            "serverCertificate": dp_auth,
            "ctxParams1": (
                "ctxParamsForCommonAuthentication",
                {
                    "matchingId": "MATCHING-ID-1234",
                    "deviceInfo": {
                        "tac": _rand(rng, 4),
                        "deviceCapabilities": {
                            "gsmSupportedRelease": b"\x0d\x00\x00",
                            "utranSupportedRelease": b"\x0d\x00\x00",
                            "eutranSupportedRelease": b"\x0f\x00\x00",
                        },
                        "imei": _rand(rng, 8),
                    },
                },
            ),
        }
    )
    prepare = rsp.PrepareDownloadRequest(
        {
            "smdpSigned2": {"transactionId": transaction_id, "ccRequiredFlag": False},
            "smdpSignature2": _rand(rng, 64),
            "smdpCertificate": dp_pb,
        }
    )
    package = (TS48 / "TS48v5_SAIP2.3_NoBERTLV.der").read_bytes()
    segments = [package[i : i + SEGMENT] for i in range(0, len(package), SEGMENT)]
    bpp = rsp.BoundProfilePackage(
        {
            "initialiseSecureChannelRequest": {
                "remoteOpId": "installBoundProfilePackage",
                "transactionId": transaction_id,
                "controlRefTemplate": {
                    "keyType": b"\x88",
                    "keyLen": b"\x10",
                    "hostId": b"SMDP-HOST-ID-01",
                },
                "smdpOtpk": b"\x04" + _rand(rng, 64),
                "smdpSign": _rand(rng, 64),
            },
            "firstSequenceOf87": [_rand(rng, 48)],
            "sequenceOf88": [_rand(rng, 160)],
            "secondSequenceOf87": [_rand(rng, 48)],
            "sequenceOf86": segments,
        }
    )
    return {
        "Certificate": (x509.Certificate, dp_auth.dump()),
        "AuthenticateServerRequest": (rsp.AuthenticateServerRequest, encode(auth)),
        "PrepareDownloadRequest": (rsp.PrepareDownloadRequest, encode(prepare)),
        "BoundProfilePackage": (rsp.BoundProfilePackage, encode(bpp)),
    }


def lazy_readers() -> dict[str, Callable[[Any], object]]:
    """What the receiver reads first from each decoded message."""

    def auth(msg: Any) -> object:
        # LPA/eUICC: the signed part as received, the signature, the CI key id, the cert bytes
        return (
            received_der(msg["serverSigned1"]),
            msg["serverSigned1"]["transactionId"].native,
            msg["serverSignature1"].native,
            msg["euiccCiPKIdToBeUsed"].native,
            received_der(msg["serverCertificate"]),
        )

    def prepare(msg: Any) -> object:
        return (
            received_der(msg["smdpSigned2"]),
            msg["smdpSigned2"]["transactionId"].native,
            msg["smdpSigned2"]["ccRequiredFlag"].native,
            msg["smdpSignature2"].native,
        )

    def bpp(msg: Any) -> object:
        # eUICC: InitialiseSecureChannel first (verify smdpSign over its received bytes)
        isc = msg["initialiseSecureChannelRequest"]
        return (
            received_der(isc),
            isc["remoteOpId"].native,
            isc["transactionId"].native,
            isc["controlRefTemplate"]["keyType"].native,
            isc["smdpOtpk"].native,
            isc["smdpSign"].native,
            len(msg["sequenceOf86"]),
        )

    def certificate(cert: Any) -> object:
        # chain check: the signed part as received, the signature, the issuer
        return (
            received_der(cert["tbs_certificate"]),
            cert["signature_value"].native,
            received_der(cert["tbs_certificate"]["issuer"]),
        )

    return {
        "Certificate": certificate,
        "AuthenticateServerRequest": auth,
        "PrepareDownloadRequest": prepare,
        "BoundProfilePackage": bpp,
    }


def per_op_us(fn: Callable[[], object], repeat: int, min_time: float) -> float:
    """Best-of-``repeat`` microseconds per call (loops sized to ``min_time`` seconds)."""
    timer = timeit.Timer(fn)
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= min_time:
            break
        number *= 2 if elapsed == 0 else max(2, int(min_time / elapsed) + 1)
    best = min(timer.repeat(repeat=repeat, number=number))
    return best / number * 1e6


def bench_message(
    codec: Any,
    name: str,
    cls: type[Any],
    der: bytes,
    reader: Callable[[Any], object],
    repeat: int,
    min_time: float,
) -> list[tuple[str, float, float]]:
    """(label, us/op, asn1tools reference us/op) rows for one message."""
    tools_value = codec.decode(name, der)
    assert codec.encode(name, tools_value) == der  # both give the same bytes
    parsed = decode(cls, der)
    _ = parsed.native  # fully parsed value for the encode benchmark
    reader(parsed)

    def timed(fn: Callable[[], object]) -> float:
        return per_op_us(fn, repeat, min_time)

    tools_decode = timed(lambda: codec.decode(name, der))
    tools_encode = timed(lambda: codec.encode(name, tools_value))
    return [
        ("asn1tools decode (full)", tools_decode, tools_decode),
        ("rspfed decode (strict check + lazy)", timed(lambda: decode(cls, der)), tools_decode),
        ("rspfed decode + .native (full)", timed(lambda: decode(cls, der).native), tools_decode),
        (
            "rspfed decode + first fields (lazy)",
            timed(lambda: reader(decode(cls, der))),
            tools_decode,
        ),
        ("asn1tools encode", tools_encode, tools_encode),
        ("rspfed encode (parsed value, checked)", timed(lambda: encode(parsed)), tools_encode),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing loops")
    args = parser.parse_args()
    repeat, min_time = (3, 0.05) if args.quick else (5, 0.2)

    codec = asn1tools.compile_files(
        [
            str(MODULES / "rsp.asn"),
            str(MODULES / "PKIX1Explicit88.asn"),
            str(MODULES / "PKIX1Implicit88.asn"),
        ],
        "der",
    )
    messages = build_messages(random.Random(2026))
    readers = lazy_readers()

    print(f"rspfed vs asn1tools {asn1tools.__version__}; python {sys.version.split()[0]}")
    print(f"{'message':28} {'bytes':>6} {'operation':38} {'us/op':>10} {'vs asn1tools':>13}")
    for name, (cls, der) in messages.items():
        rows = bench_message(codec, name, cls, der, readers[name], repeat, min_time)
        for i, (label, us, reference) in enumerate(rows):
            shown = name if i == 0 else ""
            size = str(len(der)) if i == 0 else ""
            print(f"{shown:28} {size:>6} {label:38} {us:10.1f} {us / reference:12.2f}x")
    print("ratio = rspfed time / asn1tools time for the same message (lower is faster)")


if __name__ == "__main__":
    main()
