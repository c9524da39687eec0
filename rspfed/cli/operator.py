"""``rspfed operator``: set up and run the operator service, and sell subscriptions.

Commands::

    rspfed operator init --data DIR --pki PKIDIR --address FQDN[:PORT]
                         [--curve nist|brainpool|both] [--operator NAME]
                         [--callback-url URL] [--network-name NAME]
                         [--order-ttl 30m] [--join-ttl 24h] [--sync-interval 5s]
                         [--pki-passphrase-file FILE]
    rspfed operator serve --data DIR [--bind H] [--port P] [--workers N] [--no-tls]
    rspfed operator subscribe --data DIR --profile-type NAME --pool 20GB --devices 5
                         [--period 30d] [--classes phone,tablet,...]
                         [--services data,voice,...] [--name phone]
                         [--qr PNG | --qr-terminal]
    rspfed operator devices --data DIR --subscription ID [--json]
    rspfed operator cells --data DIR [--set PLMN:RAT:DBM[:COUNTRY[:NAME]]] [--off PLMN[:RAT]]
                         [--in 10s] [--partner PLMN] [--no-partner PLMN]
                         [--search-period 6m|off|template] [--json]

``cells`` lists and changes the operator's simulated radio
(:mod:`rspfed.federation.cells`): ``--set`` puts a cell on air at a signal
level (dBm, e.g. ``-80`` strong, ``-115`` weak; RAT ``gsm``, ``utran``,
``eutran``, ``ngran``), ``--off`` takes a PLMN's cells (or one RAT's) off
air, ``--in`` schedules these changes that much later instead of now;
``--partner``/``--no-partner`` edit the roaming partners (the PLMNs its
subscribers may attach through besides home; new profiles carry them in
EF.OPLMNwAcT), ``--search-period`` the EF.HPPLMN new profiles get.  A running
``serve`` sees the changes at once.  ``--data-dir`` is an alias of ``--data``.

The data directory is an SM-DP+ data directory (``rspfed smdp init``'s
layout, so ``rspfed smdp template add`` and ``rspfed smdp inventory`` work on
it) plus the operator's and the network's stores
(:mod:`rspfed.federation.datadir`).  Its keys are encrypted with the
passphrase in ``RSPFED_SMDP_PASSPHRASE`` if it is set at ``init``; the same
value is then needed by ``serve`` and ``subscribe``.

Sizes are decimal (``20GB`` = 20 * 10^9 octets; ``GiB`` and friends are
binary), durations take ``s``, ``m``, ``h``, ``d`` (:mod:`rspfed.cli._units`).

``subscribe`` and ``devices`` work on the directory directly (an operator's
back office), also while ``serve`` runs: the stores are shared SQLite files.

Errors: exit status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from rspfed.cli._datadir import (
    curves_of,
    echo_tls_files,
    init_options,
    open_test_pki,
    pki_passphrase_option,
    run_server,
)
from rspfed.cli._datadir import smdp_passphrase as _passphrase
from rspfed.cli._units import DurationType, SizeType, format_duration, format_size
from rspfed.cli._util import reports_errors
from rspfed.errors import UsageError
from rspfed.federation.token import DeviceClass, Service
from rspfed.federation.types import Device
from rspfed.network.radio import Rat

__all__ = ["device_line", "device_row", "operator", "parse_classes", "parse_services"]


def _names(text: str) -> list[str]:
    return [part.strip().lower() for part in text.split(",") if part.strip()]


def parse_services(text: str) -> frozenset[Service]:
    """A comma-separated list of services (``data,voice,sms,tethering``; ``all``)."""
    names = _names(text)
    if names == ["all"]:
        return frozenset(Service)
    known = {s.value: s for s in Service}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError(
            f"unknown service(s) {', '.join(unknown) or '(none)'}: "
            f"choose from {', '.join(known)} or all"
        )
    return frozenset(known[n] for n in names)


def parse_classes(text: str) -> frozenset[DeviceClass]:
    """A comma-separated list of device classes (``phone,tablet,laptop,watch,hotspot``; ``all``)."""
    names = _names(text)
    if names == ["all"]:
        return frozenset(DeviceClass)
    known = {c.value: c for c in DeviceClass}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UsageError(
            f"unknown device class(es) {', '.join(unknown) or '(none)'}: "
            f"choose from {', '.join(known)} or all"
        )
    return frozenset(known[n] for n in names)


def _listing(values: Iterable[Service | DeviceClass]) -> str:
    return ",".join(sorted(v.value for v in values)) or "-"


@click.group("operator")
def operator() -> None:
    """The operator service: SM-DP+ (ES9+, ES2+), federation API and simulated network core."""


@operator.command("init")
@init_options(
    address_help="Service address FQDN[:PORT], as activation codes and clients will use it.",
    operator_help="Operator name in the ES2+ client certificate.",
)
@click.option(
    "--network-name",
    default="WLAN",
    show_default=True,
    help="EAP-AKA' network name (AT_KDF_INPUT, RFC 9048 §3.1).",
)
@click.option(
    "--order-ttl",
    type=DurationType(),
    default="30m",
    show_default=True,
    help="How long a secondary's order waits for its download before its slot is freed.",
)
@click.option(
    "--join-ttl",
    type=DurationType(),
    default="24h",
    show_default=True,
    help="How long a cloud join request lives.",
)
@click.option(
    "--sync-interval",
    type=DurationType(),
    default="5s",
    show_default=True,
    help="How often the server reconciles with the SM-DP+ (lapsed orders, expiry).",
)
@pki_passphrase_option
@reports_errors
def init_command(
    data: Path,
    pki_dir: str,
    address: str,
    curve: str,
    operator_name: str,
    callback_url: str | None,
    network_name: str,
    order_ttl: timedelta,
    join_ttl: timedelta,
    sync_interval: timedelta,
    pki_passphrase_file: str | None,
) -> None:
    """Create an operator data directory: all that `smdp init` does, plus the
    operator's and the network's stores and settings."""
    from rspfed.federation.datadir import init_operator_dir
    from rspfed.federation.types import OperatorConfig

    if not network_name.isascii():
        raise UsageError("the network name must be ASCII")
    config = OperatorConfig(
        network_name=network_name.encode("ascii"), order_ttl=order_ttl, join_ttl=join_ttl
    )
    init_operator_dir(
        data,
        pki=open_test_pki(pki_dir, pki_passphrase_file),
        address=address,
        config=config,
        sync_seconds=sync_interval.total_seconds(),
        passphrase=_passphrase(),
        curves=curves_of(curve),
        operator=operator_name,
        progress_callback_url=callback_url,
    )
    click.echo(f"operator data directory {data} created for {address}")
    echo_tls_files(data)
    click.echo("  next: rspfed smdp template add --data DIR NAME PACKAGE --metadata FILE")


@operator.command("serve")
@click.option("--data", "data", required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=None, type=int, help="Port (default: the address's port, else 443)."
)
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes.")
@click.option(
    "--no-tls", is_flag=True, help="Plain HTTP, for local testing only (clients use http://)."
)
@reports_errors
def serve_command(data: str, bind: str, port: int | None, workers: int, no_tls: bool) -> None:
    """Serve ES9+, ES2+ and the federation API (/rspfed/v1/) until SIGINT or SIGTERM."""
    from rspfed.federation.http import serve_operator

    run_server(
        "operator",
        data,
        bind=bind,
        port=port,
        workers=workers,
        no_tls=no_tls,
        serve=serve_operator,
        check_workers=True,
    )


@operator.command("subscribe")
@click.option("--data", "data", required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--profile-type", required=True, help="Profile type of the subscription's profiles.")
@click.option(
    "--pool",
    required=True,
    type=SizeType(),
    help="Data pool per billing period, with a unit: 20GB (decimal; GiB binary).",
)
@click.option("--devices", "device_limit", required=True, type=int, help="Device limit (1 to 64).")
@click.option(
    "--period",
    type=DurationType(),
    default="30d",
    show_default=True,
    help="Billing period (s, m, h, d).",
)
@click.option(
    "--classes",
    default="all",
    show_default=True,
    help="Allowed device classes, comma-separated (phone,tablet,laptop,watch,hotspot).",
)
@click.option(
    "--services",
    default="all",
    show_default=True,
    help="Allowed services, comma-separated (data,voice,sms,tethering).",
)
@click.option("--name", default="phone", show_default=True, help="The primary device's name.")
@click.option("--qr", "qr_png", default=None, type=click.Path(dir_okay=False))
@click.option("--qr-terminal", is_flag=True, help="Also print the activation code as a QR code.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def subscribe_command(
    data: str,
    profile_type: str,
    pool: int,
    device_limit: int,
    period: timedelta,
    classes: str,
    services: str,
    name: str,
    qr_png: str | None,
    qr_terminal: bool,
    as_json: bool,
) -> None:
    """Create a subscription; print its id and the primary's activation code.

    The primary (a phone) downloads its profile with the code (rspfed lpa
    download), enables it, then registers its federation key (rspfed
    federation register).
    """
    from rspfed.federation.datadir import close_operator, open_operator
    from rspfed.federation.types import Plan
    from rspfed.lpa import ActivationCode

    if qr_png and qr_terminal:
        raise UsageError("--qr and --qr-terminal exclude each other")
    plan = Plan(
        pool_bytes=pool,
        device_limit=device_limit,
        period=period,
        device_classes=parse_classes(classes),
        services=parse_services(services),
    )
    op = open_operator(data, passphrase=_passphrase())
    try:
        sub, enrolment = op.subscribe(profile_type, plan, name=name)
    finally:
        close_operator(op)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "subscription": sub.id,
                    "deviceId": enrolment.device_id,
                    "iccid": enrolment.iccid,
                    "activationCode": enrolment.activation_code,
                },
                indent=2,
            )
        )
    else:
        click.echo(f"subscription {sub.id}")
        click.echo(
            f"  plan: {format_size(plan.pool_bytes)} per {format_duration(plan.period)}, "
            f"{plan.device_limit} devices, classes {_listing(plan.device_classes)}, "
            f"services {_listing(plan.services)}"
        )
        click.echo(f"  primary device {enrolment.device_id} ({name}), ICCID {enrolment.iccid}")
        click.echo(enrolment.activation_code)
    if qr_png or qr_terminal:
        code = ActivationCode.parse(enrolment.activation_code)
        if qr_png:
            code.qr_png(qr_png)
            click.echo(f"QR code written to {qr_png}", err=True)
        else:
            click.echo(code.qr_terminal())


def device_row(device: Device) -> dict[str, Any]:
    """A device record as JSON (the ``--json`` output of the device listings)."""
    return {
        "id": device.id,
        "subscription": device.subscription_id,
        "role": device.role.value,
        "class": device.device_class.value,
        "name": device.name,
        "state": device.state.value,
        "eid": device.eid,
        "iccid": device.iccid,
        "imsi": device.imsi,
        "services": sorted(s.value for s in device.services),
        "quota": device.quota_bytes,
        "tokenId": None if device.token_id is None else device.token_id.hex(),
        "tokenConsumed": device.token_consumed,
        "keyId": None if device.device_key_id is None else device.device_key_id.hex(),
    }


def device_line(device: Device) -> str:
    """One line describing a device (the text output of the device listings)."""
    key = "key" if device.device_key_id is not None else "no key"
    return (
        f"  {device.id}  {device.role.value:9} {device.device_class.value:7} "
        f"{device.state.value:7} {device.name!r}  EID {device.eid or '-'}  "
        f"ICCID {device.iccid}  services {_listing(device.services)}  ({key})"
    )


@operator.command("devices")
@click.option("--data", "data", required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--subscription", "subscription_id", required=True, help="Subscription id.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def devices_command(data: str, subscription_id: str, as_json: bool) -> None:
    """List a subscription's devices from the data directory (back-office view)."""
    from rspfed.errors import NotFoundError
    from rspfed.federation.datadir import open_operator_store

    store = open_operator_store(data)
    try:
        sub = store.subscription(subscription_id)
        if sub is None:
            raise NotFoundError(f"no subscription {subscription_id}")
        devices = store.devices(subscription_id)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([device_row(d) for d in devices], indent=2))
        return
    used = sum(1 for d in devices if d.occupies_slot)
    click.echo(
        f"subscription {sub.id} ({sub.profile_type}): {used}/{sub.plan.device_limit} devices, "
        f"pool {format_size(sub.plan.pool_bytes)} per {format_duration(sub.plan.period)}"
    )
    for device in devices:
        click.echo(device_line(device))


@operator.command("topup")
@click.option("--data", "data", required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--subscription", "subscription_id", required=True, help="Subscription id.")
@click.option("--add", "add", type=SizeType(), default=None, help="Add to this period's pool: 5GB.")
@click.option(
    "--auto-at",
    type=click.IntRange(1, 1000),
    default=None,
    help="Automatic top-up rule: at this % of the pool (with --auto-add).",
)
@click.option("--auto-add", type=SizeType(), default=None, help="Automatic top-up size: 5GB.")
@click.option(
    "--auto-max",
    type=click.IntRange(0, 1000),
    default=2,
    show_default=True,
    help="Automatic top-ups at most per period.",
)
@click.option("--auto-off", is_flag=True, help="Remove the automatic top-up rule.")
@reports_errors
def topup_command(
    data: str,
    subscription_id: str,
    add: int | None,
    auto_at: int | None,
    auto_add: int | None,
    auto_max: int,
    auto_off: bool,
) -> None:
    """Top up a subscription's data pool now (--add), or set its automatic top-up rule.

    A top-up opens a new pool epoch: only the alert thresholds above the
    ratio it opens at re-arm, and data barred for the pool is allowed again.
    """
    from datetime import UTC, datetime

    from rspfed.federation.datadir import close_operator, open_operator
    from rspfed.federation.ledger import AutoTopUp
    from rspfed.federation.pool import PoolService

    if add is None and auto_add is None and not auto_off:
        raise UsageError("give --add SIZE, --auto-at N --auto-add SIZE, or --auto-off")
    if (auto_at is None) != (auto_add is None):
        raise UsageError("--auto-at and --auto-add go together")
    if auto_off and auto_add is not None:
        raise UsageError("--auto-off excludes --auto-add")
    op = open_operator(data, passphrase=_passphrase())
    try:
        pool = PoolService(op, now=lambda: datetime.now(UTC), rand=os.urandom)
        if auto_off:
            pool.set_auto_top_up(subscription_id, None)
            click.echo(f"subscription {subscription_id}: automatic top-up off")
        if auto_add is not None and auto_at is not None:
            pool.set_auto_top_up(subscription_id, AutoTopUp(auto_add, auto_at, auto_max))
            click.echo(
                f"subscription {subscription_id}: automatic top-up of {format_size(auto_add)} "
                f"at {auto_at} %, at most {auto_max} per period"
            )
        if add is not None:
            epoch = pool.top_up(subscription_id, add)
            click.echo(
                f"subscription {subscription_id}: pool {format_size(epoch.limit)} "
                f"(+{format_size(add)}, pool epoch {epoch.index}, "
                f"{format_size(epoch.opening_used)} used)"
            )
    finally:
        close_operator(op)


def _parse_cell(text: str) -> tuple[str, Rat, int, str | None, str | None]:
    parts = text.split(":", 4)
    if len(parts) < 3:
        raise UsageError("--set takes PLMN:RAT:DBM[:COUNTRY[:NAME]]")
    plmn, rat, dbm = parts[0], parts[1].lower(), parts[2]
    try:
        level = int(dbm)
        kind = Rat(rat)
    except ValueError:
        raise UsageError(
            f"--set {text}: RAT is one of {', '.join(r.value for r in Rat)}, DBM an integer"
        ) from None
    country = parts[3].upper() if len(parts) > 3 else None
    name = parts[4] if len(parts) > 4 else None
    return plmn, kind, level, country, name


def _parse_off(text: str) -> tuple[str, Rat | None]:
    plmn, _, rat = text.partition(":")
    if not rat:
        return plmn, None
    try:
        return plmn, Rat(rat.lower())
    except ValueError:
        raise UsageError(f"--off {text}: RAT is one of {', '.join(r.value for r in Rat)}") from None


@operator.command("cells")
@click.option(
    "--data", "--data-dir", "data", required=True, type=click.Path(file_okay=False, exists=True)
)
@click.option(
    "--set",
    "set_cells",
    multiple=True,
    metavar="PLMN:RAT:DBM[:COUNTRY[:NAME]]",
    help="Put a cell on air at DBM (repeatable).",
)
@click.option("--off", "off_cells", multiple=True, metavar="PLMN[:RAT]", help="Take cells off air.")
@click.option(
    "--in",
    "delay",
    type=DurationType(),
    default=None,
    help="Schedule the --set/--off changes this much later (10s, 2m) instead of now.",
)
@click.option("--partner", "partners", multiple=True, metavar="PLMN", help="Add a roaming partner.")
@click.option(
    "--no-partner", "non_partners", multiple=True, metavar="PLMN", help="Remove a roaming partner."
)
@click.option(
    "--search-period",
    default=None,
    metavar="6m|off|template",
    help="EF.HPPLMN of new profiles: a period (6-minute steps), off (00), or template (unset).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def cells_command(
    data: str,
    set_cells: tuple[str, ...],
    off_cells: tuple[str, ...],
    delay: timedelta | None,
    partners: tuple[str, ...],
    non_partners: tuple[str, ...],
    search_period: str | None,
    as_json: bool,
) -> None:
    """List (and change) the cells of the operator's simulated network and its roaming partners."""
    from datetime import UTC, datetime

    from rspfed.cli._units import parse_duration
    from rspfed.federation import cells as radio
    from rspfed.federation.datadir import open_operator_store

    now = datetime.now(UTC)
    at = None if delay is None else now + delay
    store = open_operator_store(data)
    try:
        with store.transaction():
            for text in set_cells:
                plmn, rat, level, country, name = _parse_cell(text)
                radio.set_cell(store, plmn, rat, level, now=now, at=at, country=country, name=name)
            for text in off_cells:
                plmn, maybe_rat = _parse_off(text)
                if at is None:
                    radio.set_off(store, plmn, maybe_rat, now=now)
                else:
                    for cell in store.cells():
                        if cell.plmn == plmn and maybe_rat in (None, cell.rat):
                            radio.set_cell(store, plmn, cell.rat, None, now=now, at=at)
            for plmn in partners:
                radio.add_partner(store, plmn, now=now)
            for plmn in non_partners:
                radio.remove_partner(store, plmn)
            if search_period is not None:
                choice = search_period.strip().lower()
                if choice == "off":
                    radio.set_hpplmn_period(store, None, off=True)
                elif choice == "template":
                    radio.set_hpplmn_period(store, None, off=False)
                else:
                    radio.set_hpplmn_period(store, parse_duration(choice), off=False)
        cells = store.cells()
        partner_list = store.partners()
        period = radio.hpplmn_period(store)
        period_set = store.network_setting(radio.HPPLMN_SETTING) is not None
    finally:
        store.close()
    if as_json:
        out = {
            "cells": [
                {
                    "plmn": c.plmn,
                    "rat": c.rat.value,
                    "country": c.country,
                    "name": c.name,
                    "signal_dbm": c.level(now),
                    "schedule": [[w.isoformat(), d] for w, d in c.signal],
                }
                for c in cells
            ],
            "partners": list(partner_list),
            "searchPeriod": None if period is None else int(period.total_seconds()),
            "searchPeriodSet": period_set,
        }
        click.echo(json.dumps(out, indent=2))
        return
    if not cells:
        click.echo("no cells (no radio model: attaches go to the home network unchecked)")
    for cell in cells:
        dbm_now = cell.level(now)
        state = "off air" if dbm_now is None else f"{dbm_now} dBm"
        later = cell.next_change(now)
        plan = ""
        if later is not None:
            upcoming = cell.level(later)
            what = "off air" if upcoming is None else f"{upcoming} dBm"
            plan = f"  (then {what} at {later.isoformat(timespec='seconds')})"
        click.echo(
            f"  {cell.plmn:6} {cell.rat.value:6} {cell.country or '--':2} "
            f"{state:10} {cell.name}{plan}"
        )
    click.echo(f"roaming partners: {', '.join(partner_list) or '-'}")
    if period_set:
        click.echo(f"EF.HPPLMN of new profiles: {'off' if period is None else period}")
