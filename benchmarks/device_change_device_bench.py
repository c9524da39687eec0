"""Benchmark: a device change on the device side (rspfed.transfer.change), in process.

The operator core, the SM-DP+ core, software eUICCs and device stores on disk
(tests/transfer/change_env.py: the same world the tests use; a directory in
/dev/shm when there is one, so the figures are the code's, not the disk's
fsyncs), no sockets.  Per change of the primary to a fresh phone: the old
device's request (order + journal), the new device's ``new_apply_order``
(download, enable, notifications, the switch, EAP-AKA' registration), the old
device's ``old_finish`` (delete, notification, complete) and ``new_finish``.
Then the journal alone: ``DeviceStore.set_change`` without and with a
passphrase (scrypt sealing), and ``change()`` reads.

Run: ``python benchmarks/device_change_device_bench.py [--changes N]``.
Prints milliseconds (median); no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rspfed.federation.device import ChangeJournal, DeviceStore
from rspfed.transfer import change as ch
from tests.transfer.change_env import OPERATOR_URL, ChangeEnv, build_base, fast_dir


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.2f} ms"


def bench_changes(n: int) -> None:
    where = fast_dir(Path(tempfile.mkdtemp()))
    try:
        base = build_base(where / "b")
        steps: dict[str, list[float]] = {
            k: [] for k in ("request", "apply", "old_finish", "new_finish", "total")
        }
        for i in range(n):
            env = ChangeEnv.open(base, where / f"run-{i}")
            old, new, op, clock = env["phone"], env["newphone"], env.operator, env.clock
            start = time.perf_counter()
            t = time.perf_counter()
            order = asyncio.run(ch.old_request_change(op, old.store, new_eid=new.eid, now=clock))
            ticket = ch.ticket_from_order(order, OPERATOR_URL, "primary")
            ch.old_order_sent(old.store, now=clock)
            steps["request"].append(time.perf_counter() - t)
            t = time.perf_counter()
            asyncio.run(
                ch.new_apply_order(
                    op, new.store, new.lpa, new.card, ticket, now=clock, es9=env.es9, wait=0
                )
            )
            steps["apply"].append(time.perf_counter() - t)
            t = time.perf_counter()
            asyncio.run(ch.old_finish(op, old.store, old.lpa, now=clock, es9=env.es9, wait=0))
            steps["old_finish"].append(time.perf_counter() - t)
            t = time.perf_counter()
            ch.new_finish(new.store, now=clock)
            steps["new_finish"].append(time.perf_counter() - t)
            steps["total"].append(time.perf_counter() - start)
            env.close()
        print(f"device change of the primary, {n} changes (median):")
        for name, samples in steps.items():
            print(f"  {name:<12}{_ms(samples)}")
    finally:
        shutil.rmtree(where, ignore_errors=True)


def bench_journal(n: int) -> None:
    where = fast_dir(Path(tempfile.mkdtemp()))
    now = datetime.now(UTC)
    journal = ChangeJournal(
        side="new",
        change_id="c-1",
        phase="order_received",
        secret="s" * 24,
        operator_url=OPERATOR_URL,
        created=now,
        updated=now,
        activation_code="1$smdp.example$ABC",
    )
    try:
        for label, passphrase in (("plain", None), ("passphrase", b"correct horse")):
            with DeviceStore.create(where / f"{label}.sqlite", passphrase=passphrase) as store:
                writes, reads = [], []
                for _ in range(n):
                    t = time.perf_counter()
                    store.set_change(journal)
                    writes.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    store.change()
                    reads.append(time.perf_counter() - t)
            print(f"journal ({label}): set_change {_ms(writes)}, change() {_ms(reads)}")
    finally:
        shutil.rmtree(where, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=10)
    parser.add_argument("--journal", type=int, default=50)
    args = parser.parse_args()
    bench_changes(args.changes)
    bench_journal(args.journal)


if __name__ == "__main__":
    main()
