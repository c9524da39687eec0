"""Bound Profile Package build (SM-DP+) and unbind (eUICC) time for a TS.48 package.

For each curve and each mode (session keys only; precomputed PPKs with
ReplaceSessionKeys) prints the median time of

build
    ``build_bound_profile_package`` (one BPP for a new session; the PPP is
    built once beforehand in PPK mode and its cost printed separately);
unbind
    ``segment_bpp_for_es10b`` not included; ``BppUnbinder`` fed every ES10b block;

and splits each into *crypto* (the same primitive calls timed in isolation:
ECDSA sign / verify, ECKA-DH with point decoding, the KDF, BSP over the same
segments) and *rest* (total minus crypto: TLV assembly, strict DER checks of the
InitialiseSecureChannelRequest / metadata / ConfigureISDP, ProfileElement
splitting, copies).

Run: ``python benchmarks/es8p_bpp.py [--package rspfed/data/ts48/<file>.der]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from rspfed import es8p
from rspfed.crypto import bsp, ecka, signature
from rspfed.crypto.curves import Curve
from rspfed.crypto.kdf import derive_session_keys

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PACKAGE = ROOT / "rspfed" / "data" / "ts48" / "TS48v2_SAIP2.3_BERTLV.der"


def per_op_us(fn: Callable[[], object], *, min_time: float = 0.3, rounds: int = 7) -> float:
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 > min_time / rounds:
            break
        n *= 2
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, default=DEFAULT_PACKAGE)
    args = parser.parse_args()
    package = args.package.read_bytes()
    rand = random.Random(1).randbytes
    eid = bytes.fromhex("89049032123451234512345678901235")
    tid, host_id = rand(16), b"rspfed-host"
    iccid = bytes.fromhex("98001032547698103214")
    metadata = es8p.store_metadata_request(iccid, "rspfed SP", "TS.48", profile_class="test")
    print(f"package: {args.package.name}, {len(package)} octets")
    print(
        f"{'curve':10} {'mode':7} {'side':7} {'total µs':>9} {'crypto µs':>10} "
        f"{'rest µs':>8} {'BPP octets':>10}"
    )
    for curve in Curve:
        bench_curve(curve, package, metadata, eid, tid, host_id, rand)


def bench_curve(
    curve: Curve,
    package: bytes,
    metadata: bytes,
    eid: bytes,
    tid: bytes,
    host_id: bytes,
    rand: Callable[[int], bytes],
) -> None:
    dp_pb = ecka.generate_key_pair(curve, rand)
    euicc_ot = ecka.generate_key_pair(curve, rand)
    smdp_ot = ecka.generate_key_pair(curve, rand)
    euicc_otpk = ecka.encode_public_key(euicc_ot.public_key())
    smdp_otpk = ecka.encode_public_key(smdp_ot.public_key())
    ppk = es8p.generate_ppk(rand)
    ppp_us = per_op_us(lambda: es8p.protect_profile_package(package, ppk))
    ppp = es8p.protect_profile_package(package, ppk)
    signed = b"x" * 177  # the InitialiseSecureChannelRequest signed data is 177 octets
    sig = signature.sign(dp_pb, signed)
    keys = derive_session_keys(ecka.ecka_dh(smdp_ot, euicc_ot.public_key()), host_id, eid)

    def row(mode: str, profile: bytes | es8p.ProtectedProfilePackage) -> None:
        def build() -> bytes:
            return es8p.build_bound_profile_package(
                transaction_id=tid,
                euicc_otpk=euicc_otpk,
                smdp_ot_key=smdp_ot,
                dp_pb_key=dp_pb,
                eid=eid,
                host_id=host_id,
                metadata=metadata,
                profile=profile,
            )

        bpp = build()
        blocks = es8p.segment_bpp_for_es10b(bpp)

        def unbind() -> None:
            u = es8p.BppUnbinder(
                euicc_ot_key=euicc_ot,
                smdp_public_key=dp_pb.public_key(),
                transaction_id=tid,
                eid=eid,
            )
            for b in blocks:
                u.feed(b)

        def build_crypto() -> None:
            signature.sign(dp_pb, signed)
            shs = ecka.ecka_dh(smdp_ot, ecka.decode_public_key(curve, euicc_otpk))
            k = derive_session_keys(shs, host_id, eid)
            enc = bsp.BspEncryptor(k)
            enc.protect(0x87, es8p.DEFAULT_CONFIGURE_ISDP)
            enc.protect_split(0x88, metadata, encrypt=False)
            if isinstance(profile, bytes):
                enc.protect_split(0x86, profile)
            else:
                enc.protect(0x87, es8p.replace_session_keys_request(ppk))

        segs = es8p.protect_bpp_segments(keys, es8p.DEFAULT_CONFIGURE_ISDP, metadata, profile)

        def unbind_crypto() -> None:
            signature.verify(dp_pb.public_key(), signed, sig)
            shs = ecka.ecka_dh(euicc_ot, ecka.decode_public_key(curve, smdp_otpk))
            k = derive_session_keys(shs, host_id, eid)
            dec = bsp.BspDecryptor(k)
            for s in segs.first_sequence_of_87:
                dec.unprotect(s, tag=0x87)
            for s in segs.sequence_of_88:
                dec.unprotect_mac_only(s, tag=0x88)
            if segs.second_sequence_of_87:
                dec.unprotect(segs.second_sequence_of_87[0], tag=0x87)
                dec.replace_session_keys(ppk)
            for s in segs.sequence_of_86:
                dec.unprotect(s, tag=0x86)

        for side, fn, crypto in (("build", build, build_crypto), ("unbind", unbind, unbind_crypto)):
            total = per_op_us(fn)
            c = per_op_us(crypto)
            print(
                f"{curve.name:10} {mode:7} {side:7} {total:9.0f} {c:10.0f} "
                f"{total - c:8.0f} {len(bpp):10d}"
            )

    row("session", package)
    row("ppk", ppp)
    print(f"{curve.name:10} ppk     PPP once {ppp_us:8.0f}  (protect_profile_package, per profile)")


if __name__ == "__main__":
    main()
