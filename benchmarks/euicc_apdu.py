"""Benchmark: the software UICC front end, APDUs per second through ``Uicc.transmit``.

Measured on the demo card (``rspfed.euicc.uicc.demo_state``), one process:
READ BINARY (9 octets), SELECT with FCP, READ RECORD, a 600-byte applet
answer fetched through 61xx/GET RESPONSE (T=1 and T=0), VERIFY, and
AUTHENTICATE with the TS 34.108 test algorithm and with MILENAGE.

Run: ``python benchmarks/euicc_apdu.py [--quick]``.  Prints microseconds per
APDU (best of several repeats); no assertions.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

import attrs

from rspfed.euicc.apdu import CommandApdu, ResponseApdu
from rspfed.euicc.uicc import ISD_R_AID, USIM_AID, Transmission, Uicc, demo_state
from rspfed.euicc.usim import AkaAlgorithmId, AkaSpec

# TS 35.208 test set 1
K = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
RAND = bytes.fromhex("23553cbe9637a89d218ae64dae47bf35")
AUTN_MILENAGE = bytes.fromhex("55f328b43577b9b94a9ffac354dfafb3")
# TS 34.108 worked example
AUTN_TEST = bytes.fromhex("bd9232ae9a08800023543ebd92132e9a")
AUTH = bytes.fromhex("008800812210")  # AUTHENTICATE, 3G context, Lc 34, then 10 RAND 10 AUTN


class Payload:
    """An applet answering every command with 600 octets."""

    aid = ISD_R_AID

    def select(self, channel: int, command: CommandApdu) -> ResponseApdu:
        return ResponseApdu()

    def deselect(self, channel: int) -> None:
        pass

    def process(self, channel: int, command: CommandApdu) -> ResponseApdu:
        return ResponseApdu(bytes(600))

    def reset(self) -> None:
        pass


def card(transmission: Transmission = Transmission.T1, aka: AkaSpec | None = None) -> Uicc:
    state = demo_state()
    if aka is not None:
        state = attrs.evolve(state, aka=(aka,))
    c = Uicc(state, transmission=transmission, applets=[Payload()])
    c.transmit(bytes.fromhex("00A4040C10") + USIM_AID)
    c.transmit(bytes.fromhex("002000010831323334FFFFFFFF"))
    return c


def long_answer(c: Uicc, t0: bool) -> Callable[[], None]:
    # STORE DATA, one block (case 3 on T=0, case 4 with Le 00 on T=1), on channel 1
    store = bytes.fromhex("81E291000100") + (b"" if t0 else b"\x00")

    def run() -> None:
        raw = c.transmit(store)
        while raw[-2] in (0x61, 0x6C):
            le = raw[-1] if raw[-2] == 0x6C else 0
            raw = c.transmit(bytes((0x01, 0xC0, 0, 0, le)))
        if raw[-2:] != b"\x90\x00":
            raise SystemExit("unexpected status word")

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    number = 2000 if args.quick else 20000
    repeat = 3 if args.quick else 5

    t1 = card()
    t1.transmit(bytes.fromhex("00A4000C026F07"))
    rec = card()
    rec.transmit(bytes.fromhex("00A4080C022F00"))
    test_alg = card(
        aka=AkaSpec(USIM_AID, AkaAlgorithmId.USIM_TEST_ALGORITHM, bytes(range(16)), sqn_check=False)
    )
    milenage = card(aka=AkaSpec(USIM_AID, AkaAlgorithmId.MILENAGE, K, OPC, sqn_check=False))
    chans: dict[Transmission, Uicc] = {}
    for t in Transmission:
        c = card(t)
        c.transmit(bytes.fromhex("0070000001"))
        c.transmit(bytes.fromhex("01A4040C10") + ISD_R_AID)
        chans[t] = c

    cases: list[tuple[str, Callable[[], object], int]] = [
        ("READ BINARY 9 octets", lambda: t1.transmit(bytes.fromhex("00B0000009")), 1),
        ("SELECT EF with FCP (Le 00)", lambda: t1.transmit(bytes.fromhex("00A40004026F0700")), 1),
        ("READ RECORD", lambda: rec.transmit(bytes.fromhex("00B2010400")), 1),
        ("VERIFY PIN1", lambda: t1.transmit(bytes.fromhex("002000010831323334FFFFFFFF")), 1),
        (
            "AUTHENTICATE test algorithm",
            lambda: test_alg.transmit(AUTH + RAND + b"\x10" + AUTN_TEST + b"\x00"),
            1,
        ),
        (
            "AUTHENTICATE MILENAGE",
            lambda: milenage.transmit(AUTH + RAND + b"\x10" + AUTN_MILENAGE + b"\x00"),
            1,
        ),
        (
            "600-octet answer, T=1 (1 + 2 GET RESPONSE)",
            long_answer(chans[Transmission.T1], False),
            3,
        ),
        (
            "600-octet answer, T=0 (1 + 3 GET RESPONSE)",
            long_answer(chans[Transmission.T0], True),
            4,
        ),
    ]
    for name, fn, _ in cases:  # every case must succeed
        out = fn()
        if isinstance(out, bytes) and out[-2:] != b"\x90\x00":
            raise SystemExit(f"{name}: status {out[-2:].hex()}")
    print(f"{'operation':48} {'us/op':>9} {'APDU/s':>9}")
    for name, fn, apdus in cases:
        best = min(timeit.repeat(fn, number=number, repeat=repeat)) / number
        print(f"{name:48} {best * 1e6:9.1f} {apdus / best:9.0f}")


if __name__ == "__main__":
    main()
