"""Property: whatever reaches an operator route, the running server answers < 500, and
every 4xx is ``{"error": {"type", "message"}}`` naming an RspfedError class."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed import errors
from rspfed.federation.datadir import close_operator, open_operator
from rspfed.federation.http import ROUTES, make_operator_app
from rspfed.federation.types import Plan
from rspfed.pki.testpki import TestPki
from rspfed.smdp.http import server_ssl_context
from tests.federation_http.conftest import make_operator_dir
from tests.smdp_http.conftest import ServerThread

MEMBERS = [
    "eap-id", "purpose", "eid", "service", "session", "eap-relay-packet", "token",
    "subscription-id", "device-class", "name", "request-id", "secret", "device-id", "token-id",
]  # fmt: skip
KNOWN = {*errors.__all__, "NetworkRefusedError", "TokenScopeError"}

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.text(max_size=30),
    st.binary(max_size=120).map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=120).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    st.sampled_from(
        ["register", "attach", "data", "voice", "laptop", "89049032000001000000000000000012",
         "6001010000000001@nai.epc.mnc001.mcc001.3gppnetwork.org", "0" * 32, ""]
    ),
)  # fmt: skip
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(MEMBERS), json_value, max_size=6).map(
        lambda d: json.dumps(d).encode()
    ),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)
# header values an HTTP parser accepts (visible ASCII and space): invalid HTTP is aiohttp's
authorizations = (
    st.none()
    | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
    | st.just(
        "RSPFED-SIG1 keyId=" + "00" * 20 + ", ts=1, nonce=AAAAAAAAAAAAAAAAAAAAAA, sig=MAYCAQECAQE"
    )
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pki: TestPki) -> Iterator[ServerThread]:
    directory = make_operator_dir(tmp_path_factory.mktemp("fuzz"), pki)
    directory.sock.close()
    data = directory.data
    op = open_operator(data)
    try:
        op.subscribe("ts48", Plan(pool_bytes=1 << 30, device_limit=2))
    finally:
        close_operator(op)
    app = make_operator_app(lambda: open_operator(data), close=close_operator)
    thread = ServerThread(app, server_ssl_context(data)).start()
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def connection(server: ServerThread, pki: TestPki) -> Iterator[http.client.HTTPSConnection]:
    import ssl

    from cryptography.hazmat.primitives.serialization import Encoding

    from rspfed.crypto.curves import Curve

    ctx = ssl.create_default_context(
        cadata=pki.material(Curve.NIST).ci.public_bytes(Encoding.PEM).decode()
    )
    conn = http.client.HTTPSConnection("localhost", server.port, context=ctx, timeout=10)
    yield conn
    conn.close()


@given(route=st.sampled_from(ROUTES), body=bodies, authorization=authorizations)
def test_no_5xx_on_anything(
    connection: http.client.HTTPSConnection, route: str, body: bytes, authorization: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None and authorization.strip():
        headers["Authorization"] = authorization.strip()
    connection.request("POST", f"/rspfed/v1/{route}", body=body, headers=headers)
    response = connection.getresponse()
    answer: Any = json.loads(response.read())
    assert response.status < 500, answer
    if response.status >= 400:
        assert answer["error"]["type"] in KNOWN
        assert isinstance(answer["error"]["message"], str)
