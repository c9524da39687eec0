"""Benchmark: a device change on the operator side, in process.

The operator core, the SM-DP+ core, the network's SQLite subscriber store
and real software eUICCs (files in a temporary directory), no sockets.  Per
change, the time of each step: the order (``Operator.device_change``), the
new eUICC's download, the sync that sees the install (the new IMSI
provisioned pending), the enable + notification, the sync that switches
(one subscriber-store transaction + one operator-store transaction), the
new key's EAP-AKA' registration, the old profile's delete + notification and
the completing sync.  Then ``Auc.switch`` alone on SQLite, and an idle
``Operator.sync()`` with a number of open changes waiting.

Run: ``python benchmarks/device_change_bench.py [--changes N]``.  Prints
milliseconds (median over the changes); no assertions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rspfed.network import Auc, SqliteSubscriberStore, Subscriber, SubscriberState
from tests.federation.change_world import (
    Faults,
    build_base,
    delete_and_notify,
    download_only,
    enable_and_notify,
    open_copy,
)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=10, help="changes to time")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="change-bench-"))
    base = build_base(tmp)
    steps: dict[str, list[float]] = {}
    for n in range(args.changes):
        dw = open_copy(base, tmp / f"run{n}", Faults())
        caller = dw.caller("phone")
        new = dw.phone("newphone")
        old = dw.phone("phone")
        ctx: dict[str, str] = {}

        def order() -> None:
            o = dw.operator.device_change(caller, new.eid)  # noqa: B023
            ctx.update(id=o.change.id, secret=o.secret, code=o.activation_code)  # noqa: B023

        def download() -> None:
            ctx["iccid"] = download_only(dw, new, ctx["code"])  # noqa: B023

        plan = [
            ("order (ES2+ download+confirm, record)", order),
            ("download on the new eUICC", download),
            ("sync: installed, new IMSI pending", dw.operator.sync),
            ("enable + notification", lambda: enable_and_notify(dw, new, ctx["iccid"])),  # noqa: B023
            ("sync: switch (network + operator)", dw.operator.sync),
            ("EAP-AKA' registration of the new key", lambda: dw.view().register(new)),  # noqa: B023
            (
                "old profile delete + notification",
                lambda: delete_and_notify(dw, old, old.iccid or ""),  # noqa: B023
            ),
            ("sync: completed", dw.operator.sync),
        ]
        for name, fn in plan:
            start = time.perf_counter()
            fn()
            steps.setdefault(name, []).append(time.perf_counter() - start)
        state = dw.operator.device_change_status(ctx["id"], ctx["secret"]).state.value
        assert state == "completed", state
        dw.close()
    print(f"device change, operator side, in process (median of {args.changes}):")
    total = 0.0
    for name, values in steps.items():
        median = statistics.median(values)
        total += median
        print(f"  {name:42s} {_ms(median)}")
    print(f"  {'total':42s} {_ms(total)}")

    store = SqliteSubscriberStore(tmp / "switch.sqlite")
    auc = Auc(store, rand=os.urandom)
    k = bytes(16)
    rounds = 200
    for i in range(rounds):
        auc.provision(Subscriber(f"00101{i:010d}", k=k))
        auc.provision(Subscriber(f"00102{i:010d}", k=k, state=SubscriberState.PENDING))
    start = time.perf_counter()
    for i in range(rounds):
        auc.switch(f"00101{i:010d}", f"00102{i:010d}")
    per = (time.perf_counter() - start) / rounds
    print(f"Auc.switch on SQLite (WAL, one transaction): {_ms(per)}")

    dw = open_copy(base, tmp / "idle", Faults())
    caller = dw.caller("phone")
    dw.operator.device_change(caller, dw.phone("newphone").eid)
    start = time.perf_counter()
    for _ in range(100):
        dw.operator.sync()
    per = (time.perf_counter() - start) / 100
    print(f"Operator.sync() with one open change waiting: {_ms(per)}")
    dw.close()


if __name__ == "__main__":
    main()
