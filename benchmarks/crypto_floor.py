"""Cost of the RSP crypto primitives and the crypto floor of one profile download.

Prints microseconds per operation for both curves (sign, verify, key-pair
generation, ECKA-DH with point decoding, session key derivation, BSP
protect / unprotect per KiB, MILENAGE and the test algorithm), then the
crypto floor of one SGP.22 download on each side.

The split used (SGP.22 §3.1.2/§3.1.3, ES9+/ES10b/ES8+):

eUICC
    AuthenticateServer: verify CERT.DPauth.ECDSA (by CI) + serverSignature1,
    sign euiccSignature1; PrepareDownload: verify CERT.DPpb.ECDSA (by CI) +
    smdpSignature2, generate otPK.EUICC.ECKA, sign euiccSignature2; LoadBPP:
    verify the InitialiseSecureChannel smdpSign, ECKA-DH, KDF, BSP unprotect
    of the BPP, sign euiccSignPIR.  5 verify, 3 sign, 1 keygen, 1 ECDH, KDF, BSP.
SM-DP+
    InitiateAuthentication: sign serverSignature1; AuthenticateClient: verify
    CERT.EUM.ECDSA (by CI), CERT.EUICC.ECDSA (by EUM) and euiccSignature1,
    sign smdpSignature2; GetBoundProfilePackage: verify euiccSignature2,
    generate otPK.DP.ECKA, ECKA-DH, KDF, sign the InitialiseSecureChannel
    smdpSign, BSP protect of the BPP; HandleNotification: verify euiccSignPIR.
    5 verify, 3 sign, 1 keygen, 1 ECDH, KDF, BSP.

TLS, DER coding and certificate parsing are not included.

Run: ``python benchmarks/crypto_floor.py [--kib 12]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from rspfed.crypto import (
    MAX_ENCRYPTED_DATA_SIZE,
    AkaAlgorithm,
    BspDecryptor,
    BspEncryptor,
    Curve,
    Milenage,
    TestAlgorithm,
    decode_public_key,
    derive_session_keys,
    ecka_dh,
    encode_public_key,
    generate_key_pair,
    sign,
    verify,
)


def per_op_us(fn: Callable[[], object], *, min_time: float = 0.2, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean time per call, in microseconds."""
    n = 1
    while True:  # calibrate: enough calls for min_time / rounds
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time / rounds:
            break
        n *= 2
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(samples)


def measure(curve: Curve, kib: int) -> dict[str, float]:
    key = generate_key_pair(curve, os.urandom)
    pub = key.public_key()
    peer = generate_key_pair(curve, os.urandom)
    peer_point = encode_public_key(peer.public_key())
    msg = os.urandom(300)  # a signed structure such as euiccSigned1 is a few hundred octets
    sig = sign(key, msg)
    eid = bytes.fromhex("89049032123451234512345678901235")
    shs = ecka_dh(key, peer.public_key())
    keys = derive_session_keys(shs, b"\x80" * 8, eid)
    profile = os.urandom(kib * 1024)

    def bsp_protect() -> list[bytes]:
        return BspEncryptor(keys).protect_split(0x86, profile)

    segments = bsp_protect()

    def bsp_unprotect() -> None:
        dec = BspDecryptor(keys)
        for s in segments:
            dec.unprotect(s, tag=0x86)

    return {
        "sign": per_op_us(lambda: sign(key, msg)),
        "verify": per_op_us(lambda: verify(pub, msg, sig)),
        "keygen": per_op_us(lambda: generate_key_pair(curve, os.urandom)),
        "ecdh": per_op_us(lambda: ecka_dh(key, decode_public_key(curve, peer_point))),
        "kdf": per_op_us(lambda: derive_session_keys(shs, b"\x80" * 8, eid)),
        "bsp_protect_kib": per_op_us(bsp_protect) / kib,
        "bsp_unprotect_kib": per_op_us(bsp_unprotect) / kib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kib", type=int, default=12, help="BPP size in KiB (default 12)")
    args = parser.parse_args()
    kib: int = args.kib

    import platform

    import cryptography

    print(f"cryptography {cryptography.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}; single thread; median of 5 rounds")
    print(f"BSP over {kib} KiB in segments of {MAX_ENCRYPTED_DATA_SIZE} data octets\n")

    rows = ["sign", "verify", "keygen", "ecdh", "kdf", "bsp_protect_kib", "bsp_unprotect_kib"]
    labels = {
        "sign": "ECDSA sign (SHA-256, r||s)",
        "verify": "ECDSA verify (r||s)",
        "keygen": "key pair (rejection sampling)",
        "ecdh": "ECKA-DH incl. point decoding",
        "kdf": "X9.63 KDF session keys",
        "bsp_protect_kib": "BSP protect, per KiB",
        "bsp_unprotect_kib": "BSP unprotect, per KiB",
    }
    results = {c: measure(c, kib) for c in Curve}
    print(f"{'operation (us)':34}" + "".join(f"{c.spec_name:>18}" for c in Curve))
    for r in rows:
        print(f"{labels[r]:34}" + "".join(f"{results[c][r]:18.1f}" for c in Curve))

    print(f"\nCrypto floor of one download ({kib} KiB BPP), microseconds:")
    print(f"{'side':10}{'curve':>18}{'5 verify':>11}{'3 sign':>9}{'keygen':>9}{'ECDH':>9}"
          f"{'KDF':>7}{'BSP':>9}{'total':>10}")
    for c in Curve:
        m = results[c]
        for side, bsp_key in (("eUICC", "bsp_unprotect_kib"), ("SM-DP+", "bsp_protect_kib")):
            parts = [5 * m["verify"], 3 * m["sign"], m["keygen"], m["ecdh"], m["kdf"],
                     kib * m[bsp_key]]
            print(f"{side:10}{c.spec_name:>18}{parts[0]:11.0f}{parts[1]:9.0f}{parts[2]:9.0f}"
                  f"{parts[3]:9.0f}{parts[4]:7.0f}{parts[5]:9.0f}{sum(parts):10.0f}")

    print("\nAKA (per authentication vector / check), microseconds:")
    k = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
    algs: list[tuple[str, AkaAlgorithm]] = [
        ("MILENAGE", Milenage.from_op(k, bytes.fromhex("cdc202d5123e20f62b6d676ac72cb318"))),
        ("test algorithm", TestAlgorithm(bytes(range(16)))),
    ]
    rand, sqn, amf = os.urandom(16), bytes(6), b"\x80\x00"
    for name, alg in algs:

        def one(alg: AkaAlgorithm = alg) -> object:
            return alg.f2345(rand), alg.f1(rand, sqn, amf)

        print(f"{name + ' f1 + f2..f5':34}{per_op_us(one):18.1f}")


if __name__ == "__main__":
    main()
