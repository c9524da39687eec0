"""ES9+ client against a real aiohttp HTTPS server on loopback: headers, TLS trust checks, errors.

The server here answers canned ES9+ JSON (the SM-DP+ logic is not the point);
its certificates come from the test PKI (DPtls, wrong roles, wrong SAN,
another CI, expired) or from a WebPKI-style CA made here with ``cryptography``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rspfed.crypto.curves import Curve
from rspfed.errors import (
    CertificateExpiredError,
    CertificateRoleError,
    MatchingIdError,
    ProtocolError,
    TransportError,
    UntrustedCertificateError,
)
from rspfed.es9p import (
    ADMIN_PROTOCOL,
    InitiateAuthenticationRequest,
    InitiateAuthenticationResponse,
    Status,
    encode_response,
)
from rspfed.lpa import Es9Client
from rspfed.pki import CertificateRole, parse_certificate
from rspfed.pki.testpki import TestPki

REQUEST = InitiateAuthenticationRequest(b"C" * 16, b"\x30\x00", "localhost")
ANSWER = InitiateAuthenticationResponse(
    b"\x01" * 16, b"\x30\x00", b"\x5f\x37\x00", b"\x04\x00", b"\x30\x00"
)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def server_context(
    tmp: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> ssl.SSLContext:
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(_pem_key(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return context


SEEN = web.AppKey("seen", list)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def canned(request: web.Request) -> web.Response:
    request.app[SEEN].append((request.path, dict(request.headers), await request.read()))
    return web.Response(
        body=encode_response(ANSWER),
        content_type="application/json",
        headers={"X-Admin-Protocol": ADMIN_PROTOCOL},
    )


async def serve(
    context: ssl.SSLContext | None, handler: Handler = canned
) -> tuple[web.AppRunner, int, list[Any]]:
    app = web.Application()
    seen: list[Any] = []
    app[SEEN] = seen
    app.router.add_post("/gsma/rsp2/es9plus/{function}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    site = web.SockSite(runner, sock, ssl_context=context)
    await site.start()
    return runner, port, seen


def dp_tls(
    pki: TestPki,
    tmp: Path,
    *,
    role: CertificateRole = CertificateRole.DPTLS,
    dns: tuple[str, ...] = ("localhost",),
    now: datetime | None = None,
    validity: timedelta | None = None,
) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = pki.issue_smdp_certificate(
        role, key.public_key(), Curve.NIST, dns_names=dns, now=now, validity=validity
    )
    return server_context(tmp, cert, key)


def ci_der(pki: TestPki) -> bytes:
    return pki.material(Curve.NIST).ci.public_bytes(serialization.Encoding.DER)


def ski(pki: TestPki) -> bytes:
    value = parse_certificate(ci_der(pki)).subject_key_id
    assert value is not None
    return value


def call(
    context: ssl.SSLContext | None, handler: Handler = canned, **client: Any
) -> tuple[InitiateAuthenticationResponse, list[Any]]:
    async def main() -> tuple[InitiateAuthenticationResponse, list[Any]]:
        runner, port, seen = await serve(context, handler)
        try:
            async with Es9Client(f"localhost:{port}", **client) as es9:
                return await es9.initiate_authentication(REQUEST), seen
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def test_trusted_dp_tls_and_headers(pki: TestPki, tmp_path: Path) -> None:
    answer, seen = call(dp_tls(pki, tmp_path), trust=[ci_der(pki)], ci_pkids=[ski(pki)])
    assert answer == ANSWER
    ((path, headers, body),) = seen
    assert path == "/gsma/rsp2/es9plus/initiateAuthentication"
    assert headers["User-Agent"] == "gsma-rsp-lpad"
    assert headers["X-Admin-Protocol"] == ADMIN_PROTOCOL
    assert headers["Content-Type"] == "application/json;charset=UTF-8"
    assert b'"smdpAddress":"localhost"' in body


def test_wrong_role_is_refused_before_any_request(pki: TestPki, tmp_path: Path) -> None:
    context = dp_tls(pki, tmp_path, role=CertificateRole.DPAUTH)
    with pytest.raises(CertificateRoleError, match="dp-tls"):
        call(context, trust=[ci_der(pki)], ci_pkids=[ski(pki)])


def test_no_request_reaches_a_refused_server(pki: TestPki, tmp_path: Path) -> None:
    seen: list[Any] = []

    async def recording(request: web.Request) -> web.Response:
        seen.append(request.path)
        return await canned(request)

    with pytest.raises(CertificateRoleError):
        call(dp_tls(pki, tmp_path, dns=("other.example",)), recording, trust=[ci_der(pki)])
    assert seen == []


def test_wrong_san_is_refused(pki: TestPki, tmp_path: Path) -> None:
    context = dp_tls(pki, tmp_path, dns=("smdp.example",))
    with pytest.raises(CertificateRoleError, match="subjectAltName"):
        call(context, trust=[ci_der(pki)], ci_pkids=[ski(pki)])


def test_wildcard_san_matches_one_label(pki: TestPki, tmp_path: Path) -> None:
    # the address is localhost: *.localhost does not cover it
    context = dp_tls(pki, tmp_path, dns=("*.localhost",))
    with pytest.raises(CertificateRoleError):
        call(context, trust=[ci_der(pki)])


def test_untrusted_ci(pki: TestPki, tmp_path: Path) -> None:
    other = TestPki.create(tmp_path / "other", now=datetime.now(UTC), curves=[Curve.NIST])
    context = dp_tls(other, tmp_path)
    with pytest.raises(UntrustedCertificateError):
        call(context, trust=[ci_der(pki)], ci_pkids=[ski(pki)])


def test_ci_not_listed_by_the_euicc(pki: TestPki, tmp_path: Path) -> None:
    other = TestPki.create(tmp_path / "other", now=datetime.now(UTC), curves=[Curve.NIST])
    # the LPA knows both CIs, the eUICC lists only the other one
    context = dp_tls(pki, tmp_path)
    with pytest.raises(UntrustedCertificateError):
        call(context, trust=[ci_der(pki), ci_der(other)], ci_pkids=[ski(other)])
    with pytest.raises(UntrustedCertificateError, match="listed by the eUICC"):
        Es9Client("localhost", trust=[ci_der(pki)], ci_pkids=[ski(other)])


def test_expired_dp_tls(pki: TestPki, tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(days=30)
    context = dp_tls(pki, tmp_path, now=past, validity=timedelta(days=2))
    with pytest.raises(CertificateExpiredError):
        call(context, trust=[ci_der(pki)])


def webpki(tmp: Path, dns: str = "localhost") -> tuple[ssl.SSLContext, Path]:
    """A WebPKI-style root and a server certificate (no RSP roles at all)."""
    now = datetime.now(UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Public Root")])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns)]))
        .issuer_name(root_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )
    ca_file = tmp / "ca.pem"
    ca_file.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    return server_context(tmp, leaf, key), ca_file


def test_ca_file_adds_a_webpki_ca(pki: TestPki, tmp_path: Path) -> None:
    context, ca_file = webpki(tmp_path)
    answer, _ = call(context, trust=[ci_der(pki)], ca_file=ca_file)
    assert answer == ANSWER
    with pytest.raises(UntrustedCertificateError):
        call(context, trust=[ci_der(pki)])


def test_ca_file_still_checks_the_san(pki: TestPki, tmp_path: Path) -> None:
    context, ca_file = webpki(tmp_path, dns="elsewhere.example")
    with pytest.raises(CertificateRoleError):
        call(context, ca_file=ca_file)


def test_plain_http_for_local_testing() -> None:
    answer, _ = call(None, tls=False)
    assert answer == ANSWER


def test_function_failure_is_its_error_class() -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.Response(
            body=encode_response(None, failure=Status.MATCHING_ID_REFUSED),
            content_type="application/json",
        )

    with pytest.raises(MatchingIdError) as info:
        call(None, refuse, tls=False)
    assert (info.value.subject_code, info.value.reason_code) == ("8.2.6", "3.8")


@pytest.mark.parametrize(("status", "error"), [(500, TransportError), (404, ProtocolError)])
def test_http_status(status: int, error: type[Exception]) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=status, text="no")

    with pytest.raises(error):
        call(None, broken, tls=False)


def test_connection_refused_is_a_transport_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()

    async def main() -> None:
        async with Es9Client(f"127.0.0.1:{port}", tls=False, timeout=5) as es9:
            await es9.initiate_authentication(REQUEST)

    with pytest.raises(TransportError):
        asyncio.run(main())


def test_tls_to_a_plain_server_is_a_transport_error(pki: TestPki) -> None:
    with pytest.raises(TransportError):
        call(None, trust=[ci_der(pki)], timeout=5)
