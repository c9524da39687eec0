"""A minimal test-side LPA: ES10b against an in-process ISD-R, ES9+ over HTTPS.

Independent of :mod:`rspfed.lpa` on purpose: it builds the ES10b requests
from the ES9+ answers with plain BER-TLV, so an SM-DP+ bug cannot hide behind
a matching LPA bug.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Callable
from typing import Any

import aiohttp
import attrs

from rspfed import asn1, es8p, es9p
from rspfed.asn1 import rsp
from rspfed.asn1.bertlv import encode_tlv, find, split_top_level
from rspfed.es9p import ADMIN_PROTOCOL

Handle = Callable[[bytes], bytes]
HEADERS = {"Content-Type": "application/json", "X-Admin-Protocol": ADMIN_PROTOCOL}


class Es9Failed(Exception):
    def __init__(self, function: str, status: int, body: bytes) -> None:
        super().__init__(f"{function}: HTTP {status} {body[:200]!r}")
        self.function = function
        self.status = status
        self.body = body


async def es9(
    session: aiohttp.ClientSession,
    base: str,
    ctx: ssl.SSLContext | None,
    message: Any,
    response_class: type[Any] | None,
) -> Any:
    """POST an ES9+ request; the decoded response (FunctionExecutionError on Failed)."""
    path = es9p.FUNCTIONS[message.FUNCTION].path
    async with session.post(
        base + path, data=es9p.encode_request(message), headers=HEADERS, ssl=ctx or True
    ) as resp:
        body = await resp.read()
        assert resp.headers.get("X-Admin-Protocol") == ADMIN_PROTOCOL
        if response_class is None:
            if resp.status != 204:
                raise Es9Failed(message.FUNCTION, resp.status, body)
            return None
        if resp.status != 200:
            raise Es9Failed(message.FUNCTION, resp.status, body)
        return es9p.decode_response(response_class, body, function=message.FUNCTION)


def ctx_params1(matching_id: str) -> bytes:
    """DER of ``CtxParams1`` (ctxParamsForCommonAuthentication) naming ``matching_id``."""
    return asn1.encode(
        rsp.CtxParams1(
            name="ctxParamsForCommonAuthentication",
            value={
                "matchingId": matching_id,
                "deviceInfo": {"tac": b"\x35\x29\x06\x11", "deviceCapabilities": {}},
            },
        )
    )


@attrs.define
class DownloadTrace:
    transaction_id: bytes = b""
    pir: bytes = b""
    notifications: int = 0


async def download(
    session: aiohttp.ClientSession,
    base: str,
    ctx: ssl.SSLContext | None,
    handle: Handle,
    *,
    address: str,
    matching_id: str,
    confirmation_code: str | None = None,
    notifications: bool = True,
) -> DownloadTrace:
    """A whole SGP.22 download (InitiateAuthentication ... HandleNotification)."""
    trace = DownloadTrace()
    info1 = handle(bytes.fromhex("BF2000"))
    challenge_resp = asn1.decode(rsp.GetEuiccChallengeResponse, handle(bytes.fromhex("BF2E00")))
    challenge = bytes(challenge_resp["euiccChallenge"].native)
    init = await es9(
        session,
        base,
        ctx,
        es9p.InitiateAuthenticationRequest(challenge, info1, address),
        es9p.InitiateAuthenticationResponse,
    )
    trace.transaction_id = init.transaction_id
    ctx_params = ctx_params1(matching_id)
    auth_req = encode_tlv(
        0xBF38,
        init.server_signed1
        + init.server_signature1
        + init.euicc_ci_pkid_to_be_used
        + init.server_certificate
        + ctx_params,
    )
    auth_resp = handle(auth_req)
    client = await es9(
        session,
        base,
        ctx,
        es9p.AuthenticateClientRequest(init.transaction_id, auth_resp),
        es9p.AuthenticateClientResponse,
    )
    assert client.profile_metadata[:2] == b"\xbf\x25"
    hash_cc = b""
    if confirmation_code is not None:
        inner = hashlib.sha256(confirmation_code.encode()).digest()
        hash_cc = encode_tlv(0x04, hashlib.sha256(inner + init.transaction_id).digest())
    prep_req = encode_tlv(
        0xBF21,
        client.smdp_signed2 + client.smdp_signature2 + hash_cc + client.smdp_certificate,
    )
    prep_resp = handle(prep_req)
    bpp = await es9(
        session,
        base,
        ctx,
        es9p.GetBoundProfilePackageRequest(init.transaction_id, prep_resp),
        es9p.GetBoundProfilePackageResponse,
    )
    for block in es8p.segment_bpp_for_es10b(bpp.bound_profile_package):
        answer = handle(block)
        if answer:
            trace.pir = answer
            break
    if notifications:
        listing = handle(bytes.fromhex("BF2B00"))
        holder = find(listing, 0xBF2B, 0xA0)
        for pending in split_top_level(holder.value) if holder is not None else []:
            await es9(session, base, ctx, es9p.HandleNotificationRequest(pending), None)
            trace.notifications += 1
    return trace
