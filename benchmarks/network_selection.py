"""Figures for automatic network selection: ranking scans, the selector, the EF codecs.

Run: ``python benchmarks/network_selection.py``.  Prints microseconds per call.
"""

from __future__ import annotations

import random
import timeit
from datetime import UTC, datetime, timedelta

from rspfed.network.plmn import decode_plmn_wact_list, encode_plmn_wact_list
from rspfed.network.radio import Cell, RadioEnvironment, Rat, VisibleNetwork
from rspfed.network.selection import NetworkSelector, PlmnLists, select_network


def main() -> None:
    rng = random.Random(1)
    plmns = [f"{rng.randrange(200, 800):03d}{rng.randrange(0, 100):02d}" for _ in range(200)]
    lists = PlmnLists(
        plmns[0],
        user=tuple((p, frozenset({Rat.EUTRAN})) for p in plmns[1:35]),
        operator=tuple((p, frozenset(Rat)) for p in plmns[35:85]),
        forbidden=tuple(plmns[85:89]),
        hpplmn_period=timedelta(minutes=6),
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for size in (10, 100, 1000):
        scan = [
            VisibleNetwork(rng.choice(plmns), rng.choice(list(Rat)), rng.randrange(-140, -40), "")
            for _ in range(size)
        ]
        n = max(10, 20000 // size)

        def run(scan: list[VisibleNetwork] = scan) -> None:
            select_network(lists, scan)

        t = timeit.timeit(run, number=n) / n
        print(f"select_network, {size:4} visible networks: {t * 1e6:9.1f} us")
    cells = tuple(
        Cell(
            p,
            Rat.EUTRAN,
            "",
            "",
            tuple((now + timedelta(seconds=i), -90 - i % 20) for i in range(20)),
        )
        for p in plmns[:100]
    )
    env = RadioEnvironment(cells)
    t = timeit.timeit(lambda: env.scan(now + timedelta(seconds=10)), number=200) / 200
    print(f"RadioEnvironment.scan, 100 cells x 20 steps:   {t * 1e6:9.1f} us")
    selector = NetworkSelector(lists)
    scan = env.scan(now + timedelta(seconds=10))
    tick = [now + timedelta(seconds=i) for i in range(2000)]
    t = timeit.timeit(lambda: [selector.on_scan(scan, at) for at in tick], number=1) / len(tick)
    print(f"NetworkSelector.on_scan (100 visible):        {t * 1e6:9.1f} us")
    blob = encode_plmn_wact_list(list(lists.operator), 250)
    t = timeit.timeit(lambda: decode_plmn_wact_list(blob), number=2000) / 2000
    print(f"decode EF.OPLMNwAcT (50 entries):              {t * 1e6:9.1f} us")


if __name__ == "__main__":
    main()
