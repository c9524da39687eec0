"""Benchmark: the simulated network core (rspfed.network).

Prints per-operation times (median of several runs):

* ``generate_vector`` with the in-memory store and with SQLite (one
  transaction per vector, WAL),
* one ``attach`` against the eUICC's USIM class (no APDUs),
* ``check_service``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rspfed.network import (
    Auc,
    MemorySubscriberStore,
    Service,
    SqliteSubscriberStore,
    Subscriber,
    attach,
)
from tests.network.helpers import SoftUsim

IMSI = "001010000000001"
K = bytes(range(16))
OPC = bytes(range(16, 32))


def bench(name: str, fn: Callable[[], object], n: int = 500, runs: int = 5) -> None:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n)
    print(f"{name:40s} {statistics.median(times) * 1e6:9.1f} µs")


def main() -> None:
    mem = Auc(MemorySubscriberStore(), rand=os.urandom)
    mem.provision(Subscriber(IMSI, k=K, opc=OPC))
    bench("generate_vector (memory)", lambda: mem.generate_vector(IMSI))
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteSubscriberStore(Path(tmp) / "auc.db")
        disk = Auc(store, rand=os.urandom)
        disk.provision(Subscriber(IMSI, k=K, opc=OPC))
        bench("generate_vector (SQLite, WAL)", lambda: disk.generate_vector(IMSI), n=200)
        store.close()
    auc = Auc(MemorySubscriberStore(), rand=os.urandom)
    auc.provision(Subscriber(IMSI, k=K, opc=OPC))
    usim = SoftUsim(K, OPC)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    bench("attach (memory, soft USIM)", lambda: attach(auc, IMSI, usim, now=now))
    bench("check_service", lambda: auc.check_service(IMSI, Service.DATA), n=5000)


if __name__ == "__main__":
    main()
