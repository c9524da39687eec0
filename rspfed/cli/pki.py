"""``rspfed pki``: generate a test PKI, revoke certificates, verify certificate chains.

Exit status: 0 success (a valid chain for ``verify``), 1 an invalid chain
(one line on stderr saying why), 2 bad usage or unreadable input.  Never a
traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
from cryptography import x509

from rspfed.crypto.curves import Curve
from rspfed.errors import CertificateError, DecodeError, RspfedError, UsageError
from rspfed.pki.roles import CertificateRole
from rspfed.pki.testpki import TestPki, load_trust_directory
from rspfed.pki.validate import (
    RspCertificate,
    ValidatedChain,
    dn_string,
    parse_certificate,
    verify_chain,
)

__all__ = ["pki"]

P = ParamSpec("P")
R = TypeVar("R")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _exit_on_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Map rspfed errors and OS errors to exit 2 with one line on stderr."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except RspfedError as exc:
            click.echo(f"rspfed: error: {_one_line(str(exc))}", err=True)
            sys.exit(2)
        except OSError as exc:
            click.echo(f"rspfed: error: {exc.filename or 'input'}: {exc.strerror or exc}", err=True)
            sys.exit(2)

    return wrapper


def _read_passphrase(path: str | None) -> bytes | None:
    if path is None:
        return None
    data = Path(path).read_bytes().rstrip(b"\r\n")
    if not data:
        raise UsageError(f"passphrase file {path} is empty")
    return data


@click.group()
def pki() -> None:
    """The SGP.22 RSP PKI: test PKI generation, revocation, chain verification."""


@pki.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--curve",
    type=click.Choice(["nist", "brainpool", "both"]),
    default="both",
    show_default=True,
    help="Curve(s) to generate a CI and EUM for.",
)
@click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Encrypt the private keys with the passphrase in this file.",
)
@click.option(
    "--ein",
    default="89049032",
    show_default=True,
    help="EID prefix the EUM may certify (NameConstraints serialNumber).",
)
@_exit_on_errors
def init_command(directory: Path, curve: str, passphrase_file: str | None, ein: str) -> None:
    """Create a test PKI in DIRECTORY (which must not exist or be empty)."""
    curves = [Curve.NIST, Curve.BRAINPOOL] if curve == "both" else [Curve(curve)]
    created = TestPki.create(
        directory,
        now=datetime.now(UTC),
        curves=curves,
        passphrase=_read_passphrase(passphrase_file),
        ein=ein,
    )
    click.echo(f"test PKI written to {directory}")
    for material in created.curves.values():
        click.echo(
            f"  {material.curve.value}: CI key id {material.ci_pkid.hex().upper()}, "
            f"EUM range {created.ein}"
        )


@pki.command("revoke")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("certificate", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--passphrase-file",
    type=click.Path(exists=True, dir_okay=False),
    help="Passphrase of the test PKI's keys.",
)
@_exit_on_errors
def revoke_command(directory: Path, certificate: str, passphrase_file: str | None) -> None:
    """Revoke CERTIFICATE: add it to its issuer's CRL in the test PKI DIRECTORY."""
    certs = _load_certificates(certificate)
    if len(certs) != 1:
        raise UsageError(f"{certificate} holds {len(certs)} certificates, expected one")
    store = TestPki.open(directory, passphrase=_read_passphrase(passphrase_file))
    crl = store.revoke(certs[0].certificate, now=datetime.now(UTC))
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    click.echo(
        f"revoked serial {certs[0].serial_number:#x} ({dn_string(certs[0].subject)}); "
        f"CRL of {dn_string(crl.issuer)} is now number {number}"
    )


def _load_certificates(path: str) -> list[RspCertificate]:
    data = Path(path).read_bytes()
    if b"-----BEGIN" in data:
        try:
            found = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise DecodeError(
                f"{path}: no valid PEM certificate", type_name="Certificate"
            ) from None
        return [parse_certificate(cert) for cert in found]
    try:
        return [parse_certificate(data)]
    except DecodeError as exc:
        raise DecodeError(f"{path}: {exc}") from None


def _order(certs: Sequence[RspCertificate]) -> tuple[RspCertificate, list[RspCertificate]]:
    """Pick the leaf: the first certificate that issued none of the others."""

    def issued_another(cert: RspCertificate) -> bool:
        return any(
            other is not cert
            and other.authority_key_id is not None
            and other.authority_key_id == cert.subject_key_id
            and other.issuer == cert.subject
            for other in certs
        )

    leaves = [cert for cert in certs if not issued_another(cert)]
    leaf = leaves[0] if leaves else certs[0]
    return leaf, [cert for cert in certs if cert is not leaf]


def _parse_time(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date or date-time", param_hint="--at"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _line(index: int, cert: RspCertificate, role: str) -> str:
    return (
        f"[{index}] {role:8} {dn_string(cert.subject)}\n"
        f"    valid {cert.not_before:%Y-%m-%d %H:%M:%SZ} .. {cert.not_after:%Y-%m-%d %H:%M:%SZ}"
        f"  key id {(cert.subject_key_id or b'').hex().upper() or '-'}"
        f"  serial {cert.serial_number:#x}"
    )


def _print_chain(result: ValidatedChain) -> None:
    for index, cert in enumerate(result.chain):
        role = cert.role
        click.echo(_line(index, cert, role.value if role else "?"))


@pki.command("verify")
@click.argument(
    "certificates", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False)
)
@click.option(
    "--ci",
    "ci_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="A test-PKI directory or a directory of CI certificates (and CRLs).",
)
@click.option("--at", "at", help="Verify at this ISO 8601 date or date-time (default: now, UTC).")
@click.option(
    "--role",
    type=click.Choice([role.value for role in CertificateRole]),
    help="Role to verify the leaf for (default: the role in its certificate policies).",
)
@click.option("--eid", help="Expected EID of an eUICC certificate.")
@_exit_on_errors
def verify_command(
    certificates: tuple[str, ...], ci_dir: str, at: str | None, role: str | None, eid: str | None
) -> None:
    """Verify a certificate chain: CERTIFICATES (DER or PEM; leaf first or any order)."""
    now = _parse_time(at)
    certs = [cert for path in certificates for cert in _load_certificates(path)]
    leaf, others = _order(certs)
    trust = load_trust_directory(ci_dir)
    wanted = CertificateRole(role) if role else leaf.role
    try:
        if wanted is None:
            raise CertificateError(
                f"certificate {leaf.describe()} carries no id-rspRole policy; use --role"
            )
        result = verify_chain(
            leaf,
            role=wanted,
            trust_anchors=trust.anchors,
            intermediates=[*others, *trust.intermediates],
            crls=trust.crls,
            now=now,
            eid=eid,
        )
    except CertificateError as exc:
        for index, cert in enumerate([leaf, *others]):
            found = cert.role
            click.echo(_line(index, cert, found.value if found else "?"))
        click.echo(f"rspfed: invalid: {_one_line(str(exc))}", err=True)
        sys.exit(1)
    _print_chain(result)
    extra = f", EID {result.eid}" if result.eid else ""
    click.echo(
        f"valid: {result.role.value} certificate on {result.curve.spec_name}{extra}, "
        f"CI key id {result.ci_pkid.hex().upper()}, at {now.isoformat()}"
    )
