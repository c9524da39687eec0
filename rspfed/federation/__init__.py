"""Federation: the primary device authorises secondaries with signed tokens.

:mod:`rspfed.federation.token` issues and verifies federation tokens (DER,
ASN.1 module ``RSPFedFederation``); :mod:`rspfed.federation.uri` carries them
in the versioned ``rspfed:`` URI (text, file or QR).  The format and test
vectors are in ``docs/federation-token.md``.  :mod:`rspfed.federation.signing`
signs and verifies management requests (``RSPFED-SIG1``,
``docs/federation-requests.md``); :mod:`rspfed.federation.device` is a
device's own store (record, keys, join tickets; ``docs/device-store.md``).
"""

from __future__ import annotations

from rspfed.federation.device import DeviceRecord, DeviceStore, PendingJoin
from rspfed.federation.signing import (
    AUTH_SCHEME,
    SignedRequest,
    parse_authorization,
    sign_request,
    signing_input,
    verify_request,
)
from rspfed.federation.token import (
    DEFAULT_TTL,
    MAX_TTL,
    TOKEN_ID_SIZE,
    TOKEN_VERSION,
    DeviceClass,
    FederationToken,
    Service,
    issue_token,
    parse_token,
    primary_key_id,
    verify_token,
)
from rspfed.federation.uri import (
    MAX_URI_LENGTH,
    URI_SCHEME,
    URI_TYPES,
    URI_VERSION,
    RspfedUri,
    token_from_uri,
    token_uri,
)

__all__ = [
    "AUTH_SCHEME",
    "DEFAULT_TTL",
    "MAX_TTL",
    "MAX_URI_LENGTH",
    "TOKEN_ID_SIZE",
    "TOKEN_VERSION",
    "URI_SCHEME",
    "URI_TYPES",
    "URI_VERSION",
    "DeviceClass",
    "DeviceRecord",
    "DeviceStore",
    "FederationToken",
    "PendingJoin",
    "RspfedUri",
    "Service",
    "SignedRequest",
    "issue_token",
    "parse_authorization",
    "parse_token",
    "primary_key_id",
    "sign_request",
    "signing_input",
    "token_from_uri",
    "token_uri",
    "verify_request",
    "verify_token",
]
