"""Options and steps that ``rspfed smdp init`` and ``rspfed operator init`` share."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rspfed.crypto.curves import Curve

if TYPE_CHECKING:
    from rspfed.pki.testpki import TestPki

__all__ = [
    "curves_of",
    "echo_tls_files",
    "init_options",
    "open_test_pki",
    "pki_passphrase_option",
    "run_server",
    "smdp_passphrase",
]


def smdp_passphrase() -> bytes | None:
    """The data directory's passphrase from ``RSPFED_SMDP_PASSPHRASE`` (None if unset)."""
    from rspfed.smdp.datadir import PASSPHRASE_ENV

    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


def init_options(*, address_help: str, operator_help: str) -> Callable[[Any], Any]:
    """``--data``, ``--pki``, ``--address``, ``--curve``, ``--operator`` (into
    ``operator_name``) and ``--callback-url``, in that order."""

    def decorate(func: Any) -> Any:
        for option in reversed(
            [
                click.option(
                    "--data",
                    "data",
                    required=True,
                    type=click.Path(file_okay=False, path_type=Path),
                    help="Data directory to create (new or empty).",
                ),
                click.option(
                    "--pki",
                    "pki_dir",
                    required=True,
                    type=click.Path(file_okay=False, exists=True),
                    help="Test PKI directory (rspfed pki init) whose CI certifies the SM-DP+.",
                ),
                click.option("--address", required=True, help=address_help),
                click.option(
                    "--curve",
                    type=click.Choice(["nist", "brainpool", "both"]),
                    default="both",
                    show_default=True,
                    help="Curve(s) for CERT.DPauth and CERT.DPpb.",
                ),
                click.option(
                    "--operator",
                    "operator_name",
                    default="rspfed test operator",
                    show_default=True,
                    help=operator_help,
                ),
                click.option(
                    "--callback-url",
                    default=None,
                    help="Operator URL for HandleDownloadProgressInfo (e.g. https://op.example/).",
                ),
            ]
        ):
            func = option(func)
        return func

    return decorate


#: ``--pki-passphrase-file``.
pki_passphrase_option = click.option(
    "--pki-passphrase-file",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="Passphrase of the test PKI's keys (rspfed pki init --passphrase-file).",
)


def open_test_pki(pki_dir: str, pki_passphrase_file: str | None) -> TestPki:
    """Open the test PKI, with the passphrase in ``pki_passphrase_file`` if given."""
    from rspfed.pki.testpki import TestPki

    pki_passphrase = None
    if pki_passphrase_file is not None:
        pki_passphrase = Path(pki_passphrase_file).read_bytes().rstrip(b"\r\n") or None
    return TestPki.open(pki_dir, passphrase=pki_passphrase)


def curves_of(curve: str) -> list[Curve]:
    """The curves ``--curve`` names (``both``: NIST and Brainpool)."""
    return [Curve.NIST, Curve.BRAINPOOL] if curve == "both" else [Curve(curve)]


def echo_tls_files(data: Path) -> None:
    """Print where the operator's ES2+ certificate and key and the clients' CA are."""
    from rspfed.smdp.datadir import tls_paths

    files = tls_paths(data)
    click.echo(f"  operator ES2+ certificate: {files.operator_cert}")
    click.echo(f"  operator ES2+ key:         {files.operator_key}")
    click.echo(f"  CA for clients (--ca-file): {files.server_ca}")


def run_server(
    name: str,
    data: str,
    *,
    bind: str,
    port: int | None,
    workers: int,
    no_tls: bool,
    serve: Callable[..., Coroutine[Any, Any, None]],
    check_workers: bool = False,
) -> None:
    """``serve`` the data directory (``port`` defaults to the address's, else 443),
    saying ``rspfed NAME: serving ...`` once it listens and ``stopped`` at the end;
    with ``check_workers``, refuse fewer than one worker."""
    from rspfed.errors import UsageError
    from rspfed.smdp.datadir import read_settings, split_address

    address = str(read_settings(data).get("address", ""))
    if port is None:
        port = split_address(address)[1] or 443
    if check_workers and workers < 1:
        raise UsageError("--workers must be at least 1")
    scheme = "http" if no_tls else "https"

    def ready(actual: int) -> None:
        host = f"[{bind}]" if ":" in bind else bind
        click.echo(
            f"rspfed {name}: serving {address} on {scheme}://{host}:{actual}/ "
            f"({workers} worker{'s' if workers > 1 else ''})"
        )
        sys.stdout.flush()

    if no_tls:
        click.echo(f"rspfed {name}: warning: --no-tls is for local testing only", err=True)
    asyncio.run(
        serve(
            data,
            bind=bind,
            port=port,
            tls=not no_tls,
            workers=workers,
            ready=ready,
            passphrase=smdp_passphrase(),
        )
    )
    click.echo(f"rspfed {name}: stopped")
