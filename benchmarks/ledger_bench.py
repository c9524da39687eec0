"""Benchmark: the usage ledger (issue E item 9).

Sections (each a function ``(args) -> None`` in :data:`SECTIONS`; run all, or
some with ``--only NAME``; a new section is one more function appended there):

``merge``
    1,000,000 network usage records from 10,000 devices (cumulative counters
    from two gateways, a gateway restart, roaming on some devices, 10 %
    redelivered), shuffled, merged into one ``LedgerState`` on one core.  Merge
    only: ``merge_counters`` over prepared ``(key, octets)`` pairs (goal <= 10
    s), then ``add_records`` over prepared ``UsageRecord`` objects.  Then the
    totals (``period_usage``), and the ratio of recomputing from scratch
    (a fresh state from every record, then the totals) to the incremental
    path (merge one new gateway report of 100 records, then the totals).
``codec``
    The merged state's DER ``LedgerState``: size, ``encode_state`` and
    ``decode_state`` time; a full-state ``merge`` into a replica holding half.
``ingest``
    Signed device batches of 100 records (``sign_device_batch``), checked and
    merged with ``ingest_device_batch``: one signature check per batch;
    signing is reported separately.

``sync_latency``
    The operator's pool service over HTTPS on loopback: ingest rate, and the
    time from an ingest until every online device's replica shows it.

Run: ``python benchmarks/ledger_bench.py [--quick] [--only merge,codec,ingest,sync_latency]``.
Single-threaded (one core).  Prints figures; no assertions.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.federation.ledger import (
    CounterKey,
    LedgerState,
    SourceKind,
    UsageRecord,
    decode_state,
    encode_state,
    ingest_device_batch,
    parse_device_batch,
    period_usage,
    sign_device_batch,
)

SUB = "sub-bench"
PERIOD = 1_764_000_000
PLMNS = ("", "26201", "310260")
T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _best(fn: Callable[[], object], repeat: int) -> float:
    return min(_timed(fn)[0] for _ in range(repeat))


def _iccid(device: int) -> str:
    return f"894900{device:013d}"


def network_pairs(devices: int, records: int, seed: int = 1) -> list[tuple[CounterKey, int]]:
    """``records`` cumulative network reports over ``devices`` profiles, shuffled.

    Each device is metered by two gateways (reports alternate); gateway
    ``pgw-2`` restarts halfway (counter epoch 1); every tenth device roams
    (its reports carry a visited PLMN); 10 % of the reports are redelivered.
    """
    rng = random.Random(seed)
    fresh = records - records // 10
    per_device = max(1, fresh // devices)
    out: list[tuple[CounterKey, int]] = []
    kind = int(SourceKind.NETWORK)
    for device in range(devices):
        iccid = _iccid(device)
        plmn = PLMNS[1 + device % 2] if device % 10 == 0 else ""
        cumulative = [0, 0, 0]  # pgw-1, pgw-2 epoch 0, pgw-2 epoch 1
        for n in range(per_device):
            octets = rng.randrange(1, 5_000_000)
            if n % 2 == 0:
                cumulative[0] += octets
                out.append(((kind, "pgw-1", iccid, PERIOD, 0, plmn), cumulative[0]))
            else:
                slot = 1 if n < per_device // 2 else 2
                cumulative[slot] += octets
                key = (kind, "pgw-2", iccid, PERIOD, slot - 1, plmn)
                out.append((key, cumulative[slot]))
    out.extend(rng.choices(out, k=records - len(out)))
    rng.shuffle(out)
    return out


def _true_total(pairs: list[tuple[CounterKey, int]]) -> int:
    best: dict[CounterKey, int] = {}
    for key, value in pairs:
        if value > best.get(key, -1):
            best[key] = value
    return sum(best.values())


# -- sections ---------------------------------------------------------------------


def merge_section(args: argparse.Namespace) -> None:
    """Merge 1 M records from 10 000 devices; the ratio to recomputing from scratch."""
    devices, records = (1_000, 100_000) if args.quick else (10_000, 1_000_000)
    repeat = 1 if args.quick else 3
    print(f"== merge: {records:,} network records from {devices:,} devices (one core)")
    pairs = network_pairs(devices, records)

    def merge_pairs() -> LedgerState:
        state = LedgerState(SUB)
        state.merge_counters(pairs)
        return state

    seconds = _best(merge_pairs, repeat)
    state = merge_pairs()
    print(
        f"merge_counters   {seconds:8.3f} s   {records / seconds:12,.0f} records/s"
        f"   ({len(state.counters):,} counters; goal <= 10 s for 1 M)"
    )
    objects = [UsageRecord.from_counter(k, v) for k, v in pairs]
    seconds_records = _best(lambda: LedgerState(SUB).add_records(objects), repeat)
    print(
        f"add_records      {seconds_records:8.3f} s   {records / seconds_records:12,.0f}"
        " records/s   (prepared UsageRecord objects; building them is not timed)"
    )
    totals = _best(lambda: period_usage(state, PERIOD), 5)
    usage = period_usage(state, PERIOD)
    assert_total = _true_total(pairs)
    print(
        f"period_usage     {totals * 1e3:8.2f} ms  (totals over {len(state.counters):,} counters;"
        f" pool {usage.total:,} octets {'=' if usage.total == assert_total else '!='} the true"
        " total)"
    )

    def scratch() -> int:
        fresh = LedgerState(SUB)
        fresh.merge_counters(pairs)
        return period_usage(fresh, PERIOD).total

    rng = random.Random(2)
    report = [
        ((0, "pgw-1", _iccid(rng.randrange(devices)), PERIOD, 0, ""), 10**15 + i)
        for i in range(100)
    ]

    def incremental() -> int:
        state.merge_counters(report)
        return period_usage(state, PERIOD).total

    seconds_scratch = _best(scratch, repeat)
    seconds_incremental = _best(incremental, 5)
    print(f"from scratch     {seconds_scratch:8.3f} s   (a fresh state from every record + totals)")
    print(
        f"incremental      {seconds_incremental * 1e3:8.2f} ms  (merge 100 new records + totals)"
        f"   ratio scratch/incremental {seconds_scratch / seconds_incremental:,.0f}x"
    )
    print(
        f"merge only       {seconds / records * 1e9:8.0f} ns per record;"
        f" 100 records {seconds / records * 100 * 1e6:.1f} µs"
    )
    args.merged_state = state


def codec_section(args: argparse.Namespace) -> None:
    """Encode and decode the merged state; merge a full state into a half replica."""
    state: LedgerState | None = getattr(args, "merged_state", None)
    if state is None:
        state = LedgerState(SUB)
        state.merge_counters(
            network_pairs(1_000, 100_000) if args.quick else network_pairs(10_000, 1_000_000)
        )
    repeat = 1 if args.quick else 3
    print(f"== codec: LedgerState of {len(state.counters):,} counters")
    seconds_encode, der = _timed(lambda: encode_state(state))  # once: seconds for 30 000
    seconds_decode = _best(lambda: decode_state(der), repeat)
    n = len(state.counters)
    print(f"size             {len(der):12,} octets   ({len(der) / n:.1f} per counter)")
    print(f"encode_state     {seconds_encode:8.3f} s   {n / seconds_encode:12,.0f} counters/s")
    print(f"decode_state     {seconds_decode:8.3f} s   {n / seconds_decode:12,.0f} counters/s")
    delta = LedgerState(SUB, dict(list(state.counters.items())[:100]))
    delta_der = encode_state(delta)
    seconds_delta_encode = _best(lambda: encode_state(delta), 5)
    seconds_delta_decode = _best(lambda: decode_state(delta_der), 5)
    print(
        f"delta of 100     {len(delta_der):12,} octets   encode"
        f" {seconds_delta_encode * 1e3:.2f} ms, decode {seconds_delta_decode * 1e3:.2f} ms"
        "   (a typical sync message)"
    )
    half = LedgerState(SUB, dict(list(state.counters.items())[::2]))

    def full_merge() -> LedgerState:
        replica = half.copy()
        return replica.merge(state)

    seconds_merge = _best(full_merge, repeat)
    print(
        f"merge (state)    {seconds_merge:8.3f} s   (a replica holding every other counter"
        " catches up from the full state; copy included)"
    )


def _device_batches(
    key: ec.EllipticCurvePrivateKey, batches: int, per_batch: int
) -> Iterator[list[UsageRecord]]:
    rng = random.Random(3)
    iccid = _iccid(1)
    cumulative = 0
    for b in range(batches):
        out = []
        for n in range(per_batch):
            cumulative += rng.randrange(1, 5_000_000)
            # one counter per (counter epoch, PLMN): a fresh counter each record
            out.append(
                UsageRecord(
                    SourceKind.DEVICE,
                    "dev-1",
                    iccid,
                    PERIOD,
                    b * per_batch + n,
                    cumulative,
                    PLMNS[n % 3],
                )
            )
        yield out


def ingest_section(args: argparse.Namespace) -> None:
    """Signed device batches of 100 records: verify once per batch, then merge."""
    batches = 100 if args.quick else args.batches
    per_batch = 100
    key = ec.derive_private_key(0xC0FFEE, ec.SECP256R1())
    public = key.public_key()
    print(f"== ingest: {batches:,} signed device batches of {per_batch} records")
    records = list(_device_batches(key, batches, per_batch))
    seconds_sign, signed = _timed(
        lambda: [
            sign_device_batch(
                device_key=key,
                subscription_id=SUB,
                device_id="dev-1",
                sequence=i + 1,
                records=batch,
            )
            for i, batch in enumerate(records)
        ]
    )
    size = sum(len(d) for d in signed) / len(signed)
    print(
        f"sign             {seconds_sign / batches * 1e3:8.3f} ms per batch"
        f"   ({size:,.0f} octets per batch; device side, not part of ingest)"
    )
    iccids = {_iccid(1)}

    def ingest() -> LedgerState:
        state = LedgerState(SUB)
        last = 0
        for der in signed:
            batch, _ = ingest_device_batch(
                state,
                der,
                device_public_key=public,
                device_id="dev-1",
                iccids=iccids,
                after_sequence=last,
            )
            last = batch.sequence
        return state

    seconds_parse = _best(lambda: [parse_device_batch(der) for der in signed], 1)
    seconds = _best(ingest, 1)
    total = batches * per_batch
    print(
        f"ingest           {seconds:8.3f} s   {batches / seconds:10,.0f} batches/s"
        f"   {total / seconds:12,.0f} records/s   ({seconds / batches * 1e3:.3f} ms per batch:"
        " decode, key id, one ECDSA verify, checks, merge)"
    )
    print(
        f"  of which decode {seconds_parse / batches * 1e3:7.3f} ms per batch"
        " (parse_device_batch alone: strict DER decode and record checks)"
    )


# --------------------------------------------------------------------------
# sync latency (the pool integration's section; rspfed.federation.pool)


def sync_latency_section(args: argparse.Namespace) -> None:
    """Ingest rate of the operator's pool service, and ingest -> visible on N devices.

    The operator service over HTTPS on loopback (``make_operator_app``, test
    PKI, in this process and on the same event loop as the clients: one
    core).  10 devices (3 with ``--quick``) of one subscription --
    made active with registered keys directly in the operator store, no eUICC
    needed for this figure -- each poll ``usage/state`` with ``since`` (the
    delta after their last version, :func:`rspfed.federation.client.sync_usage`)
    every 0.25 s.  Every round the gateway's record
    is ingested in-process; the latency is from the ingest's start until the
    last device's replica shows it.  Also: ingest rate of single-record
    ``PoolService.ingest_network_records`` calls (one SQLite transaction each,
    synchronous=FULL).
    """
    import asyncio
    import contextlib
    import socket
    import statistics
    import tempfile
    from datetime import UTC, datetime
    from pathlib import Path

    from aiohttp import web
    from cryptography.hazmat.primitives import serialization

    from rspfed.crypto.curves import Curve
    from rspfed.federation.client import OperatorClient, operator_tls_context, sync_usage
    from rspfed.federation.datadir import close_operator, init_operator_dir, open_operator
    from rspfed.federation.http import OPERATOR_KEY, POOL_KEY, make_operator_app
    from rspfed.federation.pool import PoolService
    from rspfed.federation.store import KeyRecord
    from rspfed.federation.token import DeviceClass, primary_key_id
    from rspfed.federation.types import Device, DeviceRole, DeviceState, Plan, Subscription
    from rspfed.pki.testpki import TestPki
    from rspfed.smdp.http import server_ssl_context

    devices = 3 if args.quick else 10
    rounds = 5 if args.quick else 20
    poll = 0.25

    def point(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    async def run() -> None:
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            pki = TestPki.create(tmp / "pki", curves=[Curve.NIST], now=datetime.now(UTC))
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            address = f"localhost:{sock.getsockname()[1]}"
            data = tmp / "op"
            init_operator_dir(data, pki=pki, address=address, curves=(Curve.NIST,))
            app = make_operator_app(
                lambda: open_operator(data), close=close_operator, deliver_progress=False
            )
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            await web.SockSite(runner, sock, ssl_context=server_ssl_context(data)).start()
            url = f"https://{address}"
            ci = pki.material(Curve.NIST).ci.public_bytes(serialization.Encoding.DER)
            ctx = operator_tls_context("localhost", trust=[ci])
            pool: PoolService = app[POOL_KEY]
            store = app[OPERATOR_KEY].store
            try:
                plan = Plan(pool_bytes=1 << 62, device_limit=64)
                now = datetime.now(UTC)
                subscription = Subscription("s-bench", "ts48", plan, now)
                store.put_subscription(subscription)
                keys: list[ec.EllipticCurvePrivateKey] = []
                iccids: list[str] = []
                for i in range(devices):
                    key = ec.generate_private_key(ec.SECP256R1())
                    iccid = f"890000000000{i:07d}"
                    device = Device(
                        id=f"d{i}",
                        subscription_id=subscription.id,
                        role=DeviceRole.PRIMARY if i == 0 else DeviceRole.SECONDARY,
                        device_class=DeviceClass.PHONE if i == 0 else DeviceClass.LAPTOP,
                        name=f"dev{i}",
                        state=DeviceState.ACTIVE,
                        eid=None,
                        iccid=iccid,
                        imsi=f"00101{i:010d}",
                        services=plan.services,
                        device_key=point(key),
                        device_key_id=primary_key_id(key.public_key()),
                    )
                    store.put_device(device)
                    store.put_key(
                        KeyRecord(
                            primary_key_id(key.public_key()),
                            point(key),
                            subscription.id,
                            device.id,
                            device.role,
                            True,
                            now,
                        )
                    )
                    keys.append(key)
                    iccids.append(iccid)

                # (a) ingest rate, in-process
                gateway = pool.gateway
                period = pool.period(subscription.id).id
                n = 200 if args.quick else 2000
                t0 = time.perf_counter()
                for j in range(n):
                    record = gateway.carry(iccids[j % devices], period, 1500).record
                    pool.ingest_network_records(subscription.id, [record])
                seconds = time.perf_counter() - t0
                print(f"== sync: the pool service ({devices} devices, HTTPS on loopback, one loop)")
                print(
                    f"ingest           {n / seconds:10,.0f} records/s   "
                    "(one record per call: load, merge, alerts, enforcement, one transaction)"
                )

                # (b) sync latency
                replicas = [LedgerState(subscription.id) for _ in range(devices)]
                versions = [0] * devices
                seen: list[asyncio.Event] = [asyncio.Event() for _ in range(devices)]
                target: list[tuple[CounterKey, int]] = []
                stop = asyncio.Event()

                async def follow(i: int, client: OperatorClient) -> None:
                    while not stop.is_set():
                        _, versions[i] = await sync_usage(
                            client, keys[i], replicas[i], since=versions[i]
                        )
                        if target and replicas[i].counters.get(target[0][0]) == target[0][1]:
                            seen[i].set()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), poll)

                clients = [OperatorClient(url, ssl_context=ctx) for _ in range(devices)]
                tasks = [
                    asyncio.get_running_loop().create_task(follow(i, c))
                    for i, c in enumerate(clients)
                ]
                await asyncio.sleep(2 * poll)  # every replica caught up with (a)
                latencies: list[float] = []
                for r in range(rounds):
                    for event in seen:
                        event.clear()
                    record = gateway.carry(iccids[r % devices], period, 1_000_000).record
                    target[:] = [(record.key, record.octets)]
                    start = time.perf_counter()
                    pool.ingest_network_records(subscription.id, [record])
                    await asyncio.gather(*(e.wait() for e in seen))
                    latencies.append(time.perf_counter() - start)
                    await asyncio.sleep(poll * (r % 3) / 3)  # vary the phase
                stop.set()
                await asyncio.gather(*tasks)
                converged = all(rep == replicas[0] for rep in replicas)
                exact = replicas[0] == pool.ledger(subscription.id)
                median = statistics.median(latencies) * 1e3
                print(
                    f"ingest -> all {devices} devices  median {median:7.1f} ms"
                    f"   max {max(latencies) * 1e3:7.1f} ms"
                    f"   (poll every {poll:.2f} s; goal <= 5 s)"
                )
                print(f"replicas converged {converged}, equal to the operator's ledger {exact}")
                for client in clients:
                    await client.close()
            finally:
                await runner.cleanup()

    asyncio.run(run())


SECTIONS: list[Callable[[argparse.Namespace], None]] = [
    merge_section,
    codec_section,
    ingest_section,
    sync_latency_section,
]
"""The benchmark's sections in order; ``--only`` selects by name without ``_section``."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller figures, one repeat")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated sections: "
        + ", ".join(s.__name__.removesuffix("_section") for s in SECTIONS),
    )
    parser.add_argument(
        "--batches", type=int, default=1_000, help="device batches to ingest (default 1000)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run the selected sections; print their figures."""
    args = _parser().parse_args(argv)
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    for section in SECTIONS:
        if not wanted or section.__name__.removesuffix("_section") in wanted:
            section(args)
            print()


if __name__ == "__main__":
    main()
