"""Benchmark: federation token issue (sign) and verify per second, and URI formatting/parsing.

Measured with one P-256 key: ``issue_token`` (build, DER encode, ECDSA sign,
re-encode), ``verify_token`` (strict DER decode, key id, ECDSA verify, window
and EID checks), ``parse_token`` (decode only), ``token_uri`` and
``token_from_uri``.  Then the end-to-end join of issue D (token to an
installed, enabled and attached linked profile, over HTTPS on loopback) and
the operator's request rates, measured by ``operator_http_bench.py`` (run
here unless ``--no-join``).

Run: ``python benchmarks/federation_bench.py [--quick] [--joins N] [--no-join]``.
Prints microseconds per operation and operations per second (best of several
repeats); no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.federation import (
    DeviceClass,
    Service,
    issue_token,
    parse_token,
    token_from_uri,
    token_uri,
    verify_token,
)

EID = "89049032123451234512345678901235"
NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def _best(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--joins", type=int, default=8, help="laptops joining over HTTPS")
    parser.add_argument("--no-join", action="store_true", help="token figures only")
    args = parser.parse_args()
    number, repeat = (200, 3) if args.quick else (2000, 5)
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()

    def issue() -> bytes:
        return issue_token(
            primary_key=key,
            subscription_id="sub-0001",
            eid=EID,
            device_class=DeviceClass.LAPTOP,
            services={Service.DATA, Service.SMS},
            quota=5 * 10**9,
            now=NOW,
            rand=os.urandom,
        )

    der = issue()
    uri = token_uri(der)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("issue_token (sign)", issue),
        (
            "verify_token",
            lambda: verify_token(der, primary_public_key=public, now=NOW, expected_eid=EID),
        ),
        ("parse_token (decode only)", lambda: parse_token(der)),
        ("token_uri", lambda: token_uri(der)),
        ("token_from_uri", lambda: token_from_uri(uri)),
    ]
    print(f"token: {len(der)} octets DER, URI {len(uri)} characters")
    for name, fn in cases:
        seconds = _best(fn, number, repeat)
        print(f"{name:28s} {seconds * 1e6:9.1f} µs   {1 / seconds:10.0f} /s")
    if not args.no_join:
        print()
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from operator_http_bench import main as join_bench

        asyncio.run(join_bench(2 if args.quick else args.joins))


if __name__ == "__main__":
    main()
