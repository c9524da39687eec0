"""Benchmark: the pairing crypto and the secure channel (issue G).

Measured, in one process (no I/O):

* Noise ``NNpsk0_25519_ChaChaPoly_SHA256`` handshake, both sides (two
  messages, empty payloads, split into transport ciphers): ours
  (:mod:`rspfed.crypto.noise`) and, for reference, the ``noiseprotocol``
  package if installed;
* SPAKE2 symmetric with key confirmation, both sides
  (:class:`rspfed.crypto.pake.SymmetricPake`: start, finish, confirmation,
  verify), which is pure-Python Ed25519 arithmetic in the ``spake2`` package;
* the whole pairing crypto of the code path (PAKE + psk derivation +
  Noise handshake + channel set-up);
* record throughput of :class:`rspfed.transfer.channel.SecureChannel`:
  seal + receive_data of 1 MiB messages (16 records of 65518 octets), and
  of small (100-octet) messages, in MiB/s and messages/s.

Run: ``python benchmarks/channel_bench.py [--quick]``.  Prints figures (best
of several repeats); no assertions.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Callable

from rspfed.crypto.noise import PROTOCOL_NAME, HandshakeState
from rspfed.crypto.pake import SymmetricPake
from rspfed.transfer.channel import SecureChannel
from rspfed.transfer.code import (
    PairingMethod,
    ShortCode,
    pairing_prologue,
    psk_from_pake_key,
)


def best(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Best per-call time in seconds over ``repeat`` runs of ``number`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times)


def noise_handshake(psk: bytes, prologue: bytes = b"bench") -> tuple[SecureChannel, SecureChannel]:
    init = HandshakeState(initiator=True, psk=psk, prologue=prologue)
    resp = HandshakeState(initiator=False, psk=psk, prologue=prologue)
    resp.read_message(init.write_message())
    init.read_message(resp.write_message())
    return SecureChannel.from_handshake(init), SecureChannel.from_handshake(resp)


def noiseprotocol_handshake(psk: bytes) -> None:
    from noise.connection import NoiseConnection

    a = NoiseConnection.from_name(PROTOCOL_NAME.encode())
    b = NoiseConnection.from_name(PROTOCOL_NAME.encode())
    a.set_as_initiator()
    b.set_as_responder()
    for c in (a, b):
        c.set_psks(psk=psk)
        c.set_prologue(b"bench")
        c.start_handshake()
    b.read_message(a.write_message())
    a.read_message(b.write_message())


def pake(password: bytes) -> bytes:
    a, b = SymmetricPake(password), SymmetricPake(password)
    ma, mb = a.start(), b.start()
    a.finish(mb)
    b.finish(ma)
    ca, cb = a.confirmation(), b.confirmation()
    key = a.verify_confirmation(cb)
    b.verify_confirmation(ca)
    return key


def code_path() -> None:
    code = ShortCode.generate(os.urandom)
    key = pake(code.password)
    noise_handshake(psk_from_pake_key(key), pairing_prologue(PairingMethod.CODE, code.discovery_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    psk = os.urandom(32)

    print("pairing crypto (both sides, one process)")
    t = best(lambda: noise_handshake(psk), 50 if args.quick else 200, repeat)
    print(f"  Noise NNpsk0 handshake + channel set-up (ours): {t * 1e3:8.3f} ms")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_ref = best(lambda: noiseprotocol_handshake(psk), 50 if args.quick else 200, repeat)
        print(f"  Noise NNpsk0 handshake (noiseprotocol 0.3.1):  {t_ref * 1e3:8.3f} ms")
    except ImportError:
        print("  noiseprotocol not installed: no reference figure")
    t = best(lambda: pake(b"17-guitarist-revenge"), 5 if args.quick else 20, repeat)
    print(f"  SPAKE2 + key confirmation (spake2 0.9):         {t * 1e3:8.3f} ms")
    t = best(code_path, 5 if args.quick else 20, repeat)
    print(f"  whole code path (PAKE, psk, Noise, channel):    {t * 1e3:8.3f} ms")

    print("record throughput (seal + receive_data, same process)")
    big = os.urandom(1 << 20)
    n_big = 5 if args.quick else 20

    def big_round() -> None:
        a, b = channels
        out = b.receive_data(a.seal(big))
        assert out[0] == big

    channels = noise_handshake(psk)
    t = best(big_round, n_big, repeat)
    print(f"  1 MiB messages:   {1 / t:8.1f} MiB/s  ({t * 1e3:.2f} ms per message)")

    sealer = noise_handshake(psk)[0]
    t_seal = best(lambda: sealer.seal(big), n_big, repeat)
    wire = sealer.seal(big)
    receiver = noise_handshake(psk)
    sender_wires = [receiver[0].seal(big) for _ in range(n_big * repeat)]
    it = iter(sender_wires)
    t_open = best(lambda: receiver[1].receive_data(next(it)), n_big, repeat)
    print(f"    seal only:      {1 / t_seal:8.1f} MiB/s; receive only: {1 / t_open:8.1f} MiB/s")
    print(f"    wire overhead:  {len(wire) - len(big)} octets per MiB")

    channels = noise_handshake(psk)
    small = os.urandom(100)
    n_small = 2000 if args.quick else 20000

    def small_round() -> None:
        a, b = channels
        b.receive_data(a.seal(small))

    t = best(small_round, n_small, repeat)
    print(f"  100-octet messages: {1 / t:10.0f} messages/s ({t * 1e6:.1f} µs per message)")


if __name__ == "__main__":
    main()
