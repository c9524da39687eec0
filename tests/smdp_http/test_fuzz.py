"""Property: whatever JSON reaches an ES9+/ES2+ path, the running server answers < 500
with an SGP.22 header, over one keep-alive HTTPS connection."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed import es2p, es9p
from tests.smdp_http.conftest import ADDRESS, ServerThread, client_context


def _members() -> list[str]:
    classes: list[Any] = [f.request for f in es9p.FUNCTIONS.values()]
    classes += [f.request for f in es2p.FUNCTIONS.values()]
    names = {
        f.metadata["json"] for cls in classes for f in attrs.fields(cls) if "json" in f.metadata
    }
    return sorted(names | {"header", "notificationPointStatus"})


MEMBERS = _members()
PATHS = [f.path for f in es9p.FUNCTIONS.values()] + [
    es2p.FUNCTIONS[n].path for n in ("downloadOrder", "confirmOrder")
]

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.text(max_size=30),
    st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),
    st.sampled_from(["0123456789ABCDEF", "8900000000000000001", ADDRESS, ""]),
)
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


@pytest.fixture(scope="module")
def connection(server: ServerThread, data_dir: Path) -> Iterator[http.client.HTTPSConnection]:
    conn = http.client.HTTPSConnection(
        ADDRESS, server.port, context=client_context(data_dir, with_cert=True), timeout=10
    )
    yield conn
    conn.close()


@given(path=st.sampled_from(PATHS), body=bodies)
def test_no_5xx_on_any_json(
    connection: http.client.HTTPSConnection, path: str, body: bytes
) -> None:
    headers = {"Content-Type": "application/json", "X-Admin-Protocol": es9p.ADMIN_PROTOCOL}
    connection.request("POST", path, body=body, headers=headers)
    resp = connection.getresponse()
    answer = resp.read()
    assert resp.status < 500
    assert resp.getheader("X-Admin-Protocol") == es9p.ADMIN_PROTOCOL
    if resp.status == 204:
        assert answer == b""
        return
    obj: Any = json.loads(answer)
    status = obj["header"]["functionExecutionStatus"]["status"]
    assert status in ("Failed", "Executed-Success")
    if resp.status != 200:
        assert status == "Failed"
