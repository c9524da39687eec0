"""Benchmark: companion reconnection and ES10 relay round trips, sans-IO (issue H).

Two :class:`~rspfed.transfer.PairingConnection` s (the watch offerer, the
phone joiner) shuttled in one process, no transport:

* **reconnect**: ``paired=`` Noise NNpsk0 handshake and both hellos, both sides;
* **companion**: ``companionRequest`` / ``companionInfo``;
* **relay round trip** per request size: the phone seals an ``es10Request``,
  the watch opens and decodes it and seals an ``es10Response`` of the same
  size, the phone opens and decodes it (the eUICC's own time excluded).

Both sides share one CPU.  Run: ``python benchmarks/companion_relay_bench.py
[--runs N]``.  Prints medians; no assertions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.federation.token import DeviceClass
from rspfed.lpa.download import DeviceInfo
from rspfed.transfer import (
    NEED_DATA,
    Capability,
    CompanionInfo,
    CompanionRequest,
    DeviceRole,
    Es10Request,
    Es10Response,
    Event,
    Hello,
    PairedKey,
    PairingConnection,
    Role,
)

WATCH = Hello(
    "watch",
    DeviceClass.WATCH,
    DeviceRole.COMPANION,
    "89001012012341234012345678901224",
    {Capability.COMPANION},
)
PHONE = Hello(
    "phone",
    DeviceClass.PHONE,
    DeviceRole.PRIMARY,
    "89049032123451234512345678901235",
    {Capability.COMPANION},
)
INFO = CompanionInfo("watch", WATCH.eid, asn1.encode(rsp.DeviceInfo(DeviceInfo().to_asn1())))


def _move(a: PairingConnection, b: PairingConnection) -> list[Event]:
    data = a.data_to_send()
    if data:
        b.receive_data(data)
    events: list[Event] = []
    while True:
        e = b.next_event()
        if e is NEED_DATA:
            return events
        events.append(e)


def _reconnect(key: PairedKey) -> tuple[PairingConnection, PairingConnection]:
    w = PairingConnection(Role.OFFERER, local=WATCH, rand=os.urandom, paired=key)
    p = PairingConnection(Role.JOINER, local=PHONE, rand=os.urandom, paired=key)
    _move(p, w)
    _move(w, p)
    _move(p, w)
    return w, p


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    runs = parser.parse_args().runs
    key = PairedKey.from_psk(os.urandom(32))
    t_rec: list[float] = []
    t_comp: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        w, p = _reconnect(key)
        t1 = time.perf_counter()
        p.send(CompanionRequest())
        _move(p, w)
        w.send(INFO)
        _move(w, p)
        t_comp.append(time.perf_counter() - t1)
        t_rec.append(t1 - t0)
    print(f"reconnect (handshake + hellos, both sides): {statistics.median(t_rec) * 1e3:.2f} ms")
    print(f"companion request + info:                   {statistics.median(t_comp) * 1e3:.2f} ms")
    for size in (16, 1024, 16 * 1024, 60 * 1024):
        payload = os.urandom(size)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            p.send(Es10Request(payload))
            _move(p, w)
            w.send(Es10Response(payload))
            _move(w, p)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(f"relay round trip, {size:>6} octets each way:  {med * 1e6:8.0f} us")


if __name__ == "__main__":
    main()
