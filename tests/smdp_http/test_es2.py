"""ES2+ over mutual TLS against the running server: orders, SGP.22 codes, refusals, the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rspfed import es2p
from rspfed.cli import main
from rspfed.errors import (
    FunctionExecutionError,
    ProfileError,
    TransportError,
    UntrustedCertificateError,
)
from rspfed.es2p.client import requester_of
from rspfed.smdp import ItemState
from rspfed.smdp.datadir import tls_paths
from rspfed.smdp.http import SMDP_KEY
from tests.smdp_http.conftest import ADDRESS, ServerThread

T = TypeVar("T")


def _client(server: ServerThread, data: Path, **ctx_args: Any) -> es2p.Es2Client:
    files = tls_paths(data)
    args: dict[str, Any] = {
        "cert": files.operator_cert,
        "key": files.operator_key,
        "ca_file": files.server_ca,
    }
    args.update(ctx_args)
    return es2p.Es2Client(
        server.url,
        requester="ignored-the-certificate-decides",
        ssl_context=es2p.client_ssl_context(**args),
    )


def _run(
    server: ServerThread,
    data: Path,
    body: Callable[[es2p.Es2Client], Awaitable[T]],
    **ctx_args: Any,
) -> T:
    async def go() -> T:
        async with _client(server, data, **ctx_args) as es2:
            return await body(es2)

    return asyncio.run(go())


def test_order_flow(server: ServerThread, data_dir: Path) -> None:
    async def body(es2: es2p.Es2Client) -> tuple[str, es2p.ConfirmOrderResponse]:
        iccid = await es2.download_order(profile_type="test")
        order = await es2.confirm_order(iccid=iccid, confirmation_code="1234")
        return iccid, order

    iccid, order = _run(server, data_dir, body)
    assert order.smdp_address == ADDRESS
    assert order.activation_code == f"LPA:1${ADDRESS}${order.matching_id}"
    item = server.call(lambda: server.app[SMDP_KEY].item(iccid))
    assert item.state is ItemState.RELEASED
    assert item.matching_id == order.matching_id
    # the requester is the certificate's commonName, not the header's claim
    assert item.requester == requester_of(tls_paths(data_dir).operator_cert)


def test_hold_release_and_cancel(server: ServerThread, data_dir: Path) -> None:
    async def body(es2: es2p.Es2Client) -> tuple[str, str]:
        held = await es2.download_order(profile_type="test")
        await es2.confirm_order(iccid=held, release_flag=False)
        cancelled = await es2.download_order(profile_type="test")
        await es2.cancel_order(iccid=cancelled, final_profile_status_indicator="Unavailable")
        return held, cancelled

    held, cancelled = _run(server, data_dir, body)
    core = server.app[SMDP_KEY]
    assert server.call(lambda: core.item(held)).state is ItemState.CONFIRMED
    _run(server, data_dir, lambda es2: es2.release_profile(iccid=held))
    assert server.call(lambda: core.item(held)).state is ItemState.RELEASED
    assert server.call(lambda: core.item(cancelled)).state is ItemState.UNAVAILABLE


def test_sgp22_codes_on_the_wire(server: ServerThread, data_dir: Path) -> None:
    with pytest.raises(ProfileError) as info:
        _run(server, data_dir, lambda es2: es2.download_order(profile_type="no-such-type"))
    assert (info.value.subject_code, info.value.reason_code) == ("8.2.5", "3.9")
    with pytest.raises(FunctionExecutionError) as info2:
        _run(server, data_dir, lambda es2: es2.confirm_order(iccid="8900000000000999999"))
    assert info2.value.subject_code.startswith("8.2")


def test_refused_without_client_certificate(server: ServerThread, data_dir: Path) -> None:
    files = tls_paths(data_dir)
    with pytest.raises(FunctionExecutionError) as info:
        _run(
            server,
            data_dir,
            lambda es2: es2.download_order(profile_type="test"),
            cert=None,
            key=None,
            ca_file=files.server_ca,
        )
    assert (info.value.subject_code, info.value.reason_code) == ("1.1", "1.1")


def _foreign_client(tmp_path: Path) -> tuple[Path, Path]:
    """A client certificate from a CA the SM-DP+ does not trust."""
    now = datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intruder")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "intruder.pem", tmp_path / "intruder.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_untrusted_client_certificate(server: ServerThread, data_dir: Path, tmp_path: Path) -> None:
    cert, key = _foreign_client(tmp_path)
    with pytest.raises((TransportError, FunctionExecutionError)):
        _run(
            server,
            data_dir,
            lambda es2: es2.download_order(profile_type="test"),
            cert=cert,
            key=key,
        )
    assert server.alive()


def test_untrusted_server(server: ServerThread, data_dir: Path) -> None:
    """Without the SM-DP+'s CA the client refuses the server certificate."""
    files = tls_paths(data_dir)
    with pytest.raises(UntrustedCertificateError):
        _run(
            server,
            data_dir,
            lambda es2: es2.download_order(profile_type="test"),
            cert=files.operator_cert,
            key=files.operator_key,
            ca_file=None,
        )


def test_cli_order(server: ServerThread, data_dir: Path, tmp_path: Path) -> None:
    files = tls_paths(data_dir)
    png = tmp_path / "code.png"
    args = [
        "smdp", "order",
        "--es2-url", server.url,
        "--cert", str(files.operator_cert),
        "--key", str(files.operator_key),
        "--ca-file", str(files.server_ca),
        "--profile-type", "test",
    ]  # fmt: skip
    result = CliRunner().invoke(main, [*args, "--qr", str(png)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("ICCID 89")
    code = lines[1]
    assert code.startswith(f"LPA:1${ADDRESS}$")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = CliRunner().invoke(main, [*args, "--qr-terminal"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].startswith(f"LPA:1${ADDRESS}$")
    assert len(result.output.splitlines()) > 10  # the QR code
    with_code = CliRunner().invoke(main, [*args, "--confirmation-code", "8765"])
    assert with_code.exit_code == 0, with_code.output
    assert with_code.output.splitlines()[1].endswith("$$1")
    assert "8765" not in with_code.output
    bad = CliRunner().invoke(main, [*args[:-1], "no-such-type"])
    assert bad.exit_code == 2
    assert "8.2.5" in bad.output
    assert "Traceback" not in bad.output
