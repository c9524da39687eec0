"""TLS of the running SM-DP+: 1.2 with SGP.22's suite works, older versions are refused."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from rspfed.smdp.datadir import tls_paths
from tests.smdp_http.conftest import ADDRESS, ServerThread


def _handshake(port: int, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(sock, server_hostname=ADDRESS)


def test_tls12_with_the_sgp22_suite(server: ServerThread, data_dir: Path) -> None:
    ctx = ssl.create_default_context(cafile=str(tls_paths(data_dir).server_ca))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with _handshake(server.port, ctx) as conn:
        assert conn.version() == "TLSv1.2"
        cipher = conn.cipher()
        assert cipher is not None
        assert cipher[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
        der = conn.getpeercert(binary_form=True)
        assert der is not None
        cert = x509.load_der_x509_certificate(der)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [ADDRESS]


def test_tls13(server: ServerThread, data_dir: Path) -> None:
    ctx = ssl.create_default_context(cafile=str(tls_paths(data_dir).server_ca))
    with _handshake(server.port, ctx) as conn:
        assert conn.version() == "TLSv1.3"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_old_tls_and_weak_suites_refused(server: ServerThread, data_dir: Path) -> None:
    ctx = ssl.create_default_context(cafile=str(tls_paths(data_dir).server_ca))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA")  # CBC, not SGP.22
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _handshake(server.port, ctx).close()
    try:
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
    except (ValueError, ssl.SSLError):  # pragma: no cover - OpenSSL without TLS 1.1
        return
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _handshake(server.port, old).close()
    assert server.alive()
