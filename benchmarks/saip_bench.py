"""Benchmark: SAIP installation (eUICC side) and personalisation (SM-DP+ side).

Measured on the GSMA TS.48 test packages in ``rspfed/data/ts48``:

* install: ``asn1.decode_profile_elements`` (strict DER) and
  ``saip.install.install_elements`` (package -> file system, PINs, AKA), per
  package and in total (what ``LoadBoundProfilePackage`` pays after
  unprotecting the BPP);
* personalise, reference path: ``personalise`` (decode, set the fields,
  encode) per instance;
* personalise, fast path: ``PreparedTemplate.personalise`` (byte-slice
  substitution at precomputed offsets) per instance, plus the one-off
  ``PreparedTemplate`` preparation.

Run: ``python benchmarks/saip_bench.py [--quick]``.  Prints milliseconds or
microseconds per operation (best of several repeats); no assertions.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rspfed import asn1
from rspfed.saip.install import install_elements
from rspfed.saip.personalise import Personalisation, PreparedTemplate, personalise

TS48 = Path(__file__).resolve().parent.parent / "rspfed" / "data" / "ts48"


def best(stmt: Callable[[], object], number: int, repeat: int) -> float:
    """Seconds per call, best of ``repeat`` runs of ``number`` calls."""
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    n, r = (3, 2) if args.quick else (20, 5)
    packages = sorted(TS48.glob("*.der"))
    print(f"install ({len(packages)} TS.48 packages), ms per package:")
    print(f"{'package':36} {'octets':>7} {'decode':>8} {'install':>8} {'total':>8}")
    for path in packages if not args.quick else packages[:3]:
        data = path.read_bytes()
        pes = asn1.decode_profile_elements(data)
        d = best(partial(asn1.decode_profile_elements, data), n, r) * 1e3
        i = best(partial(install_elements, pes), n, r) * 1e3
        print(f"{path.stem:36} {len(data):7} {d:8.2f} {i:8.2f} {d + i:8.2f}")

    template = (TS48 / "TS48v5_SAIP2.3_NoBERTLV.der").read_bytes()
    values = Personalisation(
        iccid="8944501234567890123",
        imsi="234150999999999",
        k=bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc"),
        opc=bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf"),
        algorithm="milenage",
        pin1=b"1234",
        pin2=b"5678",
        puk1=b"12345678",
        adm1=b"87654321",
        files={"ef-hpplmn": b"\x05"},
    )
    prep = best(lambda: PreparedTemplate(template, files=("ef-hpplmn",)), 1, 2 if args.quick else 3)
    prepared = PreparedTemplate(template, files=("ef-hpplmn",))
    slow = best(lambda: personalise(template, values), max(1, n // 4), r)
    fast = best(lambda: prepared.personalise(values), n * 100, r)
    assert prepared.personalise(values) == personalise(template, values)
    print("personalise (TS48v5_SAIP2.3_NoBERTLV, ICCID+IMSI+K+OPc+algorithm+4 codes+1 EF):")
    print(f"  reference (decode, modify, encode): {slow * 1e6:10.1f} µs per instance")
    print(f"  PreparedTemplate.personalise:       {fast * 1e6:10.1f} µs per instance")
    print(f"  PreparedTemplate preparation:       {prep * 1e3:10.1f} ms once per template")
    print(f"  speed-up: {slow / fast:.0f}x")


if __name__ == "__main__":
    main()
