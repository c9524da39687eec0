"""``rspfed network``: use the operator's simulated network core.

Command::

    rspfed network scan --euicc STORE --operator URL [--operator URL ...]
                        [--json] [--ca-file PEM] [--no-tls]

    rspfed network attach --euicc STORE --operator URL [--plmn PLMN|auto]
                          [--service data|voice|sms|tethering] [--ca-file PEM] [--no-tls]

    rspfed network use --euicc STORE --operator URL --bytes 300MB [--plmn PLMN|auto]
                       [--device STORE] [--ca-file PEM] [--no-tls]

``scan`` asks every ``--operator`` for the cells its simulated network has
on air (``network/cells``; an operator out of reach shows nothing), reads
the enabled profile's PLMN lists from its USIM files (EF.IMSI/EF.AD,
EF.EHPLMN, EF.PLMNwAcT, EF.OPLMNwAcT, EF.FPLMN, EF.HPPLMN) and prints each
visible network with its priority class (TS 23.122 automatic mode, see
``docs/network-selection.md``), the one selected marked ``*`` and why.

``attach`` and ``use`` go through a network: ``--plmn PLMN`` names it;
without ``--plmn`` (or with ``--plmn auto``) the device selects one
automatically from the operator's cells (as ``scan`` does, and on a
``no-coverage`` or ``plmn-not-allowed`` refusal the next one; a
``plmn-not-allowed`` PLMN is written to EF.FPLMN when the card allows).
When the operator publishes no cells at all, an attach without ``--plmn``
goes to the home network without a radio check, as before the radio existed
(``--plmn auto`` then fails).

``attach`` runs EAP-AKA' (RFC 9048) with the operator, the eUICC's enabled
profile's USIM answering the challenge over APDUs, and prints the services
the network grants; with ``--service`` the network also checks that one.
TLS trust is as for ``rspfed federation`` (the CIs the eUICC lists plus
``--ca-file``); ``--no-tls`` only against an ``http://`` (``--no-tls``)
operator.  The eUICC store's passphrase is read from
``RSPFED_EUICC_PASSPHRASE``.

``use`` attaches for data the same way, then carries ``--bytes`` of
simulated traffic on the bearer the attach opened: the operator's packet
gateway meters it into the shared data pool and enforces the pool and the
device's quota.  It prints what was carried and the counters.  With
``--device`` (the device's registered federation store) the device also
reports its own count of the traffic, signed with its device key (a
``DeviceUsageBatch``; a new counter epoch per run, since the command keeps
no counters between runs): the operator shows it beside the network's
figures and never bills it.

Exit status: 0 attached (and the service granted; ``use``: all of it
carried), 1 refused by the network
(unknown, barred or removed IMSI, failed authentication, service not
allowed, ``no-coverage``, ``plmn-not-allowed``; ``use``: quota-exhausted or
pool-exhausted, after carrying what was allowed: one line on stderr naming
the reason), 2 any other failure.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from rspfed.cli._units import SizeType, format_size
from rspfed.cli._util import reports_errors
from rspfed.cli.federation import (
    _open_device,
    _registered,
    open_euicc,
    operator_call,
    resolve_operator_url,
    usim_identity,
)
from rspfed.federation.token import Service

__all__ = ["REFUSED_EXIT", "network"]

#: Exit status of an attach (or service) the network refused.
REFUSED_EXIT = 1


def _usim_options(func: Any) -> Any:
    """``--euicc`` (the attaching USIM's store) and ``--operator``."""
    func = click.option(
        "--operator", "operator_url", metavar="URL", required=True, help="https://HOST[:PORT]"
    )(func)
    return click.option(
        "--euicc",
        "euicc",
        metavar="STORE",
        required=True,
        type=click.Path(dir_okay=False, exists=True),
        help="The software eUICC store whose enabled profile's USIM attaches.",
    )(func)


def _tls_options(func: Any) -> Any:
    """``--ca-file`` and ``--no-tls``."""
    func = click.option(
        "--no-tls", is_flag=True, help="Plain HTTP to an http:// (--no-tls) operator."
    )(func)
    return click.option(
        "--ca-file",
        type=click.Path(dir_okay=False, exists=True),
        default=None,
        help="PEM file of CAs trusted for the operator's TLS certificate, besides the eUICC's CIs.",
    )(func)


def _plmn_option(func: Any) -> Any:
    """``--plmn PLMN|auto``."""
    return click.option(
        "--plmn",
        default=None,
        metavar="PLMN|auto",
        help="The network to attach through (MCC MNC digits); default/auto: select automatically.",
    )(func)


def _selection_line(selection: Any, reason: str) -> str:
    net = selection.network
    label = f" {net.name}" if net.name else ""
    country = f" {net.country}" if net.country else ""
    roaming = "roaming" if selection.roaming else "home"
    return (
        f"network PLMN {net.plmn}{label}{country} {net.rat.value} {net.signal_dbm} dBm: "
        f"{selection.priority.name.lower().replace('_', '-')}, {roaming} ({reason})"
    )


_MAX_TRIES = 8
_WHY = {
    "HPLMN": "hplmn: the home network (EHPLMN) is on air",
    "USER": "user: no home network on air; the first EF.PLMNwAcT entry on air",
    "OPERATOR": "operator: no home or user-list network on air; the first EF.OPLMNwAcT entry",
    "OTHER_HIGH_QUALITY": "other-high-quality: no listed network on air; the strongest good one",
    "OTHER": "other: no listed or high-quality network on air; the strongest one",
}


async def _through(
    client: Any,
    card: Any,
    plmn: str | None,
    attach: Any,
    echo: Any,
) -> Any:
    """``attach(plmn)`` with an explicit PLMN or one selected automatically (module doc)."""
    from datetime import UTC, datetime

    from rspfed.errors import UsageError
    from rspfed.network import NetworkRefusedError, RefusalReason
    from rspfed.network.radio import check_plmn
    from rspfed.network.selection import (
        NetworkSelected,
        NetworkSelector,
        NoNetwork,
        PlmnForbidden,
        read_plmn_lists,
        write_fplmn,
    )

    if plmn is not None and plmn.lower() != "auto":
        return await attach(check_plmn(plmn))
    visible = await client.cells()
    if not visible:
        if plmn is not None:
            raise UsageError("the operator publishes no cells: nothing to select from")
        return await attach(None)
    selector = NetworkSelector(read_plmn_lists(card), period=None)
    events: list[Any] = selector.on_scan(visible, datetime.now(UTC))
    for _ in range(_MAX_TRIES):
        chosen = None
        for event in events:
            if isinstance(event, PlmnForbidden):
                written = write_fplmn(card, event.forbidden)
                where = "EF.FPLMN" if written else "the forbidden list (no EF.FPLMN)"
                echo(f"network PLMN {event.plmn}: not allowed, added to {where}")
            elif isinstance(event, NetworkSelected):
                chosen = event.selection
                echo(_selection_line(chosen, event.reason.value))
            elif isinstance(event, NoNetwork):
                raise NetworkRefusedError(
                    event.refusal or RefusalReason.NO_COVERAGE,
                    f"no network can be selected ({event.reason.value})",
                )
        if chosen is None:
            raise NetworkRefusedError(RefusalReason.NO_COVERAGE, "no network selected")
        try:
            return await attach(chosen.network.plmn)
        except NetworkRefusedError as exc:
            if exc.reason not in (RefusalReason.NO_COVERAGE, RefusalReason.ROAMING_NOT_ALLOWED):
                raise
            echo(f"network PLMN {chosen.network.plmn}: refused ({exc.reason.value})")
            events = selector.on_refused(chosen.network.plmn, exc.reason, datetime.now(UTC))
    raise NetworkRefusedError(RefusalReason.NO_COVERAGE, "no network accepted the attach")


@click.group("network")
def network() -> None:
    """The operator's simulated network core: scan, attach and service checks."""


@network.command("scan")
@click.option(
    "--euicc",
    "euicc",
    metavar="STORE",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="The software eUICC store whose enabled profile selects.",
)
@click.option(
    "--operator",
    "operator_urls",
    metavar="URL",
    required=True,
    multiple=True,
    help="https://HOST[:PORT] of an operator whose cells to scan (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_tls_options
@reports_errors
def scan_command(
    euicc: str, operator_urls: tuple[str, ...], as_json: bool, ca_file: str | None, no_tls: bool
) -> None:
    """List the visible networks with their priority class; mark the selection and why."""
    import asyncio
    import json

    from rspfed.cli.federation import _tls
    from rspfed.federation.client import OperatorClient, scan
    from rspfed.network.selection import classify, read_plmn_lists, select_network

    urls = [resolve_operator_url(u, None, no_tls) for u in operator_urls]
    with open_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session:
        lists = read_plmn_lists(session.euicc.card)
        contexts = [_tls(u, session, ca_file) for u in urls]

        async def run() -> list[Any]:
            clients = [
                OperatorClient(u, ssl_context=c) for u, c in zip(urls, contexts, strict=True)
            ]
            try:
                return await scan(clients)
            finally:
                for client in clients:
                    await client.close()

        visible = asyncio.run(run())
    selection = select_network(lists, visible)
    if selection is None:
        why = "no allowed network visible" if visible else "no network visible"
    else:
        why = _WHY[selection.priority.name]
    rows = []
    for net in visible:
        cls = classify(lists, net)
        rows.append(
            {
                **net.to_json(),
                "priority": "forbidden" if cls is None else cls.name.lower().replace("_", "-"),
                "selected": selection is not None and selection.network == net,
            }
        )
    if as_json:
        out = {
            "hplmn": lists.hplmn,
            "ehplmn": list(lists.ehplmn),
            "forbidden": list(lists.forbidden),
            "hpplmnPeriod": None
            if lists.hpplmn_period is None
            else int(lists.hpplmn_period.total_seconds()),
            "networks": rows,
            "selected": None if selection is None else selection.network.plmn,
            "roaming": None if selection is None else selection.roaming,
            "reason": why,
        }
        click.echo(json.dumps(out, indent=2))
        return
    period = "off" if lists.hpplmn_period is None else str(lists.hpplmn_period)
    click.echo(
        f"HPLMN {lists.hplmn}"
        + (f", EHPLMN {','.join(lists.ehplmn)}" if lists.ehplmn else "")
        + (f", forbidden {','.join(lists.forbidden)}" if lists.forbidden else "")
        + f", higher priority search {period}"
    )
    if not visible:
        click.echo("  no network visible")
    for row in rows:
        mark = "*" if row["selected"] else " "
        click.echo(
            f"{mark} {row['plmn']:6} {row['rat']:6} {row['signal_dbm']:5} dBm "
            f"{row['country'] or '--':2} {row['priority']:18} {row['name']}"
        )
    if selection is None:
        click.echo(f"selected: none ({why})")
    else:
        roaming = "roaming" if selection.roaming else "home"
        click.echo(f"selected: {selection.network.plmn} ({roaming}; {why})")


@network.command("attach")
@_usim_options
@_plmn_option
@click.option(
    "--service",
    type=click.Choice([s.value for s in Service], case_sensitive=False),
    default=None,
    help="A service to use; the network refuses it when the device may not.",
)
@_tls_options
@reports_errors
def attach_command(
    euicc: str,
    operator_url: str,
    plmn: str | None,
    service: str | None,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Attach with the eUICC's enabled USIM (EAP-AKA'); print the services granted."""
    from rspfed.network import NetworkRefusedError, RefusalReason
    from rspfed.network.usim import eap_usim

    url = resolve_operator_url(operator_url, None, no_tls)
    wanted = None if service is None else Service(service.lower())
    with open_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session:
        card = session.euicc.card
        imsi, mnc_length = usim_identity(session)

        async def work(client: Any) -> Any:
            async def attach(target: str | None) -> Any:
                return await client.attach(
                    usim=eap_usim(card),
                    imsi=imsi,
                    mnc_length=mnc_length,
                    service=wanted,
                    plmn=target,
                )

            return await _through(client, card, plmn, attach, click.echo)

        try:
            granted = operator_call(url, session, ca_file, work)
        except NetworkRefusedError as exc:
            what = "attach"
            if wanted is not None and exc.reason is RefusalReason.SERVICE_NOT_ALLOWED:
                what = f"service {wanted.value}"
            click.echo(f"rspfed: refused: {what} for IMSI {imsi}: {exc}", err=True)
            sys.exit(REFUSED_EXIT)
    names = ",".join(sorted(s.value for s in granted)) or "-"
    click.echo(f"attached IMSI {imsi}: services {names}")
    if wanted is not None:
        click.echo(f"service {wanted.value}: granted")


@network.command("use")
@_usim_options
@_plmn_option
@click.option("--bytes", "octets", required=True, type=SizeType(), help="Traffic: 300MB.")
@click.option(
    "--device",
    "device",
    metavar="STORE",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="This device's federation store: also report the device's own signed count.",
)
@_tls_options
@reports_errors
def use_command(
    euicc: str,
    operator_url: str,
    plmn: str | None,
    octets: int,
    device: str | None,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Attach for data and carry --bytes of traffic; print what was carried."""
    from rspfed.errors import UsageError
    from rspfed.federation.client import OperatorClient
    from rspfed.federation.pool import DeviceMeter, UsageResult
    from rspfed.network import NetworkRefusedError
    from rspfed.network.usim import eap_usim

    if octets <= 0:
        raise UsageError("--bytes must be at least 1B")
    url = resolve_operator_url(operator_url, None, no_tls)
    with open_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session:
        card = session.euicc.card
        imsi, mnc_length = usim_identity(session)

        own = None
        if device is not None:
            with _open_device(device, create=False) as store:
                own = _registered(store)

        async def work(client: OperatorClient) -> tuple[UsageResult, int]:
            async def attach(target: str | None) -> str:
                bearer: str = await client.attach_data(
                    usim=eap_usim(card), imsi=imsi, mnc_length=mnc_length, plmn=target
                )
                return bearer

            bearer = await _through(client, card, plmn, attach, click.echo)
            result = await client.use(bearer, octets)
            merged = 0
            if own is not None and result.carried:
                record, key = own
                if record.device_id is None or record.subscription_id is None:
                    raise UsageError("the device store names no device: register first")
                run = time.time_ns() // 1000  # a new counter epoch and sequence per run
                meter = DeviceMeter(record.device_id, result.iccid, counter_epoch=run)
                meter.add(result.period, result.carried)
                batch = meter.batch(key, record.subscription_id, run)
                merged = await client.report_usage(key, batch)
            return result, merged

        try:
            result, merged = operator_call(url, session, ca_file, work)
        except NetworkRefusedError as exc:
            click.echo(f"rspfed: refused: data for IMSI {imsi}: {exc}", err=True)
            sys.exit(REFUSED_EXIT)
    throttled = " (throttled)" if result.throttled else ""
    click.echo(
        f"IMSI {imsi} ICCID {result.iccid}: carried {format_size(result.carried)} of "
        f"{format_size(result.requested)}{throttled}"
    )
    click.echo(
        f"  gateway counter {format_size(result.counter)}, this period {format_size(result.used)}"
    )
    if merged:
        click.echo(f"  reported this device's own count: {format_size(result.carried)} (signed)")
    if result.refusal is not None:
        click.echo(f"rspfed: refused: data for IMSI {imsi}: {result.refusal.value}", err=True)
        sys.exit(REFUSED_EXIT)
