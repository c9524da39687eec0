"""Federation: the primary device authorises secondaries with signed tokens.

:mod:`rspfed.federation.token` issues and verifies federation tokens (DER,
ASN.1 module ``RSPFedFederation``); :mod:`rspfed.federation.uri` carries them
in the versioned ``rspfed:`` URI (text, file or QR).  The format and test
vectors are in ``docs/federation-token.md``.
"""

from __future__ import annotations

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
    "DEFAULT_TTL",
    "MAX_TTL",
    "MAX_URI_LENGTH",
    "TOKEN_ID_SIZE",
    "TOKEN_VERSION",
    "URI_SCHEME",
    "URI_TYPES",
    "URI_VERSION",
    "DeviceClass",
    "FederationToken",
    "RspfedUri",
    "Service",
    "issue_token",
    "parse_token",
    "primary_key_id",
    "token_from_uri",
    "token_uri",
    "verify_token",
]
