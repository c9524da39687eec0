"""``rspfed euicc``: create a software eUICC, show it, serve it to PC/SC through vpcd.

Exit status: 0 success, 2 bad usage or an unreadable store (one line on
stderr, never a traceback).  A passphrase for the store's keys is read from
the environment variable ``RSPFED_EUICC_PASSPHRASE`` when set (never from
the command line, where other users could see it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed.cli._util import reports_errors
from rspfed.crypto.curves import Curve
from rspfed.errors import DecodeError
from rspfed.euicc.card import Card
from rspfed.euicc.euicc import Euicc
from rspfed.euicc.uicc import Transmission
from rspfed.euicc.vpcd import parse_vpcd_address, serve_vpcd
from rspfed.pki.testpki import TestPki

__all__ = ["euicc"]

PASSPHRASE_ENV = "RSPFED_EUICC_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


def _read_certificate(path: str) -> bytes:
    data = Path(path).read_bytes()
    try:
        cert = (
            x509.load_pem_x509_certificate(data)
            if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_certificate(data)
        )
    except ValueError:
        raise DecodeError(f"{Path(path).name} is not a certificate (PEM or DER)") from None
    return cert.public_bytes(Encoding.DER)


@click.group("euicc")
def euicc() -> None:
    """A software eUICC (SGP.22 ISD-R over a UICC) kept in one store file."""


@euicc.command("create")
@click.argument("store", type=click.Path(dir_okay=False))
@click.option(
    "--pki",
    "pki_dir",
    required=True,
    type=click.Path(file_okay=False, exists=True),
    help="Test PKI directory (rspfed pki init) whose EUM certifies the eUICC.",
)
@click.option("--eid", default=None, help="EID (32 digits); random in the EUM's range if omitted.")
@click.option(
    "--curve",
    type=click.Choice(["nist", "brainpool", "both"]),
    default="nist",
    show_default=True,
    help="Curve(s) of the eUICC key pairs.",
)
@click.option(
    "--ci",
    "cis",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="An extra trusted CI certificate (PEM or DER), e.g. the SGP.26 test CI.",
)
@reports_errors
def create_command(
    store: str, pki_dir: str, eid: str | None, curve: str, cis: tuple[str, ...]
) -> None:
    """Create a new eUICC in STORE (which must not exist)."""
    pki = TestPki.open(pki_dir)
    curves = [Curve.NIST, Curve.BRAINPOOL] if curve == "both" else [Curve(curve)]
    extra = [_read_certificate(c) for c in cis]
    with Euicc.create(
        store, pki, eid=eid, curves=curves, extra_cis=extra, passphrase=_passphrase()
    ) as card:
        click.echo(f"eUICC {card.eid} created in {store}")


@euicc.command("info")
@click.argument("store", type=click.Path(dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def info_command(store: str, as_json: bool) -> None:
    """Show the EID, certificates, profiles and pending notifications of STORE."""
    with Euicc.open(store, passphrase=_passphrase()) as card:
        info = card.info()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"EID {info['eid']}")
    for cert in info["certificates"]:
        click.echo(f"  certificate {cert['name']}: {cert['subject']}")
    if info["defaultDpAddress"]:
        click.echo(f"default SM-DP+ {info['defaultDpAddress']}")
    click.echo(f"{len(info['profiles'])} profile(s)")
    for p in info["profiles"]:
        nick = f" ({p['nickname']})" if p["nickname"] else ""
        click.echo(f"  {p['iccid']} {p['state']:8} {p['name']}{nick} [{p['serviceProvider']}]")
    click.echo(f"{len(info['notifications'])} pending notification(s)")
    for n in info["notifications"]:
        click.echo(f"  #{n['seqNumber']} {n['event']} -> {n['address']}")


async def _serve_until_signalled(card: Card, host: str, port: int) -> None:
    """Serve ``card`` on vpcd until SIGINT or SIGTERM; the card is removed cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signals here
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    try:
        await serve_vpcd(card, host, port, stop=stop)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


@euicc.command("serve")
@click.argument("store", type=click.Path(dir_okay=False, exists=True))
@click.option(
    "--vpcd",
    "address",
    required=True,
    metavar="[HOST:]PORT",
    help="The vpcd reader driver of pcscd (slot 0 is port 35963).",
)
@click.option(
    "--transmission",
    type=click.Choice(["t1", "t0"]),
    default="t1",
    show_default=True,
    help="t1: the ATR offers T=0 and T=1 and the card answers as over T=1 (PC/SC picks "
    "T=1); t0: the ATR offers T=0 only and every answer with data waits for GET RESPONSE "
    "(61xx), as on a T=0 card.",
)
@reports_errors
def serve_command(store: str, address: str, transmission: str) -> None:
    """Insert the eUICC of STORE into a vpcd reader and serve it until SIGINT or SIGTERM.

    Downloaded packages are checked and installed by the SAIP installer; the
    enabled profile's file system, PINs and USIM are what the reader sees.
    Every state change is in the store when its answer is sent, so stopping
    the server loses only volatile state (channels, an open RSP session).
    """
    host, port = parse_vpcd_address(address)
    mode = Transmission.T0 if transmission == "t0" else Transmission.T1
    with Euicc.open(
        store,
        passphrase=_passphrase(),
        transmission=mode,
    ) as card:
        click.echo(f"eUICC {card.eid} serving on vpcd {host}:{port} ({mode.value})", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve_until_signalled(card.card, host, port))
        click.echo("stopped", err=True)
