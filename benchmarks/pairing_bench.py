"""Benchmark: pairing plus token hand-over over loopback LAN (issue G), split up.

Both flows of :mod:`rspfed.transfer.flows` run in one process and one event
loop -- :func:`~rspfed.transfer.flows.offer_join` (the primary: a
:class:`~rspfed.transport.lan.LanOffer` per discovery id, zeroconf
registration on 127.0.0.1) and :func:`~rspfed.transfer.flows.join` (the new
device) -- over real TCP on loopback, with an instant approval and an
enroller that returns at once (the SGP.22 download is measured by
``benchmarks/download_bench.py``; here the figure ends when the joiner holds
the token, and the whole exchange when both said bye).  The joiner's progress
events are time-stamped:

* **discovery**: from the start of ``join`` to the open TCP stream: the QR
  path connects to the offer's direct hint; the code path resolves the
  nameplate's instance by zeroconf first (mDNS on loopback);
* **pairing + hand-over**: from the open stream to the token in the joiner's
  hands (PAKE for codes, Noise NNpsk0, both hellos, the join request, the
  token signed and granted);
* **crypto**: what of that is cryptography, measured alone in the same
  process, both sides (X25519/ChaCha20-Poly1305/SHA-256 of the Noise
  handshake, the SPAKE2 exchange and confirmation for codes, the token's
  ECDSA P-256 signature and its three parses);
* **protocol overhead** = pairing + hand-over - crypto: framing, DER, the
  state machine, asyncio and the TCP round trips.  Goal: <= 50 ms.

Both sides share one CPU here, so the figures are conservative (two devices
compute in parallel).  Run: ``python benchmarks/pairing_bench.py [--runs N]``.
Prints medians and the worst run; no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.crypto.noise import HandshakeState
from rspfed.crypto.pake import SymmetricPake
from rspfed.federation.enrol import EnrolResult
from rspfed.federation.token import DeviceClass, Service, issue_token, parse_token
from rspfed.federation.types import Enrolment
from rspfed.pki.eid import generate_eid
from rspfed.transfer import flows
from rspfed.transfer.code import ShortCode
from rspfed.transfer.flows import FlowEvent, FlowStep, LocalDevice, PrimaryAuthority

LO = ("127.0.0.1",)
PRIMARY_EID = "89049032123451234512345678901235"
JOINER_EID = generate_eid("89049032", os.urandom)
GOAL_MS = 50.0


def best(fn: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Best per-call time in seconds over ``repeat`` runs of ``number`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times)


def crypto_floor() -> dict[str, float]:
    """Seconds of cryptography in one pairing and hand-over, both sides."""
    psk = os.urandom(32)

    def noise() -> None:
        init = HandshakeState(initiator=True, psk=psk, prologue=b"bench")
        resp = HandshakeState(initiator=False, psk=psk, prologue=b"bench")
        resp.read_message(init.write_message())
        init.read_message(resp.write_message())

    def pake() -> None:
        a, b = SymmetricPake(b"17-guitarist-revenge"), SymmetricPake(b"17-guitarist-revenge")
        ma, mb = a.start(), b.start()
        a.finish(mb)
        b.finish(ma)
        ca, cb = a.confirmation(), b.confirmation()
        a.verify_confirmation(cb)
        b.verify_confirmation(ca)

    key = ec.generate_private_key(ec.SECP256R1())

    def sign() -> bytes:
        return issue_token(
            primary_key=key,
            subscription_id="bench",
            eid=JOINER_EID,
            device_class=DeviceClass.LAPTOP,
            services={Service.DATA},
            quota=0,
            now=datetime.now(UTC),
            rand=os.urandom,
        )

    der = sign()
    return {
        "noise": best(noise, 100),
        "pake": best(pake, 10),
        "token": best(sign, 100) + 3 * best(lambda: parse_token(der), 200),
    }


async def one_run(key: ec.EllipticCurvePrivateKey, *, by_code: bool) -> dict[str, float]:
    """One pairing over loopback LAN; the phases in seconds."""
    config = flows.TransportConfig(kind="lan", lan_addresses=LO, lan_interfaces=LO)
    secret = os.urandom(32)
    code = ShortCode.generate(os.urandom)
    ids = flows.make_invitation(name="p", secret=secret, code=code).discovery_ids
    stamps: dict[FlowStep, float] = {}

    def note(event: FlowEvent) -> None:
        stamps.setdefault(event.step, time.perf_counter())

    async def approve(_: Any) -> bool:
        return True

    async def enroller(token: bytes, url: str, progress: Any) -> EnrolResult:
        enrolment = Enrolment("bench-device", "8999001000000000012", "LPA:1$x$y", None)
        return EnrolResult(enrolment, "bench", JOINER_EID)

    async def stream(discovery_id: bytes, hint: tuple[str, int] | None) -> Any:
        return await flows.connect(config, discovery_id, timeout=10.0, direct=hint)

    async with flows.listen(config, ids) as listener:
        invitation = flows.make_invitation(
            name="Ana's phone", secret=secret, code=code, lan_hint=listener.lan_hint
        )
        if by_code:  # the code path needs the nameplate's zeroconf registration
            await listener.ready()
        started = time.perf_counter()
        await asyncio.gather(
            flows.offer_join(
                listener,
                invitation=invitation,
                local=LocalDevice("Ana's phone", DeviceClass.PHONE, PRIMARY_EID),
                authority=PrimaryAuthority(key, "bench", "https://operator.example"),
                approve=approve,
            ),
            flows.join(
                stream,
                target=str(code) if by_code else invitation.uri,
                local=LocalDevice("Ana's laptop", DeviceClass.LAPTOP, JOINER_EID),
                enroller=enroller,
                progress=note,
            ),
        )
        ended = time.perf_counter()
    return {
        "discovery": stamps[FlowStep.CONNECTED] - started,
        "pairing": stamps[FlowStep.PAIRED] - stamps[FlowStep.CONNECTED],
        "handover": stamps[FlowStep.TOKEN_RECEIVED] - stamps[FlowStep.CONNECTED],
        "whole": ended - started,
    }


def report(name: str, runs: list[dict[str, float]], crypto_s: float) -> None:
    def ms(key: str) -> tuple[float, float]:
        values = [r[key] * 1e3 for r in runs]
        return statistics.median(values), max(values)

    print(f"{name} ({len(runs)} runs; median / worst, ms)")
    for key, label in (
        ("discovery", "discovery (find + TCP connect)"),
        ("pairing", "pairing (open stream -> channel up)"),
        ("handover", "pairing + token hand-over"),
        ("whole", "whole exchange (to both byes)"),
    ):
        median, worst = ms(key)
        print(f"  {label:38} {median:8.2f} {worst:8.2f}")
    median, worst = ms("handover")
    overhead = median - crypto_s * 1e3
    print(f"  {'crypto in it (measured alone)':38} {crypto_s * 1e3:8.2f}")
    verdict = "within" if overhead <= GOAL_MS else "OVER"
    print(
        f"  {'protocol overhead (hand-over - crypto)':38} {overhead:8.2f} "
        f"{worst - crypto_s * 1e3:8.2f}  -> {verdict} the {GOAL_MS:.0f} ms goal"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="pairings per path")
    args = parser.parse_args()
    floor = crypto_floor()
    print("crypto, both sides, measured alone (best of 5, ms)")
    for name, seconds in floor.items():
        print(f"  {name:38} {seconds * 1e3:8.3f}")
    key = ec.generate_private_key(ec.SECP256R1())
    asyncio.run(one_run(key, by_code=False))  # warm-up: imports, first TLS-free connections
    qr = [asyncio.run(one_run(key, by_code=False)) for _ in range(args.runs)]
    report("QR path over loopback LAN (direct hint)", qr, floor["noise"] + floor["token"])
    code = [asyncio.run(one_run(key, by_code=True)) for _ in range(args.runs)]
    report(
        "short-code path over loopback LAN (zeroconf)",
        code,
        floor["pake"] + floor["noise"] + floor["token"],
    )


if __name__ == "__main__":
    main()
