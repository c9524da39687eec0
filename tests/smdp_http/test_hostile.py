"""Hostile input against the running HTTPS SM-DP+: never a 5xx, the server stays up.

Every case goes over one keep-alive TLS connection to a real server on
loopback; afterwards the same server still answers a well-formed request.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import socket
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rspfed import es9p
from rspfed.asn1.bertlv import encode_tlv
from rspfed.es9p import ADMIN_PROTOCOL
from rspfed.euicc.euicc import Euicc
from rspfed.pki.testpki import TestPki
from tests.smdp_http import es10_loop
from tests.smdp_http.conftest import ADDRESS, ServerThread, client_context

ES9 = "/gsma/rsp2/es9plus/"
ES2 = "/gsma/rsp2/es2plus/"
JSON_HEADERS = {"Content-Type": "application/json", "X-Admin-Protocol": ADMIN_PROTOCOL}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _random_der(n: int) -> bytes:
    return os.urandom(n)


def _cases() -> list[tuple[str, str, str, dict[str, str], bytes, set[int]]]:
    """(name, method, path, headers, body, allowed HTTP statuses)."""
    tid = "0123456789ABCDEF"
    nested = b"[" * 100_000 + b"]" * 100_000
    nested_obj = b'{"a":' * 20 + b"1" + b"}" * 20
    cases: list[tuple[str, str, str, dict[str, str], bytes, set[int]]] = [
        ("empty", "POST", ES9 + "initiateAuthentication", JSON_HEADERS, b"", {400}),
        ("not json", "POST", ES9 + "initiateAuthentication", JSON_HEADERS, b"hello", {400}),
        ("not utf8", "POST", ES9 + "authenticateClient", JSON_HEADERS, b"\xff\xfe{}", {400}),
        ("array", "POST", ES9 + "initiateAuthentication", JSON_HEADERS, b"[]", {400}),
        ("deep array", "POST", ES9 + "initiateAuthentication", JSON_HEADERS, nested, {400}),
        ("deep object", "POST", ES9 + "authenticateClient", JSON_HEADERS, nested_obj, {400}),
        (
            "too large",
            "POST",
            ES9 + "initiateAuthentication",
            JSON_HEADERS,
            json.dumps({"euiccChallenge": "A" * (2 * 1024 * 1024)}).encode(),
            {413},
        ),
        (
            "huge field under the limit",
            "POST",
            ES9 + "initiateAuthentication",
            JSON_HEADERS,
            json.dumps(
                {
                    "euiccChallenge": b64(bytes(600_000)),
                    "euiccInfo1": b64(bytes(16)),
                    "smdpAddress": "localhost",
                }
            ).encode(),
            {200},
        ),
        (
            "huge string",
            "POST",
            ES9 + "initiateAuthentication",
            JSON_HEADERS,
            json.dumps(
                {
                    "euiccChallenge": b64(bytes(16)),
                    "euiccInfo1": b64(bytes(16)),
                    "smdpAddress": "x" * 900_000,
                }
            ).encode(),
            {200},
        ),
        (
            "bad base64",
            "POST",
            ES9 + "initiateAuthentication",
            JSON_HEADERS,
            b'{"euiccChallenge": "!!!", "euiccInfo1": "AA==", "smdpAddress": "localhost"}',
            {400},
        ),
        (
            "non-canonical base64",
            "POST",
            ES9 + "authenticateClient",
            JSON_HEADERS,
            json.dumps({"transactionId": tid, "authenticateServerResponse": "AB"}).encode(),
            {400},
        ),
        (
            "bad transactionId",
            "POST",
            ES9 + "getBoundProfilePackage",
            JSON_HEADERS,
            json.dumps({"transactionId": "XYZ", "prepareDownloadResponse": "AA=="}).encode(),
            {400},
        ),
        (
            "wrong member type",
            "POST",
            ES9 + "cancelSession",
            JSON_HEADERS,
            json.dumps({"transactionId": 5, "cancelSessionResponse": ["x"]}).encode(),
            {400},
        ),
        (
            "missing member",
            "POST",
            ES9 + "authenticateClient",
            JSON_HEADERS,
            json.dumps({"transactionId": tid}).encode(),
            {400},
        ),
        (
            "missing X-Admin-Protocol",
            "POST",
            ES9 + "initiateAuthentication",
            {"Content-Type": "application/json"},
            b"{}",
            {400},
        ),
        (
            "wrong X-Admin-Protocol",
            "POST",
            ES9 + "initiateAuthentication",
            {"Content-Type": "application/json", "X-Admin-Protocol": "gsma/rsp/v1.0"},
            b"{}",
            {400},
        ),
        (
            "wrong content type",
            "POST",
            ES9 + "initiateAuthentication",
            {"Content-Type": "text/plain", "X-Admin-Protocol": ADMIN_PROTOCOL},
            b"{}",
            {415},
        ),
        (
            "no content type",
            "POST",
            ES9 + "initiateAuthentication",
            {"X-Admin-Protocol": ADMIN_PROTOCOL},
            b"{}",
            {415},
        ),
        ("GET", "GET", ES9 + "initiateAuthentication", JSON_HEADERS, b"", {405}),
        ("PUT", "PUT", ES9 + "authenticateClient", JSON_HEADERS, b"{}", {405}),
        ("DELETE", "DELETE", ES2 + "downloadOrder", JSON_HEADERS, b"", {405}),
        ("unknown function", "POST", ES9 + "deleteEverything", JSON_HEADERS, b"{}", {404}),
        ("root", "GET", "/", JSON_HEADERS, b"", {404}),
        ("traversal", "POST", ES9 + "../../etc/passwd", JSON_HEADERS, b"{}", {404}),
        (
            "ES2+ without client certificate",
            "POST",
            ES2 + "downloadOrder",
            JSON_HEADERS,
            b"{}",
            {403},
        ),
        (
            "unknown session",
            "POST",
            ES9 + "authenticateClient",
            JSON_HEADERS,
            json.dumps(
                {"transactionId": tid, "authenticateServerResponse": b64(_random_der(200))}
            ).encode(),
            {200},
        ),
        (
            "unknown session, cancel",
            "POST",
            ES9 + "cancelSession",
            JSON_HEADERS,
            json.dumps(
                {"transactionId": tid, "cancelSessionResponse": b64(_random_der(64))}
            ).encode(),
            {200},
        ),
        (
            "random notification",
            "POST",
            ES9 + "handleNotification",
            JSON_HEADERS,
            json.dumps({"pendingNotification": b64(_random_der(100))}).encode(),
            {204},
        ),
    ]
    for n in range(6):
        body = {
            "euiccChallenge": b64(os.urandom(16)),
            "euiccInfo1": b64(_random_der(8 + 20 * n)),
            "smdpAddress": "localhost",
        }
        cases.append(
            (
                f"random DER {n}",
                "POST",
                ES9 + "initiateAuthentication",
                JSON_HEADERS,
                json.dumps(body).encode(),
                {200},
            )
        )
        body2 = {"transactionId": tid, "prepareDownloadResponse": b64(_random_der(30 * n + 1))}
        cases.append(
            (
                f"random DER gbpp {n}",
                "POST",
                ES9 + "getBoundProfilePackage",
                JSON_HEADERS,
                json.dumps(body2).encode(),
                {200},
            )
        )
    return cases


async def _send(
    session: aiohttp.ClientSession,
    base: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    ctx: ssl.SSLContext,
) -> tuple[int, dict[str, str], bytes]:
    async with session.request(
        method, base + path, data=body, headers=headers, ssl=ctx, skip_auto_headers=["Content-Type"]
    ) as resp:
        return resp.status, dict(resp.headers), await resp.read()


def _check_failed(body: bytes) -> dict[str, Any]:
    obj = json.loads(body)
    fes = obj["header"]["functionExecutionStatus"]
    assert fes["status"] == "Failed"
    return dict(fes["statusCodeData"])


def test_hostile_inputs(server: ServerThread, data_dir: Path) -> None:
    ctx = client_context(data_dir)
    created: list[int] = []

    async def on_conn(*_: Any) -> None:
        created.append(1)

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_conn)

    async def run() -> list[tuple[str, int, dict[str, str], bytes]]:
        out = []
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as session:
            for name, method, path, headers, body, _ in _cases():
                status, h, answer = await _send(
                    session, server.url, method, path, headers, body, ctx
                )
                out.append((name, status, h, answer))
        return out

    results = asyncio.run(run())
    expected = {c[0]: c[5] for c in _cases()}
    for name, status, headers, answer in results:
        assert status < 500, name
        assert status in expected[name], (name, status, answer[:200])
        assert headers.get("X-Admin-Protocol") == ADMIN_PROTOCOL, name
        if status == 204:
            assert answer == b""
        elif status != 200 or expected[name] == {200}:
            data = _check_failed(answer)  # every error carries a Failed header
            assert data["subjectCode"], name
            assert data["reasonCode"], name
    by_name = {r[0]: r for r in results}
    assert _check_failed(by_name["unknown session"][3])["subjectCode"] in ("8.10.1", "1.6")
    assert by_name["GET"][2].get("Allow") == "POST"
    assert len(created) <= 2  # keep-alive: one connection (a 413 may close it)
    assert server.alive()
    _assert_still_serving(server, data_dir)


def _assert_still_serving(server: ServerThread, data_dir: Path) -> None:
    async def run() -> bytes:
        async with aiohttp.ClientSession() as session:
            body = es9p.encode_request(
                es9p.InitiateAuthenticationRequest(os.urandom(16), b"\xbf\x20\x00", "elsewhere")
            )
            status, _, answer = await _send(
                session,
                server.url,
                "POST",
                ES9 + "initiateAuthentication",
                JSON_HEADERS,
                body,
                client_context(data_dir),
            )
            assert status == 200
            return answer

    data = _check_failed(asyncio.run(run()))
    assert data["subjectCode"]


def _raw(port: int, payload: bytes, *, tls: bool, data_dir: Path) -> bytes:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        conn: socket.socket = (
            client_context(data_dir).wrap_socket(sock, server_hostname="localhost") if tls else sock
        )
        conn.sendall(payload)
        chunks = []
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (TimeoutError, ConnectionError, ssl.SSLError):
            pass
        return b"".join(chunks)
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("payload", "tls"),
    [
        (b"\x16\x03\x01\x00\x05hello", False),  # a broken TLS record
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False),  # plain HTTP on the TLS port
        (random.Random(7).randbytes(300), False),
        (b"NOT HTTP AT ALL\r\n\r\n", True),
        (
            b"POST /gsma/rsp2/es9plus/initiateAuthentication HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 99999999999999999999\r\n\r\n",
            True,
        ),
        (
            b"POST /gsma/rsp2/es9plus/initiateAuthentication HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
            b"X-Admin-Protocol: gsma/rsp/v2.2.0\r\n\r\nZZZ\r\n",
            True,
        ),
    ],
    ids=["tls-record", "http-on-tls-port", "random", "not-http", "huge-length", "bad-chunk"],
)
def test_garbage_on_the_wire(
    server: ServerThread, data_dir: Path, payload: bytes, tls: bool
) -> None:
    answer = _raw(server.port, payload, tls=tls, data_dir=data_dir)
    if answer.startswith(b"HTTP/1."):
        status = int(answer.split(b" ", 2)[1])
        assert 400 <= status < 500
    assert server.alive()
    _assert_still_serving(server, data_dir)


def test_truncated_der_of_real_messages(
    server: ServerThread, data_dir: Path, pki: TestPki, tmp_path: Path
) -> None:
    """Real eUICC messages cut short at many points: Failed answers, never a 5xx."""
    euicc = Euicc.create(tmp_path / "e.db", pki)
    handle = euicc.isdr.handle
    info1 = handle(bytes.fromhex("BF2000"))
    ctx = client_context(data_dir)

    async def run() -> list[tuple[str, int, bytes]]:
        out: list[tuple[str, int, bytes]] = []
        async with aiohttp.ClientSession() as session:

            async def post(function: str, body: bytes) -> None:
                status, headers, answer = await _send(
                    session, server.url, "POST", ES9 + function, JSON_HEADERS, body, ctx
                )
                assert headers.get("X-Admin-Protocol") == ADMIN_PROTOCOL
                out.append((function, status, answer))

            for cut in sorted({1, 2, 3, len(info1) // 2, len(info1) - 1}):
                await post(
                    "initiateAuthentication",
                    es9p.encode_request(
                        es9p.InitiateAuthenticationRequest(os.urandom(16), info1[:cut], ADDRESS)
                    ),
                )
            challenge = handle(bytes.fromhex("BF2E00"))[-16:]
            init = await es10_loop.es9(
                session,
                server.url,
                ctx,
                es9p.InitiateAuthenticationRequest(challenge, info1, ADDRESS),
                es9p.InitiateAuthenticationResponse,
            )
            auth = handle(
                encode_tlv(
                    0xBF38,
                    init.server_signed1
                    + init.server_signature1
                    + init.euicc_ci_pkid_to_be_used
                    + init.server_certificate
                    + es10_loop.ctx_params1("NO-SUCH-ID"),
                )
            )
            for cut in (1, 5, len(auth) // 3, len(auth) // 2, len(auth) - 1):
                await post(
                    "authenticateClient",
                    es9p.encode_request(
                        es9p.AuthenticateClientRequest(init.transaction_id, auth[:cut])
                    ),
                )
        return out

    for function, status, answer in asyncio.run(run()):
        assert status == 200, (function, status, answer[:200])
        assert _check_failed(answer)["subjectCode"]
    assert server.alive()
