"""Benchmark: EAP-AKA' (rspfed.eap) key derivation, codec and a full exchange.

Prints per-operation times (median of several runs):

* ``derive_keys`` (CK'/IK' + PRF' to 208 octets),
* ``decode`` of an AKA-Challenge request and ``verify_mac`` on it,
* one full authenticator <-> peer exchange with MILENAGE (TS 35.208 set 19)
  as AuC and USIM, including a P-256 federation key check.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from rspfed.crypto.aka import build_autn, check_autn
from rspfed.crypto.milenage import Milenage
from rspfed.eap.akaprime import (
    AT_AUTN,
    AT_KDF,
    AT_KDF_INPUT,
    AT_MAC,
    AT_RAND,
    EAP_TYPE_AKA_PRIME,
    Attribute,
    Code,
    EapPacket,
    Subtype,
    add_mac,
    decode,
    derive_keys,
    verify_mac,
)
from rspfed.eap.machines import (
    AuthenticationVector,
    EapAkaPrimePeer,
    EapAkaPrimeServer,
    UsimResult,
)

K = bytes.fromhex("5122250214c33e723a5dd523fc145fc0")
OPC = bytes.fromhex("981d464c7c52eb6e5036234984ad0bcf")
IDENTITY = b"0555444333222111"


class _Auc:
    def __init__(self) -> None:
        self.alg = Milenage(K, OPC)
        self.sqn = 0x100

    def vector(self, identity: bytes) -> AuthenticationVector:
        rand = os.urandom(16)
        autn, out = build_autn(self.alg, rand, self.sqn.to_bytes(6, "big"), b"\x80\x00")
        self.sqn += 32
        return AuthenticationVector(rand, autn.to_bytes(), out.res, out.ck, out.ik)

    def resynchronise(self, identity: bytes, rand: bytes, auts: bytes) -> None:
        raise AssertionError("no resync in this benchmark")


def _timeit(fn: Callable[[], object], n: int) -> float:
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t) / n)
    return statistics.median(runs)


def main() -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    fed = key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    alg = Milenage(K, OPC)
    auc = _Auc()

    def usim(rand: bytes, autn: bytes) -> UsimResult:
        _, out = check_autn(alg, rand, autn)
        return out.res, out.ck, out.ik

    def exchange() -> None:
        server = EapAkaPrimeServer(
            identity=IDENTITY, network_name=b"WLAN", auc=auc, random=os.urandom
        )
        peer = EapAkaPrimePeer(identity=IDENTITY, usim=usim, federation_key=fed)
        answer = peer.receive(server.start())
        assert answer is not None
        peer.receive(server.receive(answer))
        assert server.federation_key == fed

    av = auc.vector(IDENTITY)
    keys = derive_keys(IDENTITY, av.ck, av.ik, b"WLAN", av.sqn_xor_ak)
    challenge = add_mac(
        keys.k_aut,
        EapPacket(
            Code.REQUEST,
            1,
            EAP_TYPE_AKA_PRIME,
            Subtype.AKA_CHALLENGE,
            (
                Attribute(AT_RAND, av.rand),
                Attribute(AT_AUTN, av.autn),
                Attribute(AT_KDF, b"\x00\x01"),
                Attribute(AT_KDF_INPUT, b"WLAN"),
                Attribute(AT_MAC, bytes(16)),
            ),
        ),
    )

    figures = {
        "derive_keys": _timeit(
            lambda: derive_keys(IDENTITY, av.ck, av.ik, b"WLAN", av.sqn_xor_ak), 2000
        ),
        "decode(challenge)": _timeit(lambda: decode(challenge), 5000),
        "verify_mac(challenge)": _timeit(lambda: verify_mac(keys.k_aut, challenge), 2000),
        "full exchange (MILENAGE both sides)": _timeit(exchange, 300),
    }
    for name, seconds in figures.items():
        print(f"{name:40s} {seconds * 1e6:9.1f} µs")


if __name__ == "__main__":
    main()
